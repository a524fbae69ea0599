//! A script's command line: its name, plain words and `key=value` options.

use super::text;

/// A command line: its name, its plain words and its `key=value` words.
pub struct Command<'a> {
    pub name: &'a str,
    pub words: Vec<&'a str>,
    pub options: Vec<(&'a str, &'a str)>,
    /// Everything after the name, for commands that take a message.
    pub rest: &'a str,
}

impl<'a> Command<'a> {
    pub fn parse(line: &'a str) -> Command<'a> {
        let line = line.trim();
        let (name, rest) = line.split_once(' ').unwrap_or((line, ""));
        let mut words = Vec::new();
        let mut options = Vec::new();
        for w in rest.split_whitespace() {
            match w.split_once('=') {
                Some((k, v)) => options.push((k, v)),
                None => words.push(w),
            }
        }
        Command {
            name,
            words,
            options,
            rest: rest.trim(),
        }
    }

    pub fn option(&self, key: &str) -> Option<&'a str> {
        self.options
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    pub fn number(&self, key: &str, default: u64) -> Result<u64, String> {
        self.option(key)
            .map_or(Ok(default), |v| text::parse_u64(key, v))
    }

    pub fn flag(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.option(key) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(format!("{key}={v}: true or false")),
        }
    }

    pub fn check_options(&self, known: &[&str]) -> Result<(), String> {
        match self.options.iter().find(|(k, _)| !known.contains(k)) {
            Some((k, _)) => Err(format!("`{}` takes no option {k}=", self.name)),
            None => Ok(()),
        }
    }
}
