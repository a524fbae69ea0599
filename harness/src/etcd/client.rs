//! A client for etcd's v3 gRPC API: the key-value calls the workloads need
//! and the cluster queries the checkers and nemeses need.
//!
//! One tonic [`Channel`] per member, created once and connected on first
//! use; clones of an [`EtcdClient`] share them, so any number of workers
//! use one HTTP/2 connection per member, and a dead member costs one
//! connect attempt per call, never a new socket left behind. Every call
//! takes its own deadline, sent to etcd as `grpc-timeout` and enforced
//! locally as well (connection set-up included).
//!
//! Calls do not retry or follow leaders: they say what happened, typed,
//! and failures come classified by [`super::error::classify`].

use std::future::Future;
use std::time::Duration;

use etcd_proto::etcdserverpb as pb;
use etcd_proto::etcdserverpb::cluster_client::ClusterClient;
use etcd_proto::etcdserverpb::kv_client::KvClient;
use etcd_proto::etcdserverpb::maintenance_client::MaintenanceClient;
use pb::compare::{CompareResult, CompareTarget, TargetUnion};
use pb::request_op::Request as Op;
use pb::response_op::Response as OpResponse;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Status};

use super::error::{Effect, EtcdError, classify};
use super::value;

/// The least time left for which [`EtcdClient::append`] tries again.
const MIN_ATTEMPT: Duration = Duration::from_millis(10);

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Bounds one TCP connect (a call's own deadline bounds it too).
    pub connect_timeout: Duration,
    /// Sends etcd's `hasleader: true` with updates and linearizable reads,
    /// so that a member that knows no leader refuses at once ("etcdserver:
    /// no leader", definite) instead of holding the call until its deadline
    /// or etcd's request timeout (7 s by default), then unknown: Raft takes
    /// no proposal while it has no leader. Serializable reads go without
    /// it. It changes nothing for a member that has a leader. (etcd's Go
    /// client sends it only when asked, `clientv3.WithRequireLeader`.)
    pub require_leader: bool,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: Duration::from_secs(1),
            require_leader: true,
        }
    }
}

/// A client URL that tonic cannot use.
#[derive(Debug, thiserror::Error)]
#[error("bad etcd client URL `{url}` for member {member}: {reason}")]
pub struct BadUrl {
    /// The member's name.
    pub member: String,
    /// The URL given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

#[derive(Clone)]
struct MemberConn {
    name: String,
    url: String,
    channel: Channel,
}

/// Connections to the members of one etcd cluster, addressed by index (the
/// order given to [`EtcdClient::new`]). Cheap to clone; clones share the
/// connections.
#[derive(Clone)]
pub struct EtcdClient {
    members: Vec<MemberConn>,
    options: ClientOptions,
}

/// Which read etcd performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// etcd's default: a ReadIndex round through the leader first.
    Linearizable,
    /// The member's local state, which etcd documents as possibly stale.
    Serializable,
}

/// A key as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// `None`: the key is absent.
    pub value: Option<Vec<u8>>,
    /// The key's last modification (0 when absent).
    pub mod_revision: i64,
    /// The store's revision when the read was served.
    pub revision: i64,
}

/// How a compare-and-set ended (errors aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasResult {
    /// The value matched and was replaced; the store's new revision.
    Swapped {
        /// The revision the Txn created.
        revision: i64,
    },
    /// The value differed: nothing changed. What the key held at that
    /// point of the log (`None`: absent), read in the same transaction.
    Mismatch {
        /// The stored value.
        actual: Option<Vec<u8>>,
    },
}

/// A list value and the revision that wrote it (0: the key is absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListState {
    /// The tokens, in order (empty when absent).
    pub list: Vec<i64>,
    /// The key's `mod_revision`, what an append compares.
    pub mod_revision: i64,
}

