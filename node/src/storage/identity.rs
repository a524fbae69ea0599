//! `DIR/identity`: whose data directory this is, written before anything
//! else in it and never rewritten except to record how the node came into
//! its cluster.
//!
//! ```text
//! file     = magic "RAFT-IDN" (8) | version u32 (4)
//!          | cluster id (len u16 + utf-8) | node id (len u16 + utf-8)
//!          | incarnation u64 | standing u8 | [founders: len u32 + Membership::encode]
//!          | crc32 of everything before it (4)
//! standing = 0 undecided | 1 founder (the founders follow) | 2 joined
//! ```
//!
//! The incarnation is drawn at random when the file is first written: a
//! node that comes back with an empty disk is a new incarnation of its id,
//! which is how the cluster tells it from the node that lost its data.
//!
//! The file is replaced atomically (temporary file, fsync, rename,
//! directory fsync), so a crash leaves the old one or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use raft::{Membership, NodeId};

use super::StorageError;
use crate::reader::{ReadError, Reader};

/// The identity file's name inside the data directory.
pub const IDENTITY_FILE_NAME: &str = "identity";
const TMP_FILE_NAME: &str = "identity.tmp";
const MAGIC: [u8; 8] = *b"RAFT-IDN";
const VERSION: u32 = 1;

/// How this incarnation came into its cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Not known yet: the directory was empty and the node is finding out
    /// whether its cluster already exists. It has no Raft state.
    Undecided,
    /// It formed the cluster, with these members (their incarnations too,
    /// when it learned them): its configuration until the log says
    /// otherwise.
    Founder(Membership),
    /// It joined a cluster that existed, with an empty disk: a member only
    /// where a configuration names this incarnation.
    Joined,
}

impl Standing {
    /// The name `--help`, logs and the Admin service use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Standing::Undecided => "undecided",
            Standing::Founder(_) => "founder",
            Standing::Joined => "joined",
        }
    }
}

/// Whose data directory this is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The cluster the node belongs to.
    pub cluster_id: String,
    /// The node.
    pub node_id: NodeId,
    /// This incarnation of it (never 0).
    pub incarnation: u64,
    /// How it came into the cluster.
    pub standing: Standing,
}

/// The directory belongs to another node or another cluster.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "data directory {} belongs to node `{}` of cluster `{}`, not to node `{}` of cluster `{}`: \
     refusing to start (use that node's --id and --cluster-id, or another --data-dir)",
    dir.display(), found_node, found_cluster, node, cluster
)]
pub struct WrongOwner {
    /// The directory.
    pub dir: PathBuf,
    /// Who it belongs to.
    pub found_node: String,
    /// Of which cluster.
    pub found_cluster: String,
    /// Who tried to start on it.
    pub node: String,
    /// Of which cluster.
    pub cluster: String,
}

impl Identity {
    /// A new incarnation of `node_id` in `cluster_id`, undecided.
    pub fn fresh(cluster_id: &str, node_id: &NodeId) -> Identity {
        Identity {
            cluster_id: cluster_id.to_string(),
            node_id: node_id.clone(),
            incarnation: random_incarnation(),
            standing: Standing::Undecided,
        }
    }

    /// Refuses to run node `node` of cluster `cluster` on this identity.
    pub fn check_owner(&self, dir: &Path, cluster: &str, node: &NodeId) -> Result<(), WrongOwner> {
        if self.cluster_id == cluster && self.node_id == *node {
            return Ok(());
        }
        Err(WrongOwner {
            dir: dir.to_path_buf(),
            found_node: self.node_id.0.clone(),
            found_cluster: self.cluster_id.clone(),
            node: node.0.clone(),
            cluster: cluster.to_string(),
        })
    }

    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&VERSION.to_le_bytes());
        put_str(&mut out, &self.cluster_id);
        put_str(&mut out, self.node_id.as_str());
        out.extend_from_slice(&self.incarnation.to_le_bytes());
        match &self.standing {
            Standing::Undecided => out.push(0),
            Standing::Founder(m) => {
                out.push(1);
                let bytes = m.encode();
                out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
                out.extend_from_slice(&bytes);
            }
            Standing::Joined => out.push(2),
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads what [`Identity::encode`] wrote; says what is wrong otherwise.
    pub fn decode(bytes: &[u8]) -> Result<Identity, String> {
        if bytes.len() < 16 || bytes[..8] != MAGIC {
            return Err("not an identity file (bad magic number)".into());
        }
        let body = bytes.len() - 4;
        let crc = u32::from_le_bytes(bytes[body..].try_into().unwrap());
        if crc != crc32fast::hash(&bytes[..body]) {
            return Err("checksum mismatch".into());
        }
        Self::fields(&mut Reader::new(&bytes[..body])).map_err(|e| e.to_string())
    }

    fn fields(r: &mut Reader) -> Result<Identity, ReadError> {
        r.take(MAGIC.len())?;
        let version = r.u32()?;
        if version != VERSION {
            return Err(r.error(format!(
                "format version {version}, this build reads version {VERSION}"
            )));
        }
        let cluster_id = r.str_u16()?.to_string();
        let node_id = NodeId::new(r.str_u16()?);
        let incarnation = r.u64()?;
        let standing = match r.u8()? {
            0 => Standing::Undecided,
            1 => {
                let bytes = r.bytes_u32()?;
                let m = Membership::decode(bytes).map_err(|e| r.error(format!("founders: {e}")))?;
                Standing::Founder(m)
            }
            2 => Standing::Joined,
            other => return Err(r.error(format!("unknown standing {other}"))),
        };
        if r.remaining() > 0 {
            return Err(r.error(format!("{} bytes after the fields", r.remaining())));
        }
        Ok(Identity {
            cluster_id,
            node_id,
            incarnation,
            standing,
        })
    }
}

