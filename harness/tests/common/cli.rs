//! The harness binary as a user runs it: to the end ([`harness`]), or as a
//! child process ([`Running`]) whose every wait is bounded and which is
//! killed, with every node it started, when the test ends (also when it
//! fails).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs `harness ARGS` to the end.
pub fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

/// Output as text, for messages and matching.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The exit status of a process that exited (not killed by a signal).
pub fn status(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

/// Asserts that `out` exited with `code`, showing all it printed if not;
/// returns its stdout.
pub fn expect_status(out: &Output, code: i32) -> String {
    let stdout = text(&out.stdout);
    assert_eq!(status(out), code, "{stdout}{}", text(&out.stderr));
    stdout
}

/// The repository's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The example histories (`histories/examples`).
pub fn examples() -> PathBuf {
    root().join("histories/examples")
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A harness subcommand running with a store of its own (a temporary
/// directory), killed if the test ends before it does.
pub struct Running {
    /// The harness process.
    pub child: Child,
    /// Where its runs go: `--store`.
    pub store: tempfile::TempDir,
}

impl Running {
    /// Starts `harness SUBCOMMAND --store TMP ARGS`.
    pub fn start(subcommand: &str, args: &[&str]) -> Running {
        let store = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg(subcommand)
            .args(["--store", store.path().to_str().unwrap()])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the harness binary runs");
        Running { child, store }
    }

    /// Waits for the exit, at most `within`; returns the code and all it
    /// printed.
    pub fn wait(&mut self, within: Duration) -> (i32, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut out = String::new();
                use std::io::Read;
                if let Some(mut s) = self.child.stdout.take() {
                    s.read_to_string(&mut out).unwrap();
                }
                if let Some(mut s) = self.child.stderr.take() {
                    s.read_to_string(&mut out).unwrap();
                }
                return (status.code().unwrap_or(-1), out);
            }
            assert!(
                Instant::now() < deadline,
                "harness still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the exit, at most `within`, and asserts its code; returns
    /// all it printed.
    pub fn expect_exit(&mut self, within: Duration, code: i32) -> String {
        let (got, out) = self.wait(within);
        assert_eq!(got, code, "{out}");
        out
    }

    /// The run directory `store/latest` points at.
    pub fn latest(&self) -> PathBuf {
        let link = self.store.path().join("latest");
        std::fs::canonicalize(&link).expect("store/latest points at the run")
    }

    /// Live processes that mention the store: the nodes it started.
    pub fn nodes(&self) -> Vec<u32> {
        processes_mentioning(self.store.path())
    }

    /// Nodes get SIGKILL from the harness or the kernel; gives the kernel
    /// a moment to reap them before asserting none is left.
    pub fn assert_no_nodes_left(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = self.nodes();
            if left.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "node processes left behind: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Anything still holding our store is a node the harness leaked:
        // kill it so one failing test does not leave processes around.
        for pid in self.nodes() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

/// Pids of live processes whose command line mentions `path`.
fn processes_mentioning(path: &Path) -> Vec<u32> {
    let needle = path.to_str().unwrap().as_bytes();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .map(|s| s.contains(") Z "))
            .unwrap_or(true);
        if !zombie && cmdline.windows(needle.len()).any(|w| w == needle) {
            pids.push(pid);
        }
    }
    pids
}

/// Parses a JSON file the harness wrote, naming it on failure.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file in a temporary directory of its own, removed with this value.
pub struct TempFile {
    /// The directory; the harness may write beside the file (a report).
    pub dir: tempfile::TempDir,
    /// The file.
    pub path: PathBuf,
}

impl TempFile {
    /// `name` holding `lines`, each ended by a newline.
    pub fn with_lines(name: &str, lines: &[&str]) -> TempFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
        )
        .unwrap();
        TempFile { dir, path }
    }

    /// The path as an argument.
    pub fn arg(&self) -> &str {
        self.path.to_str().unwrap()
    }
}

/// `harness run ARGS` (the store a temporary directory of its own).
pub fn run(args: &str) -> Running {
    Running::start("run", &args.split_whitespace().collect::<Vec<_>>())
}

/// Whether network namespaces can run here; if not, says so for `test`.
pub fn netns_available(test: &str) -> bool {
    match netlab::check() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}