/// How an append ended (errors aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppendResult {
    /// The extended list was written at `revision`.
    Appended {
        /// The revision the Txn created.
        revision: i64,
        /// The list as written.
        list: Vec<i64>,
    },
    /// The key changed since it was read: nothing was written. Its state at
    /// that point of the log, read in the same transaction.
    Mismatch {
        /// The key as the failed Txn read it.
        now: ListState,
    },
}

/// What a member says about itself (Maintenance.Status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    /// The answering member's id.
    pub member_id: u64,
    /// The leader it believes in; 0 when it knows none.
    pub leader: u64,
    /// Its current term.
    pub raft_term: u64,
    /// Its commit index.
    pub raft_index: u64,
    /// The last index it applied.
    pub raft_applied_index: u64,
    /// Its key-value store's revision.
    pub revision: i64,
    /// Whether it is a learner (a non-voting member).
    pub is_learner: bool,
    /// Alarms and health problems it reports.
    pub errors: Vec<String>,
    /// Its etcd version (`3.4.23`).
    pub version: String,
}

impl MemberStatus {
    /// Whether it says it leads.
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.member_id
    }
}

/// A cluster member as Cluster.MemberList describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its id (as Status's `member_id`).
    pub id: u64,
    /// Empty for a member added but not started yet.
    pub name: String,
    /// Where the other members reach it.
    pub peer_urls: Vec<String>,
    /// Where clients reach it (empty until it has started).
    pub client_urls: Vec<String>,
    /// Whether it is a learner (a non-voting member).
    pub is_learner: bool,
}

impl From<pb::Member> for MemberInfo {
    fn from(m: pb::Member) -> MemberInfo {
        MemberInfo {
            id: m.id,
            name: m.name,
            peer_urls: m.peer_ur_ls,
            client_urls: m.client_ur_ls,
            is_learner: m.is_learner,
        }
    }
}

/// A member's hash of its key-value history (Maintenance.HashKV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvHash {
    /// The answering member's id.
    pub member_id: u64,
    /// Over every key revision up to the requested revision.
    pub hash: u32,
    /// Revisions at or below it were compacted away before hashing: hashes
    /// are comparable only between equal compact revisions.
    pub compact_revision: i64,
}

impl EtcdClient {
    /// Connections to `members` (name, client URL such as
    /// `http://127.0.0.1:2379`), opened on first use.
    pub fn new(members: &[(String, String)], options: ClientOptions) -> Result<EtcdClient, BadUrl> {
        let mut client = EtcdClient {
            members: Vec::new(),
            options,
        };
        for (name, url) in members {
            client.add_member(name, url)?;
        }
        Ok(client)
    }

    /// Adds a member to address (after a MemberAdd, say); returns its index.
    pub fn add_member(&mut self, name: &str, url: &str) -> Result<usize, BadUrl> {
        let bad = |reason: String| BadUrl {
            member: name.to_string(),
            url: url.to_string(),
            reason,
        };
        if !url.starts_with("http://") {
            return Err(bad("expected http://HOST:PORT".into()));
        }
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| bad(e.to_string()))?
            .connect_timeout(self.options.connect_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        self.members.push(MemberConn {
            name: name.to_string(),
            url: url.to_string(),
            channel,
        });
        Ok(self.members.len() - 1)
    }

    /// How many members it addresses.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it addresses no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `member`'s name.
    pub fn name(&self, member: usize) -> &str {
        &self.members[member].name
    }

    /// Member `member`'s client URL.
    pub fn url(&self, member: usize) -> &str {
        &self.members[member].url
    }

