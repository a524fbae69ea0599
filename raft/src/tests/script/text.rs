//! The words of the scripts: how messages, entries and `Ready`s are
//! written, both in a script's commands and in its golden output.
//!
//! ```text
//! n1->n2 term=2 VoteRequest last=3@2 [pre-vote] [transfer] [inc=N]
//! n2->n1 term=2 VoteResponse granted|rejected [pre-vote]
//! n1->n2 term=2 AppendRequest prev=3@2 commit=3 [entries=[4@2,5@2=x,6@3:noop]] [read=N]
//! n2->n1 term=2 AppendResponse ok index=5 last=5 [read=N] [inc=N] [rejoining]
//! n2->n1 term=2 AppendResponse reject index=9 hint=6@0 last=5 [read=N] [inc=N] [rejoining]
//! n1->n3 term=2 InstallSnapshot snapshot=4@2 [config=n1+n2+n3]
//! n3->n1 term=2 SnapshotResponse accepted|refused index=4
//! n1->n2 term=2 TimeoutNow
//! ```
//!
//! `I@T` is index I of term T. An entry is `I@T` (a command with no data),
//! `I@T=data`, `I@T:noop` or `I@T:config=VOTERS[/LEARNERS]`, a whole
//! configuration, its ids joined with `+`, each with `#INCARNATION` when
//! one is named (addresses are not shown). An AppendResponse's `hint` is
//! the conflict index and term of a rejection; `inc` the sender's
//! incarnation when it has one.

use bytes::Bytes;

use crate::{
    AppendRequest, AppendResponse, Body, Entry, EntryKind, LogIndex, Member, MemberRole,
    Membership, Message, NodeId, Ready, SnapshotMeta, SnapshotResponse, Term, VoteRequest,
    VoteResponse,
};

/// `I@T`.
pub fn position(index: LogIndex, term: Term) -> String {
    format!("{index}@{term}")
}

pub fn entry(e: &Entry) -> String {
    let at = position(e.index, e.term);
    match e.kind {
        EntryKind::Noop => format!("{at}:noop"),
        EntryKind::Config => match Membership::decode(&e.data) {
            Ok(m) => format!("{at}:config={}", config(&m)),
            Err(_) => format!("{at}:config=<{} bytes>", e.data.len()),
        },
        EntryKind::Normal if e.data.is_empty() => at,
        EntryKind::Normal => match std::str::from_utf8(&e.data) {
            Ok(s)
                if s.chars()
                    .all(|c| c.is_ascii_graphic() && !",[]".contains(c)) =>
            {
                format!("{at}={s}")
            }
            _ => format!("{at}=<{} bytes>", e.data.len()),
        },
    }
}

/// `VOTERS[/LEARNERS]`, ids joined with `+`, `#INCARNATION` when named.
pub fn config(m: &Membership) -> String {
    let list = |role: MemberRole| {
        m.members()
            .iter()
            .filter(|x| x.role == role)
            .map(|x| match x.incarnation {
                0 => x.id.to_string(),
                i => format!("{}#{i}", x.id),
            })
            .collect::<Vec<_>>()
            .join("+")
    };
    let (voters, learners) = (list(MemberRole::Voter), list(MemberRole::Learner));
    if learners.is_empty() {
        voters
    } else {
        format!("{voters}/{learners}")
    }
}

/// Reads what [`config`] writes.
pub fn parse_config(s: &str) -> Result<Membership, String> {
    let (voters, learners) = s.split_once('/').unwrap_or((s, ""));
    let mut members = Vec::new();
    for (list, role) in [(voters, MemberRole::Voter), (learners, MemberRole::Learner)] {
        for word in list.split('+').filter(|w| !w.is_empty()) {
            let (id, incarnation) = match word.split_once('#') {
                Some((id, i)) => (id, parse_u64("incarnation", i)?),
                None => (word, 0),
            };
            members.push(Member {
                id: NodeId::new(id),
                addr: String::new(),
                role,
                incarnation,
            });
        }
    }
    Membership::new(members)
}

