//! Throughput on a lazyfs mount against the plain backing directory:
//!
//! ```sh
//! cargo run --release -p lazyfs --example bench -- [--dir DIR] [--syncs 2000] [--mb 256]
//! ```
//!
//! Cases: a WAL's appends (4 KiB pwrite + fdatasync; and without the
//! fdatasync, which shows the FUSE round trip alone), bbolt's page
//! overwrites (4 KiB pwrite at random pages of a 16 MiB file + fdatasync),
//! and sequential 1 MiB writes with one fsync at the end. The writer runs
//! in this process (a node would be another; the FUSE round trips are the
//! same). Plain fdatasync reaches the real disk; lazyfs's does not, so the
//! plain side of the sync cases depends on the disk much more.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;

struct Args {
    dir: PathBuf,
    syncs: usize,
    mb: usize,
}

fn args() -> Args {
    let mut a = Args {
        dir: std::env::temp_dir(),
        syncs: 2000,
        mb: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--dir" => a.dir = value.into(),
            "--syncs" => a.syncs = value.parse().unwrap_or_else(|_| usage("--syncs: a number")),
            "--mb" => a.mb = value.parse().unwrap_or_else(|_| usage("--mb: a number")),
            _ => usage(&format!("unknown flag {flag}")),
        }
    }
    a
}

fn usage(why: &str) -> ! {
    eprintln!("bench: {why}\nusage: bench [--dir DIR] [--syncs N] [--mb N]");
    std::process::exit(254);
}

fn create(dir: &Path, name: &str) -> File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join(name))
        .unwrap()
}

fn wal_appends(dir: &Path, n: usize, sync: bool) -> Duration {
    let f = create(dir, "wal");
    let buf = [7u8; PAGE];
    let started = Instant::now();
    for i in 0..n {
        f.write_all_at(&buf, (i * PAGE) as u64).unwrap();
        if sync {
            f.sync_data().unwrap();
        }
    }
    started.elapsed()
}

fn page_overwrites(dir: &Path, n: usize) -> Duration {
    const PAGES: u64 = 4096;
    let f = create(dir, "db");
    f.set_len(PAGES * PAGE as u64).unwrap();
    f.sync_all().unwrap();
    let buf = [9u8; PAGE];
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let started = Instant::now();
    for _ in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        f.write_all_at(&buf, (x % PAGES) * PAGE as u64).unwrap();
        f.sync_data().unwrap();
    }
    started.elapsed()
}

fn sequential(dir: &Path, mb: usize) -> Duration {
    let f = create(dir, "seq");
    let buf = vec![5u8; 1 << 20];
    let started = Instant::now();
    for i in 0..mb {
        f.write_all_at(&buf, (i << 20) as u64).unwrap();
    }
    f.sync_all().unwrap();
    started.elapsed()
}

fn main() {
    let a = args();
    if let Err(e) = lazyfs::check_available() {
        eprintln!("bench: lazyfs cannot run here: {e}");
        std::process::exit(255);
    }
    let root = a.dir.join(format!("lazyfs-bench-{}", std::process::id()));
    let (plain, mnt, disk) = (root.join("plain"), root.join("mnt"), root.join("disk"));
    for d in [&plain, &mnt, &disk] {
        std::fs::create_dir_all(d).unwrap();
    }
    let m = lazyfs::mount(&mnt, &disk, lazyfs::Options::default()).unwrap();
    println!(
        "{:<40} {:>14} {:>14} {:>7}",
        "case", "plain", "lazyfs", "ratio"
    );
    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    let row = |name: &str, unit: &str, p: f64, l: f64| {
        println!(
            "{name:<40} {:>9.0} {unit:<4} {:>9.0} {unit:<4} {:>6.2}x",
            p,
            l,
            l / p
        );
    };
    for (sync, name) in [
        (true, "4 KiB append + fdatasync"),
        (false, "4 KiB append, no sync"),
    ] {
        let (p, l) = (
            wal_appends(&plain, a.syncs, sync),
            wal_appends(&mnt, a.syncs, sync),
        );
        row(name, "op/s", per_sec(a.syncs, p), per_sec(a.syncs, l));
    }
    let (p, l) = (
        page_overwrites(&plain, a.syncs),
        page_overwrites(&mnt, a.syncs),
    );
    row(
        "4 KiB page overwrite + fdatasync",
        "op/s",
        per_sec(a.syncs, p),
        per_sec(a.syncs, l),
    );
    let (p, l) = (sequential(&plain, a.mb), sequential(&mnt, a.mb));
    row(
        &format!("sequential 1 MiB writes ({} MiB) + fsync", a.mb),
        "MB/s",
        per_sec(a.mb, p),
        per_sec(a.mb, l),
    );
    println!("lazyfs counters: {:?}", m.stats());
    m.unmount().unwrap();
    std::fs::remove_dir_all(&root).unwrap();
}
