//! `run.json`: what the run was asked to do, written before it starts (so
//! a run that crashes still says what it was), and what it did, added when
//! the cluster has stopped.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::load::Loaded;
use super::recovery::Recovered;
use super::{RunError, RunOptions};

/// The run's `run.json`, as last written.
pub struct RunRecord {
    path: PathBuf,
    info: Value,
}

impl RunRecord {
    /// Writes `dir/run.json` with the options, the seed and the command
    /// line that reproduces the run; `without_power`: why `all` runs
    /// without power faults here.
    pub fn begin(
        opts: &RunOptions,
        dir: &Path,
        without_power: Option<&str>,
    ) -> Result<RunRecord, RunError> {
        let mut record = RunRecord {
            path: dir.join("run.json"),
            info: json!({
                "options": opts.to_json(),
                "seed": opts.seed,
                "command": opts.command,
                "started": chrono::Utc::now().to_rfc3339(),
                "harness_version": env!("CARGO_PKG_VERSION"),
                "dir": dir.display().to_string(),
            }),
        };
        if let Some(why) = without_power {
            record.info["without_power"] = json!(why);
        }
        record.write()?;
        Ok(record)
    }

    /// Adds what the run did and rewrites the file. `nodes`: each node's
    /// starts, kills and pauses; `network`: its kind, the members'
    /// addresses and what each link carried.
    pub fn finish(
        &mut self,
        loaded: &Loaded,
        recovered: &Recovered,
        nodes: Vec<Value>,
        network: Value,
    ) -> Result<(), RunError> {
        let (ok, fail, info) = loaded.recorder.counts();
        let secs = loaded.seconds;
        let run = &mut self.info;
        run["finished"] = json!(chrono::Utc::now().to_rfc3339());
        run["history_start"] = json!(loaded.history_start.to_rfc3339());
        run["load_seconds"] = json!(secs);
        run["ops"] = json!({"ok": ok, "fail": fail, "info": info, "per_second": (ok + fail + info) as f64 / secs});
        run["final_reads_missed"] = json!(recovered.missed);
        run["recovered_leader"] = json!(recovered.leader.as_ref().map(|l| &l.0));
        run["nodes"] = json!(nodes);
        run["network"] = network;
        run["unexpected_exits"] = json!(loaded.unexpected_exits);
        self.write()
    }

    fn write(&self) -> Result<(), RunError> {
        let text = serde_json::to_string_pretty(&self.info).expect("JSON values serialize");
        std::fs::write(&self.path, text + "\n")
            .map_err(|e| RunError::Store(format!("cannot write {}: {e}", self.path.display())))
    }
}
