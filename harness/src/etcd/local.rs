//! A local etcd cluster: member processes on free loopback ports, each with
//! its data directory and log under one directory.
//!
//! Members are [`NodeProcess`]es: SIGKILLed and reaped when dropped, and
//! killed by the kernel if the harness itself dies (PR_SET_PDEATHSIG).
//! Layout: `DIR/<name>/data/` and `DIR/<name>/etcd.log` (stdout and
//! stderr, i.e. the zap JSON log).

use std::path::{Path, PathBuf};

use crate::launch::{LaunchError, NodeBin, NodeProcess};

use super::client::{BadUrl, ClientOptions, EtcdClient};
use super::member::{self, ClusterState, MemberAddrs, MemberConfig};

/// Member processes of one cluster, their addresses and directories.
pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    token: String,
    extra: Vec<String>,
    members: Vec<MemberAddrs>,
    /// Each member's `--initial-cluster-state` and `--initial-cluster`, as
    /// first started (a restart passes them again; etcd ignores them once
    /// the data directory exists).
    initial: Vec<(ClusterState, Vec<MemberAddrs>)>,
    /// Members removed with [`LocalCluster::forget`]: left out of the
    /// initial cluster of members that join later.
    removed: Vec<bool>,
    procs: Vec<Option<NodeProcess>>,
}

impl LocalCluster {
    /// Starts `n` members of a new cluster (`e1`..`en`) under `dir`, each
    /// with `extra` flags after ours. Does not wait for a leader.
    pub fn start(
        bin: &Path,
        dir: &Path,
        n: usize,
        extra: &[String],
    ) -> Result<LocalCluster, LaunchError> {
        let io = |e: std::io::Error| LaunchError::Io(format!("{}: {e}", dir.display()));
        let members = member::plan(n).map_err(io)?;
        let mut c = LocalCluster {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            // Unique per start, so that no member of another cluster joins.
            token: format!(
                "harness-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
            extra: extra.to_vec(),
            initial: vec![(ClusterState::New, members.clone()); n],
            removed: vec![false; n],
            procs: (0..n).map(|_| None).collect(),
            members,
        };
        for i in 0..n {
            c.restart(i)?;
        }
        Ok(c)
    }

    /// Plans one more member (the next name, fresh loopback ports) that
    /// will join the running cluster; returns its index. It is not started:
    /// add it with MemberAdd (its [`MemberAddrs::peer_url`]) first, then
    /// [`LocalCluster::restart`] it.
    pub fn plan_member(&mut self) -> Result<usize, LaunchError> {
        let io = |e: std::io::Error| LaunchError::Io(format!("cannot pick ports: {e}"));
        let m = member::plan_from(self.members.len() + 1, 1)
            .map_err(io)?
            .remove(0);
        let mut cluster: Vec<MemberAddrs> = (0..self.members.len())
            .filter(|&i| !self.removed[i])
            .map(|i| self.members[i].clone())
            .collect();
        cluster.push(m.clone());
        self.members.push(m);
        self.initial.push((ClusterState::Existing, cluster));
        self.removed.push(false);
        self.procs.push(None);
        Ok(self.members.len() - 1)
    }

    /// Notes that member `i` was removed from the cluster (MemberRemove)
    /// and kills it.
    pub fn forget(&mut self, i: usize) {
        self.kill(i);
        self.removed[i] = true;
    }

    fn spawn(&self, i: usize) -> Result<NodeProcess, LaunchError> {
        let dir = self.member_dir(i);
        std::fs::create_dir_all(&dir)
            .map_err(|e| LaunchError::Io(format!("{}: {e}", dir.display())))?;
        let data_dir = dir.join("data");
        let (state, cluster) = &self.initial[i];
        let args = member::command_line(&MemberConfig {
            member: &self.members[i],
            cluster,
            data_dir: &data_dir,
            state: *state,
            token: &self.token,
            extra: &self.extra,
        });
        NodeProcess::spawn(
            &NodeBin::External(self.bin.clone()),
            &args,
            &self.log(i),
            &crate::net::Placement::host(),
        )
    }

    /// The members' names and addresses, in member order.
    pub fn members(&self) -> &[MemberAddrs] {
        &self.members
    }

    /// `DIR/<name>`: member `i`'s data directory and log.
    pub fn member_dir(&self, i: usize) -> PathBuf {
        self.dir.join(&self.members[i].name)
    }

    /// Member `i`'s log (its stdout and stderr).
    pub fn log(&self, i: usize) -> PathBuf {
        self.member_dir(i).join("etcd.log")
    }

    /// Member `i`'s process id, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.procs[i].as_ref().map(NodeProcess::pid)
    }

    /// Whether member `i` runs (was started and not killed since).
    pub fn is_running(&self, i: usize) -> bool {
        self.procs[i].is_some()
    }

    /// A client for every member, in member order.
    pub fn client(&self, options: ClientOptions) -> Result<EtcdClient, BadUrl> {
        let members: Vec<(String, String)> = self
            .members
            .iter()
            .map(|m| (m.name.clone(), m.client_url()))
            .collect();
        EtcdClient::new(&members, options)
    }

    /// SIGKILLs member `i` (by its pid) and reaps it; nothing if it is not running.
    pub fn kill(&mut self, i: usize) {
        if let Some(p) = self.procs[i].take() {
            p.kill();
        }
    }

    /// Starts member `i` (again, on its data directory); nothing if it runs.
    pub fn restart(&mut self, i: usize) -> Result<(), LaunchError> {
        if self.procs[i].is_none() {
            self.procs[i] = Some(self.spawn(i)?);
        }
        Ok(())
    }

    /// The last `lines` lines of every member's log, for a failure message.
    pub fn logs_tail(&self, lines: usize) -> String {
        (0..self.members.len())
            .map(|i| {
                let text = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let all: Vec<&str> = text.lines().collect();
                let tail = &all[all.len().saturating_sub(lines)..];
                format!("--- {}\n{}", self.log(i).display(), tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}
