//! How long one small durable append takes on a given directory: the floor
//! under every Raft commit with `--fsync always`, and the number that group
//! commit amortises.
//!
//! Run it with the ignored test (release, so encoding costs nothing):
//!
//! ```text
//! WAL_BENCH_DIRS=/work:/tmp cargo test --release -p node --lib storage::bench -- --ignored --nocapture
//! ```

use std::fmt;
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use raft::{Entry, EntryKind, LogIndex, Term};

use super::{FsyncPolicy, PersistBatch, StorageError, Wal};

/// Bytes of data in each measured entry.
pub const BENCH_ENTRY_BYTES: usize = 4096;
/// Appends made before measuring, to get past file creation.
const WARM_UP: usize = 5;

/// Latency of one [`Wal::persist`] of a single 4 KiB entry with
/// [`FsyncPolicy::Always`]: one write plus one fdatasync.
#[derive(Clone, Debug)]
pub struct FsyncStats {
    /// How many persists were timed.
    pub samples: usize,
    /// The fastest.
    pub min: Duration,
    /// The median.
    pub median: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest.
    pub max: Duration,
}

impl fmt::Display for FsyncStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} x ({BENCH_ENTRY_BYTES}-byte append + fdatasync): min {:?}, median {:?}, p99 {:?}, max {:?}",
            self.samples, self.min, self.median, self.p99, self.max
        )
    }
}

/// Appends `samples` (at least 1) single-entry batches of 4 KiB to a fresh
/// WAL in a new subdirectory of `dir`, timing each, then removes it.
pub fn measure_fsync(dir: &Path, samples: usize) -> Result<FsyncStats, StorageError> {
    let samples = samples.max(1);
    let sub = dir.join(format!("wal-fsync-bench-{}", std::process::id()));
    let result = run(&sub, samples);
    let removed = fs::remove_dir_all(&sub).map_err(|e| StorageError::io(&sub, "remove", e));
    let stats = result?;
    removed?;
    Ok(stats)
}

fn run(dir: &Path, samples: usize) -> Result<FsyncStats, StorageError> {
    let (mut wal, _) = Wal::open(dir, FsyncPolicy::Always)?;
    let data = Bytes::from(vec![0x5a; BENCH_ENTRY_BYTES]);
    let mut times = Vec::with_capacity(samples);
    for i in 0..WARM_UP + samples {
        let entry = Entry {
            index: LogIndex(i as u64 + 1),
            term: Term(1),
            kind: EntryKind::Normal,
            data: data.clone(),
        };
        let batch = PersistBatch {
            entries: std::slice::from_ref(&entry),
            ..PersistBatch::default()
        };
        let start = Instant::now();
        wal.persist(&batch)?;
        if i >= WARM_UP {
            times.push(start.elapsed());
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(FsyncStats {
        samples,
        min: times[0],
        median: at(0.5),
        p99: at(0.99),
        max: times[times.len() - 1],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let stats = measure_fsync(dir.path(), 3).unwrap();
        assert_eq!(stats.samples, 3);
        assert!(stats.min <= stats.median && stats.median <= stats.max);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Prints the fsync latency of each directory in `WAL_BENCH_DIRS`
    /// (colon-separated; default: the system temp dir). Not an assertion:
    /// the number describes the machine, it does not judge the code.
    #[test]
    #[ignore = "a measurement, run by hand with --release --ignored --nocapture"]
    fn print_fsync_latency() {
        let dirs = std::env::var("WAL_BENCH_DIRS")
            .unwrap_or_else(|_| std::env::temp_dir().display().to_string());
        let samples = std::env::var("WAL_BENCH_SAMPLES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(500);
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            let stats = measure_fsync(Path::new(dir), samples).unwrap();
            println!("{dir}: {stats}");
        }
    }
}