    /// The index of the member called `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    fn kv(&self, member: usize) -> KvClient<Channel> {
        KvClient::new(self.members[member].channel.clone())
    }

    fn maintenance(&self, member: usize) -> MaintenanceClient<Channel> {
        MaintenanceClient::new(self.members[member].channel.clone())
    }

    fn cluster(&self, member: usize) -> ClusterClient<Channel> {
        ClusterClient::new(self.members[member].channel.clone())
    }

    /// A request with the deadline and, for key-value calls, `hasleader`.
    fn request<T>(&self, msg: T, timeout: Duration, kv: bool) -> Request<T> {
        let mut r = Request::new(msg);
        r.set_timeout(timeout);
        if kv && self.options.require_leader {
            r.metadata_mut().insert(
                "hasleader",
                tonic::metadata::MetadataValue::from_static("true"),
            );
        }
        r
    }

    /// Range on one key.
    pub async fn get(
        &self,
        member: usize,
        key: &[u8],
        consistency: Consistency,
        timeout: Duration,
    ) -> Result<Read, EtcdError> {
        let msg = range(key, consistency);
        // A serializable read is the member's own state, leader or not:
        // asking it to have a leader would hide what a cut-off member serves.
        let kv = consistency == Consistency::Linearizable;
        let r = bounded(
            timeout,
            self.kv(member).range(self.request(msg, timeout, kv)),
        )
        .await
        .map_err(|s| classify(&s, Effect::ReadOnly))?;
        let kv = r.kvs.into_iter().next();
        Ok(Read {
            mod_revision: kv.as_ref().map_or(0, |kv| kv.mod_revision),
            value: kv.map(|kv| kv.value),
            revision: revision(&r.header),
        })
    }

    /// Put; returns the store's new revision.
    pub async fn put(
        &self,
        member: usize,
        key: &[u8],
        value: Vec<u8>,
        timeout: Duration,
    ) -> Result<i64, EtcdError> {
        let msg = put(key, value);
        let r = bounded(
            timeout,
            self.kv(member).put(self.request(msg, timeout, true)),
        )
        .await
        .map_err(|s| classify(&s, Effect::Update))?;
        Ok(revision(&r.header))
    }

    /// Replaces the value by `new` if it is `expected` (`None`: if the key
    /// is absent, which etcd sees as `create_revision == 0`), in one Txn
    /// whose failure branch reads the key.
    pub async fn cas(
        &self,
        member: usize,
        key: &[u8],
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
        timeout: Duration,
    ) -> Result<CasResult, EtcdError> {
        let compare = match expected {
            Some(v) => compare(key, CompareTarget::Value, TargetUnion::Value(v)),
            None => compare(key, CompareTarget::Create, TargetUnion::CreateRevision(0)),
        };
        let r = self.txn(member, key, compare, new, timeout).await?;
        if r.succeeded {
            return Ok(CasResult::Swapped {
                revision: revision(&r.header),
            });
        }
        let kv = failure_read(r)?;
        Ok(CasResult::Mismatch {
            actual: kv.map(|kv| kv.value),
        })
    }

    /// The list stored at `key` (an absent key is the empty list).
    pub async fn read_list(
        &self,
        member: usize,
        key: &[u8],
        consistency: Consistency,
        timeout: Duration,
    ) -> Result<ListState, EtcdError> {
        let r = self.get(member, key, consistency, timeout).await?;
        list_state(r.value.as_deref(), r.mod_revision)
    }

    /// Writes `seen.list` + `token` if the key is still as `seen` (its
    /// `mod_revision`, 0 when absent), in one Txn whose failure branch reads
    /// the key.
    pub async fn append_after(
        &self,
        member: usize,
        key: &[u8],
        seen: &ListState,
        token: i64,
        timeout: Duration,
    ) -> Result<AppendResult, EtcdError> {
        let mut list = seen.list.clone();
        list.push(token);
        let compare = compare(
            key,
            CompareTarget::Mod,
            TargetUnion::ModRevision(seen.mod_revision),
        );
        let r = self
            .txn(member, key, compare, value::encode_list(&list), timeout)
            .await?;
        if r.succeeded {
            return Ok(AppendResult::Appended {
                revision: revision(&r.header),
                list,
            });
        }
        let kv = failure_read(r)?;
        let now = match kv {
            Some(kv) => list_state(Some(&kv.value), kv.mod_revision)?,
            None => ListState::default(),
        };
        Ok(AppendResult::Mismatch { now })
    }

    /// Appends `token` to the list at `key`: a linearizable read, then up
    /// to `attempts` conditional writes, each retry starting from the state
    /// the failed one read. Every failed compare changed nothing, so the
    /// retries are one operation; the first error ends it (and an unknown
    /// one leaves it unknown). Within `timeout` overall.
    ///
    /// The read is linearizable so that a mismatch means a concurrent
    /// write: a serializable read on a follower that has not applied the
    /// last append yet fails the compare for nothing (seen in
    /// `tests/etcd_cluster.rs` with one attempt).
    pub async fn append(
        &self,
        member: usize,
        key: &[u8],
        token: i64,
        attempts: u32,
        timeout: Duration,
    ) -> Result<AppendResult, EtcdError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut seen = self
            .read_list(member, key, Consistency::Linearizable, timeout)
            .await?;
        let mut attempt = 1;
        loop {
            match self.append_after(member, key, &seen, token, left()).await? {
                // Retry only with time to spare: a call sent with no time
                // left would end unknown, where the mismatch is definite.
                AppendResult::Mismatch { now } if attempt < attempts && left() >= MIN_ATTEMPT => {
                    seen = now;
                    attempt += 1;
                }
                result => return Ok(result),
            }
        }
    }

    /// A Txn: if `compare`, put `value` at `key`, else read `key`.
    async fn txn(
        &self,
        member: usize,
        key: &[u8],
        compare: pb::Compare,
        value: Vec<u8>,
        timeout: Duration,
    ) -> Result<pb::TxnResponse, EtcdError> {
        let msg = pb::TxnRequest {
            compare: vec![compare],
            success: vec![pb::RequestOp {
                request: Some(Op::RequestPut(put(key, value))),
            }],
            failure: vec![pb::RequestOp {
                request: Some(Op::RequestRange(range(key, Consistency::Linearizable))),
            }],
        };
        bounded(
            timeout,
            self.kv(member).txn(self.request(msg, timeout, true)),
        )
        .await
        .map_err(|s| classify(&s, Effect::Update))
    }

    /// Maintenance.Status of one member (served by the member alone).
    pub async fn status(
        &self,
        member: usize,
        timeout: Duration,
    ) -> Result<MemberStatus, EtcdError> {
        let msg = pb::StatusRequest {};
        let r = bounded(
            timeout,
            self.maintenance(member)
                .status(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::ReadOnly))?;
        Ok(MemberStatus {
            member_id: r.header.as_ref().map_or(0, |h| h.member_id),
            revision: revision(&r.header),
            leader: r.leader,
            raft_term: r.raft_term,
            raft_index: r.raft_index,
            raft_applied_index: r.raft_applied_index,
            is_learner: r.is_learner,
            errors: r.errors,
            version: r.version,
        })
    }

    /// Cluster.MemberList as `member` sees it.
    pub async fn member_list(
        &self,
        member: usize,
        timeout: Duration,
    ) -> Result<Vec<MemberInfo>, EtcdError> {
        let msg = pb::MemberListRequest {};
        let r = bounded(
            timeout,
            self.cluster(member)
                .member_list(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::ReadOnly))?;
        Ok(r.members.into_iter().map(MemberInfo::from).collect())
    }

    /// Maintenance.HashKV of `member`'s keys up to `revision` (0: its
    /// current revision).
    pub async fn hash_kv(
        &self,
        member: usize,
        revision: i64,
        timeout: Duration,
    ) -> Result<KvHash, EtcdError> {
        let msg = pb::HashKvRequest { revision };
        let r = bounded(
            timeout,
            self.maintenance(member)
                .hash_kv(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::ReadOnly))?;
        Ok(KvHash {
            member_id: r.header.as_ref().map_or(0, |h| h.member_id),
            hash: r.hash,
            compact_revision: r.compact_revision,
        })
    }

    /// Cluster.MemberAdd through `member`: the new member (with its id) and
    /// the membership after the change.
    pub async fn member_add(
        &self,
        member: usize,
        peer_urls: Vec<String>,
        is_learner: bool,
        timeout: Duration,
    ) -> Result<(MemberInfo, Vec<MemberInfo>), EtcdError> {
        let msg = pb::MemberAddRequest {
            peer_ur_ls: peer_urls,
            is_learner,
        };
        let r = bounded(
            timeout,
            self.cluster(member)
                .member_add(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::Update))?;
        let added = r.member.map(MemberInfo::from).ok_or_else(|| {
            EtcdError::unknown("bad-answer", "MemberAdd answered without the member")
        })?;
        Ok((added, r.members.into_iter().map(MemberInfo::from).collect()))
    }

    /// Cluster.MemberRemove through `member`; the membership after.
    pub async fn member_remove(
        &self,
        member: usize,
        id: u64,
        timeout: Duration,
    ) -> Result<Vec<MemberInfo>, EtcdError> {
        let msg = pb::MemberRemoveRequest { id };
        let r = bounded(
            timeout,
            self.cluster(member)
                .member_remove(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::Update))?;
        Ok(r.members.into_iter().map(MemberInfo::from).collect())
    }

    /// Cluster.MemberPromote (learner to voter) through `member`; the
    /// membership after.
    pub async fn member_promote(
        &self,
        member: usize,
        id: u64,
        timeout: Duration,
    ) -> Result<Vec<MemberInfo>, EtcdError> {
        let msg = pb::MemberPromoteRequest { id };
        let r = bounded(
            timeout,
            self.cluster(member)
                .member_promote(self.request(msg, timeout, false)),
        )
        .await
        .map_err(|s| classify(&s, Effect::Update))?;
        Ok(r.members.into_iter().map(MemberInfo::from).collect())
    }
}

