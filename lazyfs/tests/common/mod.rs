//! A lazyfs mounted in a temporary directory for one test, unmounted and
//! removed when the test ends, also when it fails.

#![allow(dead_code)]

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lazyfs::{LossReport, Metadata, Mounted, Options, PowerLoss};

/// Where every test mounts, so a sweep can find mounts left by a test
/// process that was killed.
pub fn test_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join("lazyfs-tests");
        fs::create_dir_all(&root).unwrap();
        let detached = lazyfs::detach_stale_mounts(&root).unwrap();
        if !detached.is_empty() {
            eprintln!("detached dead mounts left by an earlier run: {detached:?}");
        }
        root
    })
}

/// Waits (at most ten seconds) until `ready` holds.
pub fn wait_until(what: &str, ready: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting until {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

pub struct Fixture {
    // Declared first: unmounted before the directory is removed.
    pub mounted: Option<Mounted>,
    pub mnt: PathBuf,
    pub disk: PathBuf,
    pub dir: tempfile::TempDir,
}

/// Whether FUSE runs here; says why not.
pub fn available() -> bool {
    match lazyfs::check_available() {
        Ok(()) => true,
        // A probe that failed where everything seemed there is a bug to
        // see, not a reason to skip.
        Err(e) if e.reason == lazyfs::Reason::ProbeFailed => panic!("lazyfs probe failed: {e}"),
        Err(e) => {
            eprintln!("skipped: lazyfs cannot run here: {e}");
            false
        }
    }
}

/// A fixture, or `None` (after saying why) where FUSE cannot run.
pub fn fixture(metadata: Metadata) -> Option<Fixture> {
    if !available() {
        return None;
    }
    let dir = tempfile::tempdir_in(test_root()).unwrap();
    let mnt = dir.path().join("mnt");
    let disk = dir.path().join("disk");
    fs::create_dir(&mnt).unwrap();
    fs::create_dir(&disk).unwrap();
    let options = Options {
        metadata,
        ..Options::default()
    };
    let mounted = lazyfs::mount(&mnt, &disk, options).unwrap();
    Some(Fixture {
        mounted: Some(mounted),
        mnt,
        disk,
        dir,
    })
}

#[macro_export]
macro_rules! fixture {
    ($metadata:expr) => {
        match common::fixture($metadata) {
            Some(f) => f,
            None => return,
        }
    };
    () => {
        fixture!(lazyfs::Metadata::Strict)
    };
}

impl Fixture {
    pub fn m(&self) -> &Mounted {
        self.mounted.as_ref().unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    pub fn power_off(&self) -> LossReport {
        let r = self.m().power_off(PowerLoss::All).unwrap();
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        r
    }

    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        match fs::read(self.path(rel)) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => panic!("read {rel}: {e}"),
        }
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).symlink_metadata().is_ok()
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> File {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(rel))
            .unwrap();
        std::io::Write::write_all(&mut f, data).unwrap();
        f
    }

    pub fn fsync_dir(&self, rel: &str) {
        File::open(self.path(rel)).unwrap().sync_all().unwrap();
    }

    /// Unmounts now and returns what the backing directory holds.
    pub fn unmount(&mut self) {
        self.mounted.take().unwrap().unmount().unwrap();
    }
}

/// The main of a test binary with its own `main` (`harness = false`): runs
/// `tests` in order, speaking enough of libtest's command line for
/// `cargo test` and `cargo nextest` (`--list`, a name filter, `--exact`,
/// `--ignored`), so each runner can list and pick the tests.
pub fn run_tests(binary: &str, tests: &[(&str, fn())]) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let exact = args.iter().any(|a| a == "--exact");
    let ignored = args.iter().any(|a| a == "--ignored");
    let filter = args.iter().find(|a| !a.starts_with("--"));
    let chosen: Vec<&(&str, fn())> = tests
        .iter()
        .filter(|(name, _)| match filter {
            Some(f) if exact => name == f,
            Some(f) => name.contains(f.as_str()),
            None => true,
        })
        .filter(|_| !ignored)
        .collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in chosen {
            println!("{name}: test");
        }
        return;
    }
    for (name, test) in &chosen {
        test();
        println!("test {name} ... ok");
    }
    println!("{binary}: {} passed, 0 failed", chosen.len());
}
