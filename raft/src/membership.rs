//! Cluster membership (chapter 4 of the thesis): which nodes vote, which
//! only receive the log (learners), where each is reached, and which
//! incarnation of a node a configuration means.
//!
//! A configuration travels in log entries of kind
//! [`EntryKind::Config`](crate::EntryKind::Config), whose data is the whole
//! new configuration ([`Membership::encode`]), and in snapshots
//! ([`SnapshotMeta::membership`](crate::SnapshotMeta::membership)). A node
//! uses the latest configuration in its log as soon as it has appended it,
//! committed or not (§4.1).
//!
//! Incarnations: a node that comes back with an empty disk is a new node
//! under an old name. It makes a new incarnation id at its first start and
//! counts itself a member only of configurations that name that
//! incarnation (see [`Membership::role_of`]); the leader writes it into the
//! entry that promotes the node after re-adding it.

use std::fmt;

use super::NodeId;

/// What a member does in the cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemberRole {
    /// Votes, and counts toward every majority.
    Voter,
    /// Receives the log; never votes, never counts, never campaigns.
    Learner,
}

impl MemberRole {
    /// The name the Admin service and the event log use.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Voter => "voter",
            MemberRole::Learner => "learner",
        }
    }
}

/// One member of a configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Member {
    /// Its node id.
    pub id: NodeId,
    /// Where it serves (opaque to the core; a transport may know better).
    pub addr: String,
    /// Voter or learner.
    pub role: MemberRole,
    /// The incarnation this entry means; 0 when not known (the members a
    /// cluster was formed with, or a learner added before it answered).
    pub incarnation: u64,
}

/// A configuration: its members sorted by id, each at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Membership {
    members: Vec<Member>,
}

/// Bumped on any change of [`Membership::encode`]'s layout.
const ENCODING_VERSION: u8 = 1;

impl Membership {
    /// A configuration of these members; refuses a duplicated or empty id.
    pub fn new(mut members: Vec<Member>) -> Result<Membership, String> {
        members.sort_by(|a, b| a.id.cmp(&b.id));
        if let Some(w) = members.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(format!("member {} is listed twice", w[0].id));
        }
        if members.iter().any(|m| m.id.as_str().is_empty()) {
            return Err("a member has an empty id".into());
        }
        Ok(Membership { members })
    }

    /// Every id a voter, no address, incarnation unknown (tests, and the
    /// data directories written before configurations had more).
    pub fn voters<I: IntoIterator<Item = NodeId>>(ids: I) -> Membership {
        let mut members: Vec<Member> = ids
            .into_iter()
            .map(|id| Member {
                id,
                addr: String::new(),
                role: MemberRole::Voter,
                incarnation: 0,
            })
            .collect();
        members.sort_by(|a, b| a.id.cmp(&b.id));
        members.dedup_by(|a, b| a.id == b.id);
        Membership { members }
    }

    /// The members, sorted by id.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Whether there is no member at all (a configuration not known).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member `id`, if it is one.
    pub fn get(&self, id: &NodeId) -> Option<&Member> {
        self.members
            .binary_search_by(|m| m.id.cmp(id))
            .ok()
            .map(|i| &self.members[i])
    }

    /// Whether `id` is a member, voter or learner.
    pub fn contains(&self, id: &NodeId) -> bool {
        self.get(id).is_some()
    }

    /// Whether `id` is a voter.
    pub fn is_voter(&self, id: &NodeId) -> bool {
        self.get(id).is_some_and(|m| m.role == MemberRole::Voter)
    }

    /// The voters' ids, sorted.
    pub fn voters_ids(&self) -> Vec<NodeId> {
        self.ids_with(MemberRole::Voter)
    }

    /// The learners' ids, sorted.
    pub fn learners_ids(&self) -> Vec<NodeId> {
        self.ids_with(MemberRole::Learner)
    }

    fn ids_with(&self, role: MemberRole) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|m| m.role == role)
            .map(|m| m.id.clone())
            .collect()
    }

    /// How many voters there are.
    pub fn voter_count(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Voter)
            .count()
    }

    /// What node `id` is here, as that node sees itself: with
    /// `incarnation` set (a node that joined with an empty disk), only an
    /// entry naming that very incarnation is it; an entry of another
    /// incarnation (or an unknown one) is the node that lost its data.
    pub fn role_of(&self, id: &NodeId, incarnation: Option<u64>) -> Option<MemberRole> {
        let m = self.get(id)?;
        match incarnation {
            Some(i) if m.incarnation != i => None,
            _ => Some(m.role),
        }
    }

    /// This configuration with `member` added, or replacing the member of its id.
    pub fn with(&self, member: Member) -> Membership {
        let mut members = self.members.clone();
        match members.binary_search_by(|m| m.id.cmp(&member.id)) {
            Ok(i) => members[i] = member,
            Err(i) => members.insert(i, member),
        }
        Membership { members }
    }

    /// This configuration without member `id`.
    pub fn without(&self, id: &NodeId) -> Membership {
        Membership {
            members: self
                .members
                .iter()
                .filter(|m| m.id != *id)
                .cloned()
                .collect(),
        }
    }

    /// The bytes of a configuration entry (and of the membership in a
    /// snapshot file): `version u8 | count u32 | count × (role u8, id len
    /// u16 + utf-8, addr len u16 + utf-8, incarnation u64)`, little-endian.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.members.len() * 32);
        out.push(ENCODING_VERSION);
        out.extend_from_slice(&(self.members.len() as u32).to_le_bytes());
        for m in &self.members {
            out.push(match m.role {
                MemberRole::Voter => 1,
                MemberRole::Learner => 2,
            });
            put_str(&mut out, m.id.as_str());
            put_str(&mut out, &m.addr);
            out.extend_from_slice(&m.incarnation.to_le_bytes());
        }
        out
    }

    /// Reads what [`Membership::encode`] wrote; says what is wrong otherwise.
    pub fn decode(bytes: &[u8]) -> Result<Membership, String> {
        let mut r = Bytes(bytes);
        let version = r.u8()?;
        if version != ENCODING_VERSION {
            return Err(format!(
                "configuration encoding version {version}, this build reads {ENCODING_VERSION}"
            ));
        }
        let count = r.u32()? as usize;
        // Each member takes at least 13 bytes: no allocation from a bogus count.
        if count > r.0.len() / 13 {
            return Err(format!("{count} members in {} bytes", r.0.len()));
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let role = match r.u8()? {
                1 => MemberRole::Voter,
                2 => MemberRole::Learner,
                other => return Err(format!("unknown member role {other}")),
            };
            let id = NodeId::new(r.str()?);
            let addr = r.str()?.to_string();
            let incarnation = r.u64()?;
            members.push(Member {
                id,
                addr,
                role,
                incarnation,
            });
        }
        if !r.0.is_empty() {
            return Err(format!("{} bytes after the last member", r.0.len()));
        }
        let sorted = members.windows(2).all(|w| w[0].id < w[1].id);
        if !sorted {
            return Err("members are not sorted by id, or one is listed twice".into());
        }
        Membership::new(members)
    }
}