pub fn entries(es: &[Entry]) -> String {
    es.iter().map(entry).collect::<Vec<_>>().join(" ")
}

pub fn message(m: &Message) -> String {
    let mut s = format!("{}->{} term={} ", m.from, m.to, m.term);
    match &m.body {
        Body::VoteRequest(v) => {
            s += &format!(
                "VoteRequest last={}",
                position(v.last_log_index, v.last_log_term)
            );
            if v.pre_vote {
                s += " pre-vote";
            }
            if v.transfer {
                s += " transfer";
            }
            if v.incarnation != 0 {
                s += &format!(" inc={}", v.incarnation);
            }
        }
        Body::VoteResponse(v) => {
            s += if v.granted {
                "VoteResponse granted"
            } else {
                "VoteResponse rejected"
            };
            if v.pre_vote {
                s += " pre-vote";
            }
        }
        Body::AppendRequest(a) => {
            s += &format!(
                "AppendRequest prev={} commit={}",
                position(a.prev_log_index, a.prev_log_term),
                a.leader_commit
            );
            if !a.entries.is_empty() {
                let list: Vec<String> = a.entries.iter().map(entry).collect();
                s += &format!(" entries=[{}]", list.join(","));
            }
            if a.read_ctx != 0 {
                s += &format!(" read={}", a.read_ctx);
            }
        }
        Body::AppendResponse(a) => {
            if a.success {
                s += &format!("AppendResponse ok index={}", a.index);
            } else {
                s += &format!(
                    "AppendResponse reject index={} hint={}",
                    a.index,
                    position(a.conflict_index, a.conflict_term)
                );
            }
            s += &format!(" last={}", a.last_log_index);
            if a.read_ctx != 0 {
                s += &format!(" read={}", a.read_ctx);
            }
            if a.incarnation != 0 {
                s += &format!(" inc={}", a.incarnation);
            }
            if a.rejoining {
                s += " rejoining";
            }
        }
        Body::InstallSnapshot(meta) => {
            s += &format!(
                "InstallSnapshot snapshot={}",
                position(meta.index, meta.term)
            );
            if !meta.membership.is_empty() {
                s += &format!(" config={}", config(&meta.membership));
            }
        }
        Body::SnapshotResponse(r) => {
            s += &format!(
                "SnapshotResponse {} index={}",
                if r.accepted { "accepted" } else { "refused" },
                r.index
            );
        }
        Body::TimeoutNow => s += "TimeoutNow",
    }
    s
}

/// A `Ready`, its fields in the order the caller acts on them.
pub fn ready(id: &NodeId, rd: &Ready, out: &mut Vec<String>) {
    out.push(format!("> {id} ready"));
    for rc in &rd.role_changes {
        out.push(format!("  role: {} in term {}", rc.role.as_str(), rc.term));
    }
    if let Some(m) = &rd.membership {
        out.push(format!("  config: {}", config(m)));
    }
    if !rd.messages.is_empty() {
        out.push("  send now:".into());
        out.extend(rd.messages.iter().map(|m| format!("    {}", message(m))));
    }
    if let Some(install) = &rd.snapshot {
        out.push(format!(
            "  install snapshot: {} from {}",
            position(install.meta.index, install.meta.term),
            install.from
        ));
    }
    if let Some(hs) = &rd.hard_state {
        let vote = hs.voted_for.as_ref().map_or("none", NodeId::as_str);
        out.push(format!("  hard state: term={} vote={vote}", hs.term));
    }
    if let Some(cut) = rd.truncate_from {
        out.push(format!("  truncate log from: {cut}"));
    }
    if !rd.entries.is_empty() {
        out.push(format!("  append: {}", entries(&rd.entries)));
    }
    if !rd.persisted_messages.is_empty() {
        out.push("  send after persisting:".into());
        out.extend(
            rd.persisted_messages
                .iter()
                .map(|m| format!("    {}", message(m))),
        );
    }
    if !rd.committed.is_empty() {
        out.push(format!("  apply: {}", entries(&rd.committed)));
    }
    for r in &rd.reads {
        out.push(format!("  read {} confirmed at index {}", r.ctx, r.index));
    }
    for ctx in &rd.failed_reads {
        out.push(format!("  read {ctx} failed"));
    }
}

