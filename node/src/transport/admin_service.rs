//! The `Admin` service: a node's state and its cluster's membership, for
//! operators and the harness.

use std::time::Duration;

use proto::kv as kvpb;
use raft::NodeId;
use tokio::sync::oneshot;
use tonic::{Request, Response, Status};

use super::shared::{Shared, asked_deadline, wait};
use crate::config::check_member_addr;
use crate::mailbox::{Event, LocalState, MemberAnswer, MemberOp, MemberRefusal, NodeStatus};

/// The service operators call.
pub struct AdminService(pub Shared);

/// How long a membership request may wait when the caller sets no
/// deadline: adding a voter waits for it to catch up.
const DEFAULT_MEMBER_DEADLINE: Duration = Duration::from_secs(30);

#[tonic::async_trait]
impl kvpb::admin_server::Admin for AdminService {
    async fn status(
        &self,
        req: Request<kvpb::StatusRequest>,
    ) -> Result<Response<kvpb::StatusResponse>, Status> {
        self.0.check_cluster(&req.get_ref().cluster_id)?;
        let (tx, rx) = oneshot::channel();
        self.0.submit(Event::Status { reply: tx })?;
        let NodeStatus {
            raft: s,
            cluster_id,
            standing,
        } = wait(rx, Duration::from_secs(5)).await?;
        let name = |n: Option<NodeId>| n.map(|n| n.0).unwrap_or_default();
        let names = |ids: Vec<NodeId>| ids.into_iter().map(|i| i.0).collect();
        Ok(Response::new(kvpb::StatusResponse {
            id: s.id.0,
            role: s.role.as_str().to_string(),
            term: s.term.0,
            leader_id: name(s.leader),
            voted_for: name(s.voted_for),
            commit_index: s.commit_index.0,
            last_applied: s.applied_index.0,
            first_log_index: s.first_index.0,
            last_log_index: s.last_index.0,
            snapshot_index: s.snapshot_index.0,
            members: names(s.members),
            cluster_id,
            voters: names(s.membership.voters_ids()),
            learners: names(s.membership.learners_ids()),
            awaiting_readd: names(s.awaiting_readd),
            incarnation: s.incarnation,
            standing: standing.to_string(),
        }))
    }

    async fn members(
        &self,
        req: Request<kvpb::MembersRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let limit = deadline(&req);
        self.0.check_cluster(&req.get_ref().cluster_id)?;
        self.ask(MemberOp::List, limit).await
    }

    async fn add_member(
        &self,
        req: Request<kvpb::AddMemberRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        let id = member_id(&r.id)?;
        check_member_addr(&r.addr).map_err(Status::invalid_argument)?;
        let op = MemberOp::Add {
            id,
            addr: r.addr,
            learner: r.learner,
        };
        self.ask(op, limit).await
    }

    async fn remove_member(
        &self,
        req: Request<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let (id, limit) = self.member(req)?;
        self.ask(MemberOp::Remove { id }, limit).await
    }

    async fn promote_member(
        &self,
        req: Request<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let (id, limit) = self.member(req)?;
        self.ask(MemberOp::Promote { id }, limit).await
    }

    async fn readd_member(
        &self,
        req: Request<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let (id, limit) = self.member(req)?;
        self.ask(MemberOp::Readd { id }, limit).await
    }

    async fn transfer_leader(
        &self,
        req: Request<kvpb::MemberRequest>,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let (id, limit) = self.member(req)?;
        self.ask(MemberOp::Transfer { id }, limit).await
    }

    async fn local_dump(
        &self,
        req: Request<kvpb::LocalDumpRequest>,
    ) -> Result<Response<kvpb::LocalDumpResponse>, Status> {
        self.local_dump_inner(req).await
    }
}

impl AdminService {
    /// `LocalDump`: this replica's state as it applied it, without the leader.
    async fn local_dump_inner(
        &self,
        req: Request<kvpb::LocalDumpRequest>,
    ) -> Result<Response<kvpb::LocalDumpResponse>, Status> {
        self.0.check_cluster(&req.get_ref().cluster_id)?;
        let (tx, rx) = oneshot::channel();
        self.0.submit(Event::LocalDump { reply: tx })?;
        let s: LocalState = wait(rx, Duration::from_secs(5)).await?;
        Ok(Response::new(kvpb::LocalDumpResponse {
            id: self.0.me.0.clone(),
            applied_index: s.applied.0,
            commit_index: s.commit.0,
            term: s.term.0,
            values_digest: format!("{:016x}", s.digest.values),
            sessions_digest: format!("{:016x}", s.digest.sessions),
            values: s
                .values
                .into_iter()
                .map(|(key, value)| kvpb::LocalValue { key, value })
                .collect(),
        }))
    }

    /// The checked id of a request about one member, and its deadline.
    fn member(&self, req: Request<kvpb::MemberRequest>) -> Result<(NodeId, Duration), Status> {
        let limit = deadline(&req);
        let r = req.into_inner();
        self.0.check_cluster(&r.cluster_id)?;
        Ok((member_id(&r.id)?, limit))
    }

    /// Hands `op` to the driver and turns its outcome into a response.
    async fn ask(
        &self,
        op: MemberOp,
        limit: Duration,
    ) -> Result<Response<kvpb::MemberResponse>, Status> {
        let (tx, rx) = oneshot::channel();
        self.0.submit(Event::Member { op, reply: tx })?;
        let response = match wait(rx, limit).await? {
            Ok(answer) => answered(answer),
            Err(MemberRefusal::NotLeader { leader, addr }) => kvpb::MemberResponse {
                status: kvpb::MemberStatus::NotLeader as i32,
                leader_id: leader.map(|l| l.0).unwrap_or_default(),
                leader_addr: addr.unwrap_or_default(),
                ..Default::default()
            },
            Err(MemberRefusal::Refused(why)) => kvpb::MemberResponse {
                status: kvpb::MemberStatus::Refused as i32,
                error: why,
                ..Default::default()
            },
            Err(MemberRefusal::Unknown(why)) => return Err(Status::unavailable(why)),
        };
        Ok(Response::new(response))
    }
}

fn answered(a: MemberAnswer) -> kvpb::MemberResponse {
    kvpb::MemberResponse {
        status: kvpb::MemberStatus::Ok as i32,
        error: String::new(),
        leader_id: a.leader.map(|l| l.0).unwrap_or_default(),
        leader_addr: String::new(),
        index: a.index.0,
        members: a
            .members
            .into_iter()
            .map(|p| kvpb::Member {
                id: p.member.id.0,
                addr: p.member.addr,
                role: p.member.role.as_str().to_string(),
                incarnation: p.member.incarnation,
                awaiting_readd: p.rejoining && p.member.role == raft::MemberRole::Voter,
                match_index: p.match_index.0,
                caught_up: p.caught_up,
            })
            .collect(),
    }
}

/// A member id as `--id` takes it.
fn member_id(id: &str) -> Result<NodeId, Status> {
    if id.is_empty() || id.contains(['=', ' ']) || id.len() > 255 {
        return Err(Status::invalid_argument(format!(
            "member id `{id}`: must be 1 to 255 bytes, without `=` or spaces"
        )));
    }
    Ok(NodeId::new(id))
}

/// The caller's deadline (`grpc-timeout`), or the default for membership.
fn deadline<T>(req: &Request<T>) -> Duration {
    asked_deadline(req)
        .unwrap_or(DEFAULT_MEMBER_DEADLINE)
        .min(Duration::from_secs(120))
}