/// Reads `dir/identity`; `None` if there is none.
pub fn load(dir: &Path) -> Result<Option<Identity>, StorageError> {
    let path = dir.join(IDENTITY_FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StorageError::io(path, "read", e)),
    };
    Identity::decode(&bytes)
        .map(Some)
        .map_err(|reason| StorageError::Corrupt {
            path,
            offset: 0,
            reason,
        })
}

/// Writes `dir/identity` durably: a temporary file, fsync, rename over the
/// old one, fsync of the directory.
pub fn save(dir: &Path, identity: &Identity) -> Result<(), StorageError> {
    let tmp = dir.join(TMP_FILE_NAME);
    let path = dir.join(IDENTITY_FILE_NAME);
    let written = (|| {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, "create", e))?;
        f.write_all(&identity.encode())
            .map_err(|e| StorageError::io(&tmp, "write to", e))?;
        f.sync_all().map_err(|e| StorageError::io(&tmp, "fsync", e))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, &path).map_err(|e| StorageError::io(&path, "rename over", e))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, "fsync directory", e))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Ids are checked short at start-up; never write a wrong length.
    let len = u16::try_from(s.len()).expect("ids are shorter than 64 KiB");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// A random, non-zero incarnation: the OS-seeded keys of the standard
/// library's hasher, mixed with the time and the process id.
fn random_incarnation() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::{Member, MemberRole};

    fn founder() -> Identity {
        let m = Membership::new(vec![Member {
            id: NodeId::new("n1"),
            addr: "127.0.0.1:7001".into(),
            role: MemberRole::Voter,
            incarnation: 9,
        }])
        .unwrap();
        Identity {
            standing: Standing::Founder(m),
            ..Identity::fresh("raftkv", &NodeId::new("n1"))
        }
    }

    #[test]
    fn round_trips_and_any_damage_is_refused() {
        for id in [
            Identity::fresh("c", &NodeId::new("n2")),
            founder(),
            Identity {
                standing: Standing::Joined,
                ..founder()
            },
        ] {
            let bytes = id.encode();
            assert_eq!(Identity::decode(&bytes).unwrap(), id);
            for cut in 0..bytes.len() {
                assert!(Identity::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            for at in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0x40;
                assert!(Identity::decode(&bad).is_err(), "flip at {at}");
            }
        }
    }

    #[test]
    fn incarnations_differ_and_are_never_zero() {
        let a = Identity::fresh("c", &NodeId::new("n1")).incarnation;
        let b = Identity::fresh("c", &NodeId::new("n1")).incarnation;
        assert_ne!(a, b);
        assert!(a != 0 && b != 0);
    }

    #[test]
    fn saved_durably_and_read_back_and_owners_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let id = founder();
        save(dir.path(), &id).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(id.clone()));
        assert!(!dir.path().join(TMP_FILE_NAME).exists());
        id.check_owner(dir.path(), "raftkv", &NodeId::new("n1"))
            .unwrap();
        let err = id
            .check_owner(dir.path(), "raftkv", &NodeId::new("n9"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("belongs to node `n1` of cluster `raftkv`, not to node `n9`"),
            "{err}"
        );
        let err = id
            .check_owner(dir.path(), "other", &NodeId::new("n1"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not to node `n1` of cluster `other`"), "{err}");
    }
}
