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
    args: Vec<String>,
    child: Option<Child>,
}

pub struct Cluster {
    _tmp: tempfile::TempDir,
    pub nodes: Vec<Node>,
}

impl Cluster {
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().unwrap();
        let ids: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
        let addrs: Vec<String> = ids
            .iter()
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut nodes = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let dir = tmp.path().join(id);
            let mut args = vec![
                "--id".to_string(),
                id.clone(),
                "--listen".into(),
                addrs[i].clone(),
                "--data-dir".into(),
                dir.display().to_string(),
                "--cluster-id".into(),
                CLUSTER.into(),
            ];
            for (j, peer) in ids.iter().enumerate() {
                if j != i {
                    args.push("--peer".into());
                    args.push(format!("{peer}={}", addrs[j]));
                }
            }
            args.extend(extra.iter().map(|s| s.to_string()));
            nodes.push(Node {
                id: id.clone(),
                addr: addrs[i].clone(),
                dir,
                args,
                child: None,
            });
        }
        let mut c = Cluster { _tmp: tmp, nodes };
        for i in 0..n {
            c.restart(i);
        }
        c
    }

    pub fn restart(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        assert!(node.child.is_none(), "{} is running", node.id);
        std::fs::create_dir_all(&node.dir).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_node"))
            .args(&node.args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        node.child = Some(child);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
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
        std::fs::read_to_string(self.nodes[i].dir.join("node.log")).unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
