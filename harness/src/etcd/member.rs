//! How an etcd member is started: its addresses, its command line, the
//! binary.
//!
//! Members listen on loopback only, on ports picked free. Logs are etcd's
//! zap JSON on stderr (`--logger=zap --log-outputs=stderr`), which
//! [`super::logs`] reads for role changes. Timing flags (heartbeat 100 ms,
//! election timeout 1000 ms, snapshot count...) are etcd's defaults: the
//! point is to test etcd as people run it; callers that need otherwise pass
//! them in `extra`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Where one member listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAddrs {
    /// Its `--name`, also the name in `--initial-cluster`.
    pub name: String,
    /// For clients (gRPC).
    pub client: SocketAddr,
    /// For the other members (Raft over HTTP).
    pub peer: SocketAddr,
}

impl MemberAddrs {
    /// `http://` + the client address.
    pub fn client_url(&self) -> String {
        format!("http://{}", self.client)
    }

    /// `http://` + the peer address.
    pub fn peer_url(&self) -> String {
        format!("http://{}", self.peer)
    }
}

/// Addresses for `n` members named `e1`..`en`, on loopback ports that were
/// free a moment ago.
pub fn plan(n: usize) -> std::io::Result<Vec<MemberAddrs>> {
    plan_from(1, n)
}

/// Addresses for `n` members named from `e{first}` on.
pub fn plan_from(first: usize, n: usize) -> std::io::Result<Vec<MemberAddrs>> {
    // All listeners stay open until every port is chosen, so no two are
    // the same.
    let mut held = Vec::new();
    let mut port = || -> std::io::Result<SocketAddr> {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?;
        held.push(l);
        Ok(addr)
    };
    (first..first + n)
        .map(|i| {
            Ok(MemberAddrs {
                name: format!("e{i}"),
                client: port()?,
                peer: port()?,
            })
        })
        .collect()
}

/// `--initial-cluster-state`: a member of a new cluster, or one joining a
/// running cluster after a MemberAdd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterState {
    /// All members start together (`--initial-cluster-state=new`).
    New,
    /// It joins members that run (`--initial-cluster-state=existing`).
    Existing,
}

impl ClusterState {
    fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// Everything a member's command line depends on.
#[derive(Clone, Debug)]
pub struct MemberConfig<'a> {
    /// The member to start.
    pub member: &'a MemberAddrs,
    /// The members of `--initial-cluster`: all of a new cluster, or for a
    /// member joining, the current members and itself.
    pub cluster: &'a [MemberAddrs],
    /// `--data-dir`.
    pub data_dir: &'a Path,
    /// `--initial-cluster-state`.
    pub state: ClusterState,
    /// `--initial-cluster-token`: distinct per run, so members of another
    /// run can never join this cluster.
    pub token: &'a str,
    /// Appended last, so they override ours (etcd takes the last value).
    pub extra: &'a [String],
}

/// The member's arguments (without the binary).
pub fn command_line(c: &MemberConfig) -> Vec<String> {
    let m = c.member;
    let initial_cluster = c
        .cluster
        .iter()
        .map(|p| format!("{}={}", p.name, p.peer_url()))
        .collect::<Vec<_>>()
        .join(",");
    let mut args: Vec<String> = [
        ("--name", m.name.clone()),
        ("--data-dir", c.data_dir.display().to_string()),
        ("--listen-client-urls", m.client_url()),
        ("--advertise-client-urls", m.client_url()),
        ("--listen-peer-urls", m.peer_url()),
        ("--initial-advertise-peer-urls", m.peer_url()),
        ("--initial-cluster", initial_cluster),
        ("--initial-cluster-state", c.state.as_str().to_string()),
        ("--initial-cluster-token", c.token.to_string()),
        ("--logger", "zap".to_string()),
        ("--log-outputs", "stderr".to_string()),
    ]
    .into_iter()
    .map(|(flag, value)| format!("{flag}={value}"))
    .collect();
    args.extend(c.extra.iter().cloned());
    args
}

/// etcd could not be found or is not executable.
#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error(
        "etcd not found: install Debian's etcd-server package (apt-get install etcd-server) or pass --db-bin"
    )]
    /// None given and none on `PATH`.
    NotFound,
    /// The path given is not an executable file.
    #[error("etcd binary {path}: {reason}")]
    Unusable {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The etcd binary: `explicit` if given (it must be an executable file),
/// else `etcd` on `PATH`.
pub fn find_binary(explicit: Option<&Path>) -> Result<PathBuf, BinaryError> {
    match explicit {
        Some(p) => executable(p).map(|()| p.to_path_buf()),
        None => std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("etcd"))
            .find(|p| executable(p).is_ok())
            .ok_or(BinaryError::NotFound),
    }
}

fn executable(path: &Path) -> Result<(), BinaryError> {
    use std::os::unix::fs::PermissionsExt;
    let unusable = |reason: String| BinaryError::Unusable {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| unusable(e.to_string()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(unusable("not an executable file".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(name: &str, client: u16, peer: u16) -> MemberAddrs {
        MemberAddrs {
            name: name.into(),
            client: SocketAddr::from(([127, 0, 0, 1], client)),
            peer: SocketAddr::from(([127, 0, 0, 1], peer)),
        }
    }

    #[test]
    fn the_command_line_names_every_url_and_the_cluster() {
        let cluster = [addrs("e1", 2001, 3001), addrs("e2", 2002, 3002)];
        let extra = ["--heartbeat-interval=50".to_string()];
        let args = command_line(&MemberConfig {
            member: &cluster[1],
            cluster: &cluster,
            data_dir: Path::new("/tmp/run/e2"),
            state: ClusterState::New,
            token: "run-7",
            extra: &extra,
        });
        assert_eq!(
            args,
            [
                "--name=e2",
                "--data-dir=/tmp/run/e2",
                "--listen-client-urls=http://127.0.0.1:2002",
                "--advertise-client-urls=http://127.0.0.1:2002",
                "--listen-peer-urls=http://127.0.0.1:3002",
                "--initial-advertise-peer-urls=http://127.0.0.1:3002",
                "--initial-cluster=e1=http://127.0.0.1:3001,e2=http://127.0.0.1:3002",
                "--initial-cluster-state=new",
                "--initial-cluster-token=run-7",
                "--logger=zap",
                "--log-outputs=stderr",
                "--heartbeat-interval=50",
            ]
        );
    }

    #[test]
    fn planned_ports_are_distinct_loopback_ports() {
        let plan = plan(3).unwrap();
        let mut ports: Vec<u16> = plan
            .iter()
            .flat_map(|m| [m.client.port(), m.peer.port()])
            .collect();
        assert!(plan.iter().all(|m| m.client.ip().is_loopback()));
        ports.sort();
        ports.dedup();
        assert_eq!(ports.len(), 6);
        assert_eq!(plan[2].name, "e3");
    }

    #[test]
    fn a_missing_binary_says_how_to_get_one() {
        let e = find_binary(Some(Path::new("/nonexistent/etcd"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/etcd"), "{e}");
        assert!(
            BinaryError::NotFound
                .to_string()
                .starts_with("etcd not found: install Debian's etcd-server package")
        );
        let dir = tempfile::tempdir().unwrap();
        let e = find_binary(Some(dir.path())).unwrap_err();
        assert!(e.to_string().contains("not an executable file"), "{e}");
    }
}
