//! The disk's physical limit: how long a 4 KiB append + fdatasync takes in
//! the directory the nodes write to.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;

/// The disk's fsync latency where the nodes write: what a write that must be
/// durable costs at the least.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct FsyncLatency {
    /// Appends measured.
    pub samples: u64,
    /// The median, in milliseconds.
    pub p50_ms: f64,
    /// The 99th percentile, in milliseconds.
    pub p99_ms: f64,
}

/// Appends 4 KiB and fdatasyncs, `samples` times, in a scratch file in `dir`.
pub fn measure(dir: &Path, samples: u64) -> std::io::Result<FsyncLatency> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("fsync-probe.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = [0x5au8; 4096];
    let mut h = Histogram::<u64>::new(3).expect("valid precision");
    for _ in 0..samples {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        let _ = h.record(t.elapsed().as_micros() as u64);
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(FsyncLatency {
        samples,
        p50_ms: h.value_at_quantile(0.5) as f64 / 1000.0,
        p99_ms: h.value_at_quantile(0.99) as f64 / 1000.0,
    })
}