impl fmt::Display for Membership {
    /// `voters n1,n2,n3 learners n4` (`learners -` when there are none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ids: Vec<NodeId>| {
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.iter().map(NodeId::as_str).collect::<Vec<_>>().join(",")
            }
        };
        write!(
            f,
            "voters {} learners {}",
            list(self.voters_ids()),
            list(self.learners_ids())
        )
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Ids and addresses are short; a longer one is cut at a char boundary
    // rather than written with a wrong length.
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// A little reader over the encoding (the core has no dependencies).
struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "cut short: {n} bytes wanted, {} left",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).map_err(|_| "a name is not utf-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, role: MemberRole, inc: u64) -> Member {
        Member {
            id: NodeId::new(id),
            addr: format!("127.0.0.1:{}", 7000 + id.len()),
            role,
            incarnation: inc,
        }
    }

    #[test]
    fn encoding_round_trips_and_damage_is_refused() {
        let m = Membership::new(vec![
            member("n3", MemberRole::Learner, 7),
            member("n1", MemberRole::Voter, 0),
            member("n2", MemberRole::Voter, u64::MAX),
        ])
        .unwrap();
        let bytes = m.encode();
        assert_eq!(Membership::decode(&bytes).unwrap(), m);
        for cut in 0..bytes.len() {
            assert!(Membership::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Membership::decode(&long).is_err());
        let mut bad_role = bytes.clone();
        bad_role[5] = 9;
        assert!(Membership::decode(&bad_role).is_err());
        assert!(Membership::decode(&[]).is_err());
        assert_eq!(
            Membership::decode(&Membership::default().encode()).unwrap(),
            Membership::default()
        );
    }

    #[test]
    fn a_duplicated_member_is_refused() {
        let err = Membership::new(vec![
            member("n1", MemberRole::Voter, 0),
            member("n1", MemberRole::Learner, 0),
        ])
        .unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn a_node_that_joined_is_only_the_incarnation_named() {
        let m = Membership::new(vec![
            member("n1", MemberRole::Voter, 0),
            member("n2", MemberRole::Voter, 5),
        ])
        .unwrap();
        let (n1, n2) = (NodeId::new("n1"), NodeId::new("n2"));
        assert_eq!(m.role_of(&n1, None), Some(MemberRole::Voter));
        assert_eq!(
            m.role_of(&n1, Some(9)),
            None,
            "a wiped n1 is not the n1 listed"
        );
        assert_eq!(m.role_of(&n2, Some(5)), Some(MemberRole::Voter));
        assert_eq!(m.role_of(&n2, Some(6)), None);
        assert_eq!(m.role_of(&NodeId::new("n9"), None), None);
    }

    #[test]
    fn changes_and_listing() {
        let m = Membership::voters([NodeId::new("n2"), NodeId::new("n1")]);
        let m = m.with(member("n4", MemberRole::Learner, 3));
        assert_eq!(m.to_string(), "voters n1,n2 learners n4");
        assert_eq!(m.voter_count(), 2);
        let m = m
            .with(member("n4", MemberRole::Voter, 3))
            .without(&NodeId::new("n1"));
        assert_eq!(m.to_string(), "voters n2,n4 learners -");
    }
}