// ---- parsing -----------------------------------------------------------------

pub fn parse_u64(what: &str, s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{what} `{s}` is not a number"))
}

/// `I@T`.
pub fn parse_position(s: &str) -> Result<(LogIndex, Term), String> {
    let (i, t) = s
        .split_once('@')
        .ok_or_else(|| format!("`{s}` is not INDEX@TERM"))?;
    Ok((
        LogIndex(parse_u64("index", i)?),
        Term(parse_u64("term", t)?),
    ))
}

pub fn parse_entry(s: &str) -> Result<Entry, String> {
    let (at, kind, data) = if let Some(at) = s.strip_suffix(":noop") {
        (at, EntryKind::Noop, Bytes::new())
    } else if let Some((at, c)) = s.split_once(":config=") {
        let data = Bytes::from(parse_config(c)?.encode());
        (at, EntryKind::Config, data)
    } else if let Some((at, data)) = s.split_once('=') {
        (at, EntryKind::Normal, Bytes::from(data.to_string()))
    } else {
        (s, EntryKind::Normal, Bytes::new())
    };
    let (index, term) = parse_position(at)?;
    Ok(Entry {
        index,
        term,
        kind,
        data,
    })
}

/// The words after the kind of a message: flags and `key=value` pairs.
struct Fields<'a> {
    words: Vec<&'a str>,
}

impl<'a> Fields<'a> {
    fn flag(&mut self, name: &str) -> bool {
        let before = self.words.len();
        self.words.retain(|w| *w != name);
        self.words.len() < before
    }

    fn value(&mut self, key: &str) -> Option<&'a str> {
        let pos = self
            .words
            .iter()
            .position(|w| w.split_once('=').is_some_and(|(k, _)| k == key))?;
        let w = self.words.remove(pos);
        w.split_once('=').map(|(_, v)| v)
    }

    fn required(&mut self, key: &str) -> Result<&'a str, String> {
        self.value(key).ok_or_else(|| format!("missing {key}=..."))
    }

    fn number(&mut self, key: &str) -> Result<u64, String> {
        self.value(key).map_or(Ok(0), |v| parse_u64(key, v))
    }

    fn done(self) -> Result<(), String> {
        if self.words.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected {:?}", self.words))
        }
    }
}