/// Bounds a call, connection set-up included, by `timeout`.
async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, Status>>,
) -> Result<T, Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(Status::deadline_exceeded("client deadline")),
    }
}

fn range(key: &[u8], consistency: Consistency) -> pb::RangeRequest {
    pb::RangeRequest {
        key: key.to_vec(),
        serializable: consistency == Consistency::Serializable,
        ..Default::default()
    }
}

fn put(key: &[u8], value: Vec<u8>) -> pb::PutRequest {
    pb::PutRequest {
        key: key.to_vec(),
        value,
        ..Default::default()
    }
}

fn compare(key: &[u8], target: CompareTarget, value: TargetUnion) -> pb::Compare {
    pb::Compare {
        result: CompareResult::Equal as i32,
        target: target as i32,
        key: key.to_vec(),
        range_end: Vec::new(),
        target_union: Some(value),
    }
}

fn revision(header: &Option<pb::ResponseHeader>) -> i64 {
    header.as_ref().map_or(0, |h| h.revision)
}

/// The key read by a Txn's failure branch (`None`: absent).
fn failure_read(r: pb::TxnResponse) -> Result<Option<etcd_proto::mvccpb::KeyValue>, EtcdError> {
    // The compare failed, so the Txn changed nothing: a malformed answer
    // is still a definite failure.
    match r.responses.into_iter().next().and_then(|op| op.response) {
        Some(OpResponse::ResponseRange(range)) => Ok(range.kvs.into_iter().next()),
        other => Err(EtcdError::definite(
            "bad-answer",
            format!("a failed Txn answered {other:?} instead of its Range"),
        )),
    }
}

fn list_state(value: Option<&[u8]>, mod_revision: i64) -> Result<ListState, EtcdError> {
    let list = match value {
        Some(v) => value::decode_list(v).map_err(|e| EtcdError::definite("bad-value", e))?,
        None => Vec::new(),
    };
    Ok(ListState { list, mod_revision })
}
