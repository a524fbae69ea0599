//! `harness bench`: prints the report and writes it as JSON beside the
//! nodes' data.

use std::time::Duration;

use crate::bench::{self, BenchOptions};
use crate::check::Verdict;
use crate::cli::BenchArgs;
use crate::cluster::DiskKind;
use crate::run::RunError;
use crate::suite;

/// Runs `harness bench` on a runtime with `--client-threads` threads.
pub fn run(args: &BenchArgs) -> Result<Verdict, RunError> {
    if args.concurrency == 0 || args.nodes == 0 {
        return Err(RunError::BadArgs(
            "--concurrency and --nodes must be at least 1".into(),
        ));
    }
    if args.disk != "lazy" && (args.lazyfs_metadata.is_some() || args.fsync_delay > 0.0) {
        return Err(RunError::BadArgs(
            "--lazyfs-metadata and --fsync-delay are for --disk lazy".into(),
        ));
    }
    if args.etcd_serializable_reads && args.db.kind != crate::db::DbKind::Etcd {
        return Err(RunError::BadArgs(
            "--etcd-serializable-reads needs --db etcd".into(),
        ));
    }
    let opts = BenchOptions {
        nodes: args.nodes,
        concurrency: args.concurrency,
        duration: Duration::from_secs_f64(args.duration),
        workload: args.workload,
        value_size: args.value_size,
        keys: args.keys,
        failover: args.failover,
        store: args.store.clone(),
        db: args.db.kind,
        db_bin: args.db.bin.clone(),
        serializable_reads: args.etcd_serializable_reads,
        node_args: args.db.args.clone(),
        client_threads: args.client_threads as usize,
        api: args.api,
        network: args.network.kind(),
        disk: match args.disk.as_str() {
            "lazy" => DiskKind::Lazy {
                metadata: args
                    .lazyfs_metadata
                    .unwrap_or(args.db.kind.default_metadata()),
                fsync_delay: Duration::from_secs_f64(args.fsync_delay / 1e3),
            },
            _ => DiskKind::Plain,
        },
    };
    let report = suite::block_on_threads(Some(opts.client_threads), async {
        bench::load::run(&opts).await
    })??;
    print!("{}", report.render());
    Ok(Verdict::Valid)
}
