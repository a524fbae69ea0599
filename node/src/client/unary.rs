//! [`NodeClient`]: one unary RPC per call, on a channel of its own.

use std::future::Future;
use std::time::Duration;

use proto::kv as pb;
use proto::kv::admin_client::AdminClient;
use proto::kv::kv_call::Op;
use proto::kv::kv_client::KvClient;
use tonic::transport::Channel;

use super::members::{MemberChange, MemberReply};
use super::request::{CallError, Reply, Request, reply};
use super::{BadAddress, StatusResponse, channel};

/// A client of one node's unary `Kv` calls and its `Admin` service; clones
/// share the connection.
#[derive(Clone)]
pub struct NodeClient {
    cluster_id: String,
    kv: KvClient<Channel>,
    admin: AdminClient<Channel>,
}

impl NodeClient {
    /// A client for the node at `addr` (HOST:PORT) of cluster `cluster_id`.
    /// Connects on first use, within `connect_timeout`.
    pub fn new(
        addr: &str,
        cluster_id: &str,
        connect_timeout: Duration,
    ) -> Result<NodeClient, BadAddress> {
        let channel = channel(addr, connect_timeout)?;
        Ok(NodeClient {
            cluster_id: cluster_id.to_string(),
            kv: KvClient::new(channel.clone()),
            admin: AdminClient::new(channel),
        })
    }

    /// Sends `request` and waits for the answer at most `timeout`, which
    /// also travels as the call's deadline (`grpc-timeout`).
    pub async fn call(&self, request: Request, timeout: Duration) -> Result<Reply, CallError> {
        let mut kv = self.kv.clone();
        let answer = match request.into_op(&self.cluster_id) {
            Op::Get(m) => bounded(timeout, kv.get(with_deadline(m, timeout))).await,
            Op::Put(m) => bounded(timeout, kv.put(with_deadline(m, timeout))).await,
            Op::Cas(m) => bounded(timeout, kv.cas(with_deadline(m, timeout))).await,
            Op::Append(m) => bounded(timeout, kv.append(with_deadline(m, timeout))).await,
        };
        reply(answer)
    }

    /// The node's role, term, leader and log positions.
    pub async fn status(&self, timeout: Duration) -> Result<StatusResponse, CallError> {
        let msg = pb::StatusRequest {
            cluster_id: self.cluster_id.clone(),
        };
        let mut admin = self.admin.clone();
        bounded(timeout, admin.status(with_deadline(msg, timeout)))
            .await
            .map_err(CallError::from)
    }

    /// The node's own applied state (`Admin.LocalDump`), not through the
    /// leader: for comparing replicas.
    pub async fn local_dump(&self, timeout: Duration) -> Result<pb::LocalDumpResponse, CallError> {
        let msg = pb::LocalDumpRequest {
            cluster_id: self.cluster_id.clone(),
        };
        let mut admin = self.admin.clone();
        bounded(timeout, admin.local_dump(with_deadline(msg, timeout)))
            .await
            .map_err(CallError::from)
    }
}

impl NodeClient {
    /// The cluster's members, with the leader's view of each (a node that
    /// does not lead answers [`MemberReply::NotLeader`]).
    pub async fn members(&self, timeout: Duration) -> Result<MemberReply, CallError> {
        let msg = pb::MembersRequest {
            cluster_id: self.cluster_id.clone(),
        };
        let mut admin = self.admin.clone();
        let r = bounded(timeout, admin.members(with_deadline(msg, timeout))).await?;
        MemberReply::from_proto(r)
    }

    /// Asks the leader for a membership change, waiting at most `timeout`
    /// (adding a voter waits for it to catch up). A timeout or a broken
    /// connection leaves the outcome unknown: list the members.
    pub async fn change_members(
        &self,
        change: MemberChange,
        timeout: Duration,
    ) -> Result<MemberReply, CallError> {
        let mut admin = self.admin.clone();
        let cluster_id = self.cluster_id.clone();
        let one = |id: String| pb::MemberRequest {
            cluster_id: cluster_id.clone(),
            id,
        };
        let answer = match change {
            MemberChange::Add { id, addr, learner } => {
                let msg = pb::AddMemberRequest {
                    cluster_id: cluster_id.clone(),
                    id,
                    addr,
                    learner,
                };
                bounded(timeout, admin.add_member(with_deadline(msg, timeout))).await
            }
            MemberChange::Remove(id) => {
                bounded(
                    timeout,
                    admin.remove_member(with_deadline(one(id), timeout)),
                )
                .await
            }
            MemberChange::Promote(id) => {
                bounded(
                    timeout,
                    admin.promote_member(with_deadline(one(id), timeout)),
                )
                .await
            }
            MemberChange::Readd(id) => {
                bounded(timeout, admin.readd_member(with_deadline(one(id), timeout))).await
            }
            MemberChange::Transfer(id) => {
                bounded(
                    timeout,
                    admin.transfer_leader(with_deadline(one(id), timeout)),
                )
                .await
            }
        };
        MemberReply::from_proto(answer?)
    }
}

fn with_deadline<T>(msg: T, timeout: Duration) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(timeout);
    r
}

/// Bounds the whole call, connection set-up included, by `timeout`.
async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, tonic::Status> {
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r.map(tonic::Response::into_inner),
        Err(_) => Err(tonic::Status::deadline_exceeded("client timeout")),
    }
}
