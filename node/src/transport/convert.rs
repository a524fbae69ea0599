//! Core messages to protobuf and back. Anything a peer sends is checked here:
//! a malformed message is refused with what is wrong, never half-applied.

use proto::raft as pb;

use raft::{
    AppendRequest, AppendResponse, Body, Entry, EntryKind, LogIndex, Membership, Message, NodeId,
    SnapshotResponse, Term, VoteRequest, VoteResponse,
};

/// A message from a peer that is not a valid Raft message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed message {position} from {from}: {reason}")]
pub struct MalformedMessage {
    /// The peer.
    pub from: String,
    /// Its place in the batch.
    pub position: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// A core message for a batch; `None` for an InstallSnapshot, which travels
/// as a stream of chunks instead.
pub fn to_proto(m: &Message) -> Option<pb::Message> {
    use pb::message::Body as B;
    let body = match &m.body {
        Body::VoteRequest(v) => B::VoteRequest(pb::VoteRequest {
            last_log_index: v.last_log_index.0,
            last_log_term: v.last_log_term.0,
            pre_vote: v.pre_vote,
            transfer: v.transfer,
            incarnation: v.incarnation,
        }),
        Body::VoteResponse(v) => B::VoteResponse(pb::VoteResponse {
            granted: v.granted,
            pre_vote: v.pre_vote,
        }),
        Body::AppendRequest(a) => B::AppendRequest(pb::AppendRequest {
            prev_log_index: a.prev_log_index.0,
            prev_log_term: a.prev_log_term.0,
            entries: a.entries.iter().map(entry_to_proto).collect(),
            leader_commit: a.leader_commit.0,
            read_ctx: a.read_ctx,
        }),
        Body::AppendResponse(a) => B::AppendResponse(pb::AppendResponse {
            success: a.success,
            index: a.index.0,
            conflict_term: a.conflict_term.0,
            conflict_index: a.conflict_index.0,
            read_ctx: a.read_ctx,
            last_log_index: a.last_log_index.0,
            incarnation: a.incarnation,
            rejoining: a.rejoining,
        }),
        Body::SnapshotResponse(s) => B::SnapshotResponse(pb::SnapshotResponse {
            index: s.index.0,
            accepted: s.accepted,
        }),
        Body::TimeoutNow => B::TimeoutNow(pb::TimeoutNow {}),
        // Travels as a stream of chunks, not in a message batch.
        Body::InstallSnapshot(_) => return None,
    };
    Some(pb::Message {
        term: m.term.0,
        body: Some(body),
    })
}

/// A log entry as the wire carries it.
pub fn entry_to_proto(e: &Entry) -> pb::Entry {
    pb::Entry {
        index: e.index.0,
        term: e.term.0,
        kind: match e.kind {
            EntryKind::Normal => pb::EntryKind::Normal as i32,
            EntryKind::Noop => pb::EntryKind::Noop as i32,
            EntryKind::Config => pb::EntryKind::Config as i32,
        },
        data: e.data.clone(),
    }
}

/// Converts the `position`-th message of a batch from `from` to `to`.
pub fn from_proto(
    from: &NodeId,
    to: &NodeId,
    position: usize,
    m: pb::Message,
) -> Result<Message, MalformedMessage> {
    use pb::message::Body as B;
    let bad = |reason: String| MalformedMessage {
        from: from.0.clone(),
        position,
        reason,
    };
    let body = match m.body.ok_or_else(|| bad("no body".into()))? {
        B::VoteRequest(v) => Body::VoteRequest(VoteRequest {
            last_log_index: LogIndex(v.last_log_index),
            last_log_term: Term(v.last_log_term),
            pre_vote: v.pre_vote,
            transfer: v.transfer,
            incarnation: v.incarnation,
        }),
        B::VoteResponse(v) => Body::VoteResponse(VoteResponse {
            granted: v.granted,
            pre_vote: v.pre_vote,
        }),
        B::AppendRequest(a) => {
            let mut entries = Vec::with_capacity(a.entries.len());
            for (i, e) in a.entries.into_iter().enumerate() {
                let expected = a.prev_log_index + 1 + i as u64;
                if e.index != expected {
                    return Err(bad(format!(
                        "entry {i} has index {}, expected {expected}",
                        e.index
                    )));
                }
                if e.term > m.term || e.term < a.prev_log_term {
                    return Err(bad(format!(
                        "entry {} has term {}, outside [{}, {}]",
                        e.index, e.term, a.prev_log_term, m.term
                    )));
                }
                let kind = match pb::EntryKind::try_from(e.kind) {
                    Ok(pb::EntryKind::Normal) => EntryKind::Normal,
                    Ok(pb::EntryKind::Noop) => EntryKind::Noop,
                    Ok(pb::EntryKind::Config) => {
                        // The core trusts a configuration entry: check it here.
                        Membership::decode(&e.data).map_err(|reason| {
                            bad(format!(
                                "entry {} is a bad configuration: {reason}",
                                e.index
                            ))
                        })?;
                        EntryKind::Config
                    }
                    Err(_) => {
                        return Err(bad(format!(
                            "entry {} has unknown kind {}",
                            e.index, e.kind
                        )));
                    }
                };
                entries.push(Entry {
                    index: LogIndex(e.index),
                    term: Term(e.term),
                    kind,
                    data: e.data,
                });
            }
            if let Some(w) = entries.windows(2).find(|w| w[1].term < w[0].term) {
                return Err(bad(format!(
                    "entry {} has a lower term than the one before",
                    w[1].index
                )));
            }
            Body::AppendRequest(AppendRequest {
                prev_log_index: LogIndex(a.prev_log_index),
                prev_log_term: Term(a.prev_log_term),
                entries,
                leader_commit: LogIndex(a.leader_commit),
                read_ctx: a.read_ctx,
            })
        }
        B::AppendResponse(a) => Body::AppendResponse(AppendResponse {
            success: a.success,
            index: LogIndex(a.index),
            conflict_term: Term(a.conflict_term),
            conflict_index: LogIndex(a.conflict_index),
            read_ctx: a.read_ctx,
            last_log_index: LogIndex(a.last_log_index),
            incarnation: a.incarnation,
            rejoining: a.rejoining,
        }),
        B::SnapshotResponse(s) => Body::SnapshotResponse(SnapshotResponse {
            index: LogIndex(s.index),
            accepted: s.accepted,
        }),
        B::TimeoutNow(_) => Body::TimeoutNow,
    };
    Ok(Message {
        from: from.clone(),
        to: to.clone(),
        term: Term(m.term),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn every_batched_message_round_trips() {
        let bodies = vec![
            Body::VoteRequest(VoteRequest {
                last_log_index: LogIndex(4),
                last_log_term: Term(2),
                pre_vote: true,
                transfer: true,
                incarnation: 77,
            }),
            Body::VoteResponse(VoteResponse {
                granted: true,
                pre_vote: false,
            }),
            Body::AppendRequest(AppendRequest {
                prev_log_index: LogIndex(3),
                prev_log_term: Term(1),
                entries: vec![
                    Entry {
                        index: LogIndex(4),
                        term: Term(2),
                        kind: EntryKind::Noop,
                        data: Bytes::new(),
                    },
                    Entry {
                        index: LogIndex(5),
                        term: Term(3),
                        kind: EntryKind::Normal,
                        data: Bytes::from_static(b"x"),
                    },
                    Entry {
                        index: LogIndex(6),
                        term: Term(3),
                        kind: EntryKind::Config,
                        data: Bytes::from(Membership::voters([id("n1"), id("n2")]).encode()),
                    },
                ],
                leader_commit: LogIndex(3),
                read_ctx: 9,
            }),
            Body::AppendResponse(AppendResponse {
                success: false,
                index: LogIndex(7),
                conflict_term: Term(2),
                conflict_index: LogIndex(5),
                read_ctx: 1,
                last_log_index: LogIndex(8),
                incarnation: 5,
                rejoining: true,
            }),
            Body::SnapshotResponse(SnapshotResponse {
                index: LogIndex(100),
                accepted: true,
            }),
            Body::TimeoutNow,
        ];
        for body in bodies {
            let m = Message {
                from: id("n1"),
                to: id("n2"),
                term: Term(3),
                body,
            };
            let back = from_proto(&id("n1"), &id("n2"), 0, to_proto(&m).unwrap()).unwrap();
            assert_eq!(back, m);
        }
    }

    #[test]
    fn malformed_appends_are_refused_with_a_reason() {
        let mk = |entries: Vec<pb::Entry>| pb::Message {
            term: 3,
            body: Some(pb::message::Body::AppendRequest(pb::AppendRequest {
                prev_log_index: 3,
                prev_log_term: 1,
                entries,
                leader_commit: 0,
                read_ctx: 0,
            })),
        };
        let e = |index, term, kind| pb::Entry {
            index,
            term,
            kind,
            data: Bytes::new(),
        };
        let err = |m| {
            from_proto(&id("n1"), &id("n2"), 2, m)
                .unwrap_err()
                .to_string()
        };
        assert!(err(mk(vec![e(5, 2, 0)])).contains("expected 4"));
        assert!(err(mk(vec![e(4, 9, 0)])).contains("outside"));
        assert!(err(mk(vec![e(4, 2, 0), e(5, 0, 0)])).contains("outside"));
        assert!(err(mk(vec![e(4, 3, 0), e(5, 2, 0)])).contains("lower term"));
        assert!(err(mk(vec![e(4, 2, 7)])).contains("unknown kind"));
        assert!(err(mk(vec![e(4, 2, 2)])).contains("bad configuration"));
        let msg = err(pb::Message {
            term: 1,
            body: None,
        });
        assert!(
            msg.contains("message 2 from n1") && msg.contains("no body"),
            "{msg}"
        );
    }
}
