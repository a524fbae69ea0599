//! Real `node` processes on free loopback ports, for multi-process tests.
//! Every wait is bounded, and every process is killed when the fixture is
//! dropped, also when a test panics.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use node::client::{NodeClient, Request, Session};

pub const CLUSTER: &str = "test-cluster";

pub use testkit::free_port;

pub struct Node {
    pub id: String,
    pub addr: String,
    pub dir: PathBuf,
    pub args: Vec<String>,
    child: Option<Child>,
}

impl Node {
    fn new(
        tmp: &std::path::Path,
        id: &str,
        addr: &str,
        peers: &[(String, String)],
        extra: &[&str],
    ) -> Node {
        let dir = tmp.join(id);
        let mut args = vec![
            "--id".to_string(),
            id.to_string(),
            "--listen".into(),
            addr.to_string(),
            "--data-dir".into(),
            dir.display().to_string(),
            "--cluster-id".into(),
            CLUSTER.into(),
        ];
        for (peer, peer_addr) in peers {
            args.push("--peer".into());
            args.push(format!("{peer}={peer_addr}"));
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Node {
            id: id.to_string(),
            addr: addr.to_string(),
            dir,
            args,
            child: None,
        }
    }
}

pub struct Cluster {
    tmp: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl Cluster {
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let mut c = Cluster::defined(n, extra);
        for i in 0..n {
            c.restart(i);
        }
        c
    }

    /// `n` nodes, each with every other as `--peer`, none started yet.
    pub fn defined(n: usize, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let addrs: Vec<String> = ids
            .iter()
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let peers: Vec<(String, String)> = ids
                .iter()
                .zip(&addrs)
                .filter(|(p, _)| *p != id)
                .map(|(p, a)| (p.clone(), a.clone()))
                .collect();
            nodes.push(Node::new(tmp.path(), id, &addrs[i], &peers, extra));
        }
        Cluster { tmp, nodes }
    }

    /// A node that is not a member yet, with every node so far as
    /// `--peer`; not started. Returns its index.
    pub fn define_node(&mut self, id: &str, extra: &[&str]) -> usize {
        let addr = format!("127.0.0.1:{}", free_port());
        let peers: Vec<(String, String)> = self
            .nodes
            .iter()
            .map(|n| (n.id.clone(), n.addr.clone()))
            .collect();
        let node = Node::new(self.tmp.path(), id, &addr, &peers, extra);
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// The node's disk is replaced by an empty one (it must be down).
    pub fn wipe(&mut self, i: usize) {
        assert!(!self.is_running(i), "{} is running", self.nodes[i].id);
        std::fs::remove_dir_all(&self.nodes[i].dir).unwrap();
    }

    /// SIGSTOP (`pause: true`) or SIGCONT.
    pub fn pause(&self, i: usize, pause: bool) {
        let pid = self.nodes[i].child.as_ref().expect("running").id();
        let sig = if pause { "-STOP" } else { "-CONT" };
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// The node's status, if it answers within `within`.
    pub async fn status(&self, i: usize, within: Duration) -> Option<node::client::StatusResponse> {
        self.client(i).status(within).await.ok()
    }

    /// Waits (bounded) until node `i`'s status satisfies `ok`.
    pub async fn wait_status(
        &self,
        i: usize,
        within: Duration,
        what: &str,
        ok: impl Fn(&node::client::StatusResponse) -> bool,
    ) -> node::client::StatusResponse {
        let deadline = Instant::now() + within;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(s) = self.status(i, Duration::from_millis(500)).await {
                if ok(&s) {
                    return s;
                }
                last = Some(s);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{} not {what} within {within:?}; last status {last:?}\nits log:\n{}",
            self.nodes[i].id,
            self.log_of(i)
        );
    }

    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is running", node.id);
        // The log lives beside the data directory, so a wipe keeps it.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.with_extension("log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_node"))
            .args(&node.args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGKILL, and reap (a paused node too).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process has exited by itself (and reaps it).
    pub fn exited(&mut self, i: usize) -> bool {
        let node = &mut self.nodes[i];
        let gone = node
            .child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some());
        if gone {
            node.child = None;
        }
        gone
    }

    pub fn client(&self, i: usize) -> NodeClient {
        NodeClient::new(&self.nodes[i].addr, CLUSTER, Duration::from_millis(500)).unwrap()
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].child.is_some()
    }

    /// The node that says it leads, with every running node agreeing on the term.
    pub async fn leader(&self, within: Duration) -> Option<usize> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            for i in 0..self.nodes.len() {
                if !self.is_running(i) {
                    continue;
                }
                if let Ok(s) = self.client(i).status(Duration::from_millis(300)).await
                    && s.role == "leader"
                {
                    return Some(i);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Puts at whoever leads, retrying with the same session until acknowledged.
    pub async fn put(&self, key: &str, value: &str, session: (u64, u64), within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let Some(l) = self.leader(Duration::from_secs(2)).await else {
                continue;
            };
            let put = Session::new(session.0, session.1).put(key, value.to_string());
            match self.client(l).call(put, Duration::from_secs(1)).await {
                Ok(r) if !r.is_not_leader() => return true,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        false
    }

    /// A linearizable read at whoever leads.
    pub async fn get(&self, key: &str, within: Duration) -> Option<Option<String>> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let Some(l) = self.leader(Duration::from_secs(2)).await else {
                continue;
            };
            if let Ok(r) = self
                .client(l)
                .call(Request::get(key), Duration::from_secs(1))
                .await
                && !r.is_not_leader()
            {
                return Some(r.value().map(|v| String::from_utf8(v.to_vec()).unwrap()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    pub fn log_of(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].dir.with_extension("log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