/// A message as [`message`] writes it.
pub fn parse_message(s: &str) -> Result<Message, String> {
    let mut words = s.split_whitespace();
    let route = words.next().ok_or("an empty message")?;
    let (from, to) = route
        .split_once("->")
        .ok_or_else(|| format!("`{route}` is not FROM->TO"))?;
    let term = words
        .next()
        .and_then(|w| w.strip_prefix("term="))
        .ok_or("the route must be followed by term=T")?;
    let term = Term(parse_u64("term", term)?);
    let kind = words.next().ok_or("no message kind")?;
    let mut f = Fields {
        words: words.collect(),
    };
    let body = match kind {
        "VoteRequest" => {
            let (last_log_index, last_log_term) = parse_position(f.required("last")?)?;
            Body::VoteRequest(VoteRequest {
                last_log_index,
                last_log_term,
                pre_vote: f.flag("pre-vote"),
                transfer: f.flag("transfer"),
                incarnation: f.number("inc")?,
            })
        }
        "VoteResponse" => {
            let granted = f.flag("granted");
            if !granted && !f.flag("rejected") {
                return Err("a VoteResponse is `granted` or `rejected`".into());
            }
            Body::VoteResponse(VoteResponse {
                granted,
                pre_vote: f.flag("pre-vote"),
            })
        }
        "AppendRequest" => {
            let (prev_log_index, prev_log_term) = parse_position(f.required("prev")?)?;
            let entries = match f.value("entries") {
                None => Vec::new(),
                Some(list) => {
                    let list = list
                        .strip_prefix('[')
                        .and_then(|l| l.strip_suffix(']'))
                        .ok_or("entries=[...]")?;
                    list.split(',')
                        .filter(|e| !e.is_empty())
                        .map(parse_entry)
                        .collect::<Result<_, _>>()?
                }
            };
            Body::AppendRequest(AppendRequest {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: LogIndex(f.number("commit")?),
                read_ctx: f.number("read")?,
            })
        }
        "AppendResponse" => {
            let success = f.flag("ok");
            if !success && !f.flag("reject") {
                return Err("an AppendResponse is `ok` or `reject`".into());
            }
            let (conflict_index, conflict_term) = match f.value("hint") {
                Some(h) => parse_position(h)?,
                None => (LogIndex(0), Term(0)),
            };
            Body::AppendResponse(AppendResponse {
                success,
                index: LogIndex(f.number("index")?),
                conflict_term,
                conflict_index,
                read_ctx: f.number("read")?,
                last_log_index: LogIndex(f.number("last")?),
                incarnation: f.number("inc")?,
                rejoining: f.flag("rejoining"),
            })
        }
        "InstallSnapshot" => {
            let (index, term) = parse_position(f.required("snapshot")?)?;
            let membership = match f.value("config") {
                Some(c) => parse_config(c)?,
                None => Membership::default(),
            };
            Body::InstallSnapshot(SnapshotMeta {
                index,
                term,
                membership,
            })
        }
        "SnapshotResponse" => {
            let accepted = f.flag("accepted");
            if !accepted && !f.flag("refused") {
                return Err("a SnapshotResponse is `accepted` or `refused`".into());
            }
            Body::SnapshotResponse(SnapshotResponse {
                index: LogIndex(f.number("index")?),
                accepted,
            })
        }
        "TimeoutNow" => Body::TimeoutNow,
        other => return Err(format!("unknown message kind `{other}`")),
    };
    f.done()?;
    Ok(Message {
        from: NodeId::new(from),
        to: NodeId::new(to),
        term,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_reads_back_as_written() {
        let written = [
            "n1->n2 term=2 VoteRequest last=3@2",
            "n1->n2 term=3 VoteRequest last=3@2 pre-vote",
            "n1->n2 term=3 VoteRequest last=3@2 transfer inc=7",
            "n2->n1 term=2 VoteResponse granted",
            "n2->n1 term=2 VoteResponse rejected pre-vote",
            "n1->n2 term=2 AppendRequest prev=3@2 commit=3",
            "n1->n2 term=2 AppendRequest prev=3@2 commit=3 entries=[4@2,5@2=x,6@2:noop] read=7",
            "n2->n1 term=2 AppendResponse ok index=5 last=5 read=7",
            "n2->n1 term=2 AppendResponse reject index=9 hint=6@0 last=5",
            "n2->n1 term=2 AppendResponse reject index=9 hint=1@0 last=0 inc=7 rejoining",
            "n1->n2 term=2 AppendRequest prev=3@2 commit=3 entries=[4@2:config=n1+n2/n3#9]",
            "n1->n3 term=2 InstallSnapshot snapshot=4@2 config=n1+n2+n3",
            "n3->n1 term=2 SnapshotResponse refused index=4",
            "n1->n2 term=2 TimeoutNow",
        ];
        for w in written {
            assert_eq!(message(&parse_message(w).unwrap()), w);
        }
    }

    #[test]
    fn a_malformed_message_says_what_is_wrong() {
        let err = |s| parse_message(s).unwrap_err();
        assert!(err("n1 term=2 VoteRequest last=1@1").contains("FROM->TO"));
        assert!(err("n1->n2 term=2 VoteRequest").contains("last="));
        assert!(err("n1->n2 term=2 Hello").contains("unknown message kind"));
        assert!(err("n1->n2 term=2 VoteResponse granted extra").contains("unexpected"));
        assert!(err("n1->n2 term=x VoteResponse granted").contains("not a number"));
    }
}
