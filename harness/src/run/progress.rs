//! The run's progress: a bar on a terminal, plain lines in CI logs.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::nemesis::schedule::InForce;

/// Shows how the load goes: elapsed time, operations ok/fail/info, the faults
/// in force.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: Duration,
    last_line: Option<Duration>,
}

impl Progress {
    /// A progress display for a load of `total`.
    pub fn new(total: Duration) -> Progress {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::new(total.as_millis() as u64);
            let style =
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {msg}")
                    .expect("a valid template")
                    .progress_chars("=> ");
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            total,
            last_line: None,
        }
    }

    /// Shows the state at `elapsed`: on a terminal at once, in a log at most
    /// every few seconds.
    pub fn update(&mut self, elapsed: Duration, counts: (u64, u64, u64), in_force: &InForce) {
        let faults: Vec<String> = in_force
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let faults = if faults.is_empty() {
            "none".to_string()
        } else {
            faults.join("; ")
        };
        let msg = format!(
            "ok {} fail {} info {} | faults: {faults}",
            counts.0, counts.1, counts.2
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.min(self.total).as_millis() as u64);
                bar.set_message(msg);
            }
            None => {
                // Every five seconds is plenty for a CI log.
                if self
                    .last_line
                    .is_none_or(|t| elapsed >= t + Duration::from_secs(5))
                {
                    self.last_line = Some(elapsed);
                    println!(
                        "[{:>5.1}s/{:.0}s] {msg}",
                        elapsed.as_secs_f64(),
                        self.total.as_secs_f64()
                    );
                }
            }
        }
    }

    /// A phase change, printed above the bar.
    pub fn phase(&self, what: &str) {
        match &self.bar {
            Some(bar) => bar.println(what),
            None => println!("{what}"),
        }
    }

    /// Clears the bar, if any.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
