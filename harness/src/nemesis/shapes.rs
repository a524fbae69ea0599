//! Partition shapes for the `partition` nemesis, as pure functions: node
//! ids (plus the leader when known, and a source of randomness) in, the
//! links to cut out. The nemesis hands [`Partition::cut`] to
//! [`Net::cut`](crate::net::Net::cut) and records [`Partition::to_value`] as
//! its history op's `value`.
//!
//! - [`Shape`]: the shapes of Jepsen's `nemesis.combined`, by name.
//! - [`partition`]: computes one [`Partition`] of a shape.
//!
//! Every shape but `one-way` cuts links symmetrically: two nodes either talk
//! both ways or not at all. `one-way` cuts one direction only: one side
//! drops every packet the other side sends, while its own still arrive.
//! Only the packet filter of `--network netns` does that exactly: through
//! a proxy a connection carries both directions, so cutting link (i → j)
//! there means "i cannot call j, yet j can still call i and hear back", a
//! different fault, and `one-way` is refused on proxies. Note what TCP
//! makes of a one-way cut: no new connection between the two sides
//! completes its handshake, and an established one delivers the heard
//! side's bytes (without their acknowledgements) until its keepalive gives
//! up, after which nothing passes either way.
//!
//! Randomness comes from the caller as `pick(n)`, uniform in `0..n`, so a
//! run is reproducible from its seed whatever generator the caller uses.
//! The node ids are sorted first, so their order does not matter either.
//!
//! ## Majorities ring
//!
//! Every node sees (talks with, counting itself) a majority, but no two
//! nodes see the same one, so several nodes can each gather votes from a
//! different majority. The nodes are shuffled onto a ring; each needs
//! `n / 2` neighbours. With symmetric links that is exactly possible only
//! when `n * (n / 2)` is even (handshake lemma), which fails for n = 3, 7,
//! 11, ...: there one node gets one extra neighbour, i.e. sees a majority
//! plus one. So:
//!
//! - each node is linked to its ring neighbours up to distance `n / 4`
//!   (rounded down) on both sides;
//! - if `n / 2` is odd and `n` even, each node is also linked to the node
//!   opposite it on the ring;
//! - if `n / 2` is odd and `n` odd, with `d = (n - 1) / 2`, positions `i` and
//!   `i + d` are linked for `i < d`, and the last position (left over) is
//!   linked to position `d - 1`, which thus sees one node more.
//!
//! For n = 3 this leaves a line a – b – c: a and c each see a majority of
//! two, b sees everyone, and only a ↔ c is cut. It coincides with `bridge`,
//! the only symmetric cut of three nodes in which every node keeps a majority.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use thiserror::Error;

use crate::net::{Link, NetworkKind};

/// A partition shape, named as in Jepsen and on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Two random groups of sizes ⌊n/2⌋ and ⌈n/2⌉: a minority and a majority.
    RandomHalves,
    /// One random node cut off from all others.
    IsolateOne,
    /// The current leader cut off from all others (a random node when the
    /// leader is unknown), forcing an election among the rest while the old
    /// leader may still believe it leads.
    IsolateLeader,
    /// Every node sees a majority, no two the same majority (module docs).
    MajoritiesRing,
    /// Two halves that cannot talk, and one node in the middle that talks to
    /// both and can win an election in either. The leader, when known, is
    /// never the middle: it sits at one end, so the far end falls behind
    /// yet can still reach a voter (with the leader in the middle nothing
    /// happens at all).
    Bridge,
    /// Random halves, one of which (at random) drops everything the other
    /// sends, while what it sends still arrives (netns only).
    OneWay,
    /// Random halves, one of which (at random) cannot call the other: its
    /// connections to the other half are dropped, both ways, while the
    /// other half's connections to it (and the answers on them) work. To
    /// nodes that each push their messages over connections of their own,
    /// one half's messages are lost and the other's arrive: requests go
    /// out, their replies never come back. A firewall that lets one side
    /// open connections and not the other does this.
    OneWayDial,
}

impl Shape {
    /// Every shape, in the order the nemesis cycles through them.
    pub const ALL: [Shape; 7] = [
        Shape::RandomHalves,
        Shape::IsolateOne,
        Shape::IsolateLeader,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::OneWay,
        Shape::OneWayDial,
    ];

    /// Every shape a proxy can make: those that cut both directions of
    /// every pair they cut, and dial cuts (a proxy carries one node's
    /// calls to another).
    pub const ON_PROXIES: [Shape; 6] = [
        Shape::RandomHalves,
        Shape::IsolateOne,
        Shape::IsolateLeader,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::OneWayDial,
    ];

    /// The shapes the partition nemesis draws from when none are named:
    /// every shape `network` can cut exactly.
    pub fn available(network: NetworkKind) -> &'static [Shape] {
        match network {
            NetworkKind::Netns => &Shape::ALL,
            NetworkKind::Proxy => &Shape::ON_PROXIES,
        }
    }

    /// Whether `network` can cut this shape exactly.
    pub fn works_on(self, network: NetworkKind) -> bool {
        Shape::available(network).contains(&self)
    }

    /// The name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Shape::RandomHalves => "random-halves",
            Shape::IsolateOne => "isolate-one",
            Shape::IsolateLeader => "isolate-leader",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::OneWay => "one-way",
            Shape::OneWayDial => "one-way-dial",
        }
    }

    /// The smallest cluster in which the shape cuts something and means
    /// what it says (a ring of two would have to be whole).
    pub fn min_nodes(self) -> usize {
        match self {
            Shape::RandomHalves
            | Shape::IsolateOne
            | Shape::IsolateLeader
            | Shape::OneWay
            | Shape::OneWayDial => 2,
            Shape::MajoritiesRing | Shape::Bridge => 3,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Shape {
    type Err = PartitionError;

    fn from_str(s: &str) -> Result<Shape, PartitionError> {
        Shape::ALL
            .into_iter()
            .find(|shape| shape.name() == s)
            .ok_or_else(|| PartitionError::UnknownShape(s.to_string()))
    }
}

/// Why a partition could not be computed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PartitionError {
    /// A name `--partition-shapes` does not know.
    #[error(
        "unknown partition shape {0:?} (expected random-halves, isolate-one, \
         isolate-leader, majorities-ring, bridge, one-way or one-way-dial)"
    )]
    UnknownShape(String),
    /// The cluster is too small for the shape.
    #[error("partition shape {shape} needs at least {min} nodes, the cluster has {n}")]
    TooFewNodes {
        /// The shape asked for.
        shape: Shape,
        /// The nodes it needs at least.
        min: usize,
        /// The nodes there are.
        n: usize,
    },
    /// A node id given twice.
    #[error("node id {0:?} is given twice")]
    DuplicateNode(String),
}

/// One partition: which links to cut, and who can still talk to whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// The shape it was drawn from.
    pub shape: Shape,
    /// Who can talk to whom, for the history and the report.
    /// - random-halves, isolate-*: the groups; nodes talk only within one.
    /// - bridge: the two sides, each with the bridge node (the only node in both).
    /// - majorities-ring: one entry per node in ring order, the node first,
    ///   then the nodes it talks to.
    /// - one-way: the deaf side, then the side it does not hear (which
    ///   hears it).
    /// - one-way-dial: the side whose calls to the other fail, then the
    ///   other.
    ///
    /// Members are sorted, except that a ring entry starts with its node.
    pub groups: Vec<Vec<String>>,
    /// The links to cut: (from, to) means `to` drops what `from` sends.
    /// Both directions of every pair that must not talk, but for one-way
    /// (and none for one-way-dial).
    pub cut: BTreeSet<Link>,
    /// one-way-dial: (from, to) means `from` cannot call `to`.
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub no_dial: BTreeSet<Link>,
}

impl Partition {
    /// The history's nemesis op value:
    /// `{"shape":"bridge","groups":[["n1","n2"],["n2","n3"]],"cut":[["n1","n3"],["n3","n1"]]}`.
    pub fn to_value(&self) -> serde_json::Value {
        // Strings, lists and a set of pairs: serialization cannot fail.
        serde_json::to_value(self).expect("a partition is plain data")
    }

    /// Whether `a` and `b` can talk (both directions open). A node always
    /// talks to itself.
    pub fn connected(&self, a: &str, b: &str) -> bool {
        let cut = |x: &str, y: &str| self.cut.contains(&(x.to_string(), y.to_string()));
        a == b || !(cut(a, b) || cut(b, a))
    }
}

/// Computes a partition of `nodes` of the given shape. `leader` matters only
/// for [`Shape::IsolateLeader`] and [`Shape::Bridge`]; `pick(n)` must
/// return a number in `0..n`.
pub fn partition(
    shape: Shape,
    nodes: &[String],
    leader: Option<&str>,
    pick: &mut impl FnMut(u64) -> u64,
) -> Result<Partition, PartitionError> {
    let mut nodes = nodes.to_vec();
    nodes.sort();
    if let Some(pair) = nodes.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(PartitionError::DuplicateNode(pair[0].clone()));
    }
    let n = nodes.len();
    if n < shape.min_nodes() {
        let min = shape.min_nodes();
        return Err(PartitionError::TooFewNodes { shape, min, n });
    }
    if matches!(shape, Shape::OneWay | Shape::OneWayDial) {
        shuffle(&mut nodes, pick);
        let (small, large) = nodes.split_at(n / 2);
        let (mut first, mut second) = if pick(2) == 0 {
            (small.to_vec(), large.to_vec())
        } else {
            (large.to_vec(), small.to_vec())
        };
        first.sort();
        second.sort();
        // one-way: the first half is deaf to the second; one-way-dial: the
        // first half cannot call the second.
        let (from, to) = if shape == Shape::OneWay {
            (&second, &first)
        } else {
            (&first, &second)
        };
        let links: BTreeSet<Link> = from
            .iter()
            .flat_map(|f| to.iter().map(move |t| (f.clone(), t.clone())))
            .collect();
        let (cut, no_dial) = if shape == Shape::OneWay {
            (links, BTreeSet::new())
        } else {
            (BTreeSet::new(), links)
        };
        return Ok(Partition {
            shape,
            groups: vec![first, second],
            cut,
            no_dial,
        });
    }
    let (groups, talk) = match shape {
        Shape::RandomHalves => {
            shuffle(&mut nodes, pick);
            let (small, large) = nodes.split_at(n / 2);
            cliques(vec![small.to_vec(), large.to_vec()])
        }
        Shape::IsolateOne => {
            let victim = below(pick, n);
            isolate(&nodes, victim)
        }
        Shape::IsolateLeader => {
            let victim = leader
                .and_then(|leader| nodes.iter().position(|node| node == leader))
                .unwrap_or_else(|| below(pick, n));
            isolate(&nodes, victim)
        }
        Shape::Bridge => {
            shuffle(&mut nodes, pick);
            if nodes.first().map(String::as_str) == leader {
                nodes.swap(0, 1 + below(pick, n - 1));
            }
            let (bridge, rest) = nodes.split_first().expect("n >= 3");
            let (left, right) = rest.split_at(rest.len() / 2);
            let with_bridge = |side: &[String]| [side, std::slice::from_ref(bridge)].concat();
            cliques(vec![with_bridge(left), with_bridge(right)])
        }
        Shape::MajoritiesRing => {
            shuffle(&mut nodes, pick);
            ring(&nodes)
        }
        Shape::OneWay | Shape::OneWayDial => unreachable!("handled above"),
    };
    let cut = nodes
        .iter()
        .flat_map(|a| nodes.iter().map(move |b| (a, b)))
        .filter(|(a, b)| a != b && !talk.contains(&unordered(a, b)))
        .map(|(a, b)| (a.clone(), b.clone()))
        .collect();
    Ok(Partition {
        shape,
        groups,
        cut,
        no_dial: BTreeSet::new(),
    })
}

/// Pairs of nodes that may talk, smaller id first.
type Talk = BTreeSet<(String, String)>;

fn unordered(a: &str, b: &str) -> (String, String) {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    (a.to_string(), b.to_string())
}

/// `pick` within bounds even if the caller's generator is sloppy.
fn below(pick: &mut impl FnMut(u64) -> u64, n: usize) -> usize {
    (pick(n as u64) % n as u64) as usize
}

/// Fisher–Yates.
fn shuffle(nodes: &mut [String], pick: &mut impl FnMut(u64) -> u64) {
    for i in (1..nodes.len()).rev() {
        nodes.swap(i, below(pick, i + 1));
    }
}

/// `victim` alone, the rest together.
fn isolate(nodes: &[String], victim: usize) -> (Vec<Vec<String>>, Talk) {
    let mut rest = nodes.to_vec();
    let victim = rest.remove(victim);
    cliques(vec![vec![victim], rest])
}

/// Groups whose members all talk with each other (groups may overlap).
fn cliques(mut groups: Vec<Vec<String>>) -> (Vec<Vec<String>>, Talk) {
    let mut talk = Talk::new();
    for group in &mut groups {
        group.sort();
        for (i, a) in group.iter().enumerate() {
            for b in &group[i + 1..] {
                talk.insert(unordered(a, b));
            }
        }
    }
    (groups, talk)
}

/// The majorities ring over `ring` (already shuffled); see the module docs.
fn ring(ring: &[String]) -> (Vec<Vec<String>>, Talk) {
    let n = ring.len();
    let needed = n / 2; // neighbours for a majority counting oneself
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for i in 0..n {
        for d in 1..=needed / 2 {
            edges.push((i, (i + d) % n));
        }
    }
    if needed % 2 == 1 {
        if n % 2 == 1 {
            // No perfect matching exists: pair positions d apart, and link
            // the one left over to a node that then sees one more.
            let d = (n - 1) / 2;
            edges.extend((0..d).map(|i| (i, i + d)));
            edges.push((n - 1, d - 1));
        } else {
            // Each node with the one opposite it on the ring.
            edges.extend((0..n / 2).map(|i| (i, i + n / 2)));
        }
    }
    let talk: Talk = edges
        .iter()
        .map(|&(i, j)| unordered(&ring[i], &ring[j]))
        .collect();
    let views = ring
        .iter()
        .map(|node| {
            let mut others: Vec<String> = ring
                .iter()
                .filter(|other| *other != node && talk.contains(&unordered(node, other)))
                .cloned()
                .collect();
            others.sort();
            [vec![node.clone()], others].concat()
        })
        .collect();
    (views, talk)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// splitmix64, so the tests need no generator from elsewhere.
    fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut state = seed;
        move |n| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    const SIZES: [usize; 3] = [3, 5, 7];
    const SEEDS: std::ops::Range<u64> = 0..50;

    /// Every (shape, n, seed) the property tests cover.
    fn each(shape: Shape, sizes: &[usize], mut check: impl FnMut(&[String], &Partition)) {
        for &n in sizes {
            let nodes = nodes(n);
            for seed in SEEDS {
                let p = partition(shape, &nodes, None, &mut rng(seed)).unwrap();
                check(&nodes, &p);
            }
        }
    }

    /// The nodes `node` talks with, itself included.
    fn view(p: &Partition, nodes: &[String], node: &str) -> BTreeSet<String> {
        nodes
            .iter()
            .filter(|o| p.connected(node, o))
            .cloned()
            .collect()
    }

    /// Connected components of the "can talk" graph, largest last.
    fn components(p: &Partition, nodes: &[String]) -> Vec<BTreeSet<String>> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for start in nodes {
            if seen.contains(start) {
                continue;
            }
            let mut component = BTreeSet::new();
            let mut todo = vec![start.clone()];
            while let Some(node) = todo.pop() {
                if seen.insert(node.clone()) {
                    component.insert(node.clone());
                    todo.extend(view(p, nodes, &node));
                }
            }
            out.push(component);
        }
        out.sort_by_key(|c| (c.len(), c.iter().next().cloned()));
        out
    }

    fn is_clique(p: &Partition, group: &BTreeSet<String>) -> bool {
        group
            .iter()
            .all(|a| group.iter().all(|b| p.connected(a, b)))
    }

    /// The shapes that cut both directions of every pair they cut.
    const SYMMETRIC: [Shape; 5] = [
        Shape::RandomHalves,
        Shape::IsolateOne,
        Shape::IsolateLeader,
        Shape::MajoritiesRing,
        Shape::Bridge,
    ];

    #[test]
    fn every_shape_cuts_symmetrically_and_only_existing_links() {
        for shape in SYMMETRIC {
            each(shape, &[3, 4, 5, 6, 7, 9], |nodes, p| {
                assert!(!p.cut.is_empty(), "{shape} cuts nothing");
                for (a, b) in &p.cut {
                    assert_ne!(a, b);
                    assert!(nodes.contains(a) && nodes.contains(b));
                    assert!(
                        p.cut.contains(&(b.clone(), a.clone())),
                        "{shape}: {a}->{b} one way"
                    );
                }
            });
        }
    }

    #[test]
    fn one_way_cuts_every_link_from_one_half_to_the_other_and_none_back() {
        let mut deaf_was_smaller = BTreeSet::new();
        each(Shape::OneWay, &[2, 3, 4, 5, 7], |nodes, p| {
            let n = nodes.len();
            let [deaf, heard] = [&p.groups[0], &p.groups[1]];
            let mut sizes = [deaf.len(), heard.len()];
            sizes.sort();
            assert_eq!(sizes, [n / 2, n - n / 2]);
            if n % 2 == 1 {
                deaf_was_smaller.insert(deaf.len() < heard.len());
            }
            let want: BTreeSet<Link> = heard
                .iter()
                .flat_map(|f| deaf.iter().map(move |t| (f.clone(), t.clone())))
                .collect();
            assert_eq!(p.cut, want);
            for (from, to) in &p.cut {
                assert!(
                    !p.cut.contains(&(to.clone(), from.clone())),
                    "{from}<->{to} cut both ways"
                );
            }
            // Within each side everything passes.
            for side in [deaf, heard] {
                for a in side {
                    assert!(side.iter().all(|b| p.connected(a, b)));
                }
            }
        });
        assert_eq!(
            deaf_was_smaller.len(),
            2,
            "the deaf side is always the same half"
        );
        assert!(!Shape::OneWay.works_on(NetworkKind::Proxy));
        assert!(Shape::OneWay.works_on(NetworkKind::Netns));
        assert!(SYMMETRIC.iter().all(|s| s.works_on(NetworkKind::Proxy)));
    }

    #[test]
    fn one_way_dial_stops_one_halfs_calls_to_the_other_and_cuts_no_packet() {
        let mut callers_were_smaller = BTreeSet::new();
        each(Shape::OneWayDial, &[2, 3, 4, 5, 7], |nodes, p| {
            let n = nodes.len();
            let [callers, called] = [&p.groups[0], &p.groups[1]];
            let mut sizes = [callers.len(), called.len()];
            sizes.sort();
            assert_eq!(sizes, [n / 2, n - n / 2]);
            if n % 2 == 1 {
                callers_were_smaller.insert(callers.len() < called.len());
            }
            let want: BTreeSet<Link> = callers
                .iter()
                .flat_map(|f| called.iter().map(move |t| (f.clone(), t.clone())))
                .collect();
            assert_eq!(p.no_dial, want);
            assert!(p.cut.is_empty(), "no packet is cut");
            assert!(p.to_value()["no_dial"].is_array());
        });
        assert_eq!(callers_were_smaller.len(), 2);
        assert!(Shape::OneWayDial.works_on(NetworkKind::Proxy));
        assert!(Shape::OneWayDial.works_on(NetworkKind::Netns));
        let p = partition(Shape::RandomHalves, &nodes(3), None, &mut |_| 0).unwrap();
        assert!(p.to_value().get("no_dial").is_none());
    }

    #[test]
    fn random_halves_are_two_cliques_of_floor_and_ceil_half() {
        each(Shape::RandomHalves, &SIZES, |nodes, p| {
            let n = nodes.len();
            let parts = components(p, nodes);
            let sizes: Vec<usize> = parts.iter().map(BTreeSet::len).collect();
            assert_eq!(sizes, [n / 2, n - n / 2]);
            assert!(parts.iter().all(|c| is_clique(p, c)));
            assert_eq!(p.cut.len(), 2 * (n / 2) * (n - n / 2));
            let groups: Vec<BTreeSet<String>> = p
                .groups
                .iter()
                .map(|g| g.iter().cloned().collect())
                .collect();
            assert_eq!(groups, parts);
        });
    }

    #[test]
    fn isolate_one_leaves_one_node_without_links() {
        each(Shape::IsolateOne, &SIZES, |nodes, p| {
            let parts = components(p, nodes);
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0].len(), 1);
            assert!(is_clique(p, &parts[1]));
            assert_eq!(p.groups[0], parts[0].iter().cloned().collect::<Vec<_>>());
        });
    }

    #[test]
    fn isolate_leader_isolates_the_leader() {
        for n in SIZES {
            let nodes = nodes(n);
            for leader in &nodes {
                let p = partition(Shape::IsolateLeader, &nodes, Some(leader), &mut rng(1)).unwrap();
                assert_eq!(view(&p, &nodes, leader), BTreeSet::from([leader.clone()]));
                assert_eq!(p.groups[0], std::slice::from_ref(leader));
                let rest: BTreeSet<String> =
                    nodes.iter().filter(|x| *x != leader).cloned().collect();
                assert!(is_clique(&p, &rest));
            }
        }
    }

    #[test]
    fn isolate_leader_without_a_known_leader_isolates_a_random_node() {
        let nodes = nodes(5);
        let mut victims = BTreeSet::new();
        for seed in SEEDS {
            for leader in [None, Some("n9")] {
                let p = partition(Shape::IsolateLeader, &nodes, leader, &mut rng(seed)).unwrap();
                assert_eq!(p.groups[0].len(), 1);
                victims.insert(p.groups[0][0].clone());
            }
        }
        assert!(victims.len() > 1, "always the same victim: {victims:?}");
    }

    #[test]
    fn majorities_ring_every_node_sees_a_different_majority() {
        for n in 3..=11 {
            let nodes = nodes(n);
            let majority = n / 2 + 1;
            // Exactly a majority each is possible only if n * (majority - 1) is even.
            let exact = (n * (majority - 1)) % 2 == 0;
            for seed in SEEDS {
                let p = partition(Shape::MajoritiesRing, &nodes, None, &mut rng(seed)).unwrap();
                let views: Vec<BTreeSet<String>> =
                    nodes.iter().map(|x| view(&p, &nodes, x)).collect();
                let sizes: Vec<usize> = views.iter().map(BTreeSet::len).collect();
                assert!(
                    sizes.iter().all(|&s| s >= majority),
                    "n={n} seed={seed}: {sizes:?}"
                );
                let larger = sizes.iter().filter(|&&s| s > majority).count();
                assert_eq!(
                    larger,
                    if exact { 0 } else { 1 },
                    "n={n} seed={seed}: {sizes:?}"
                );
                assert!(sizes.iter().all(|&s| s <= majority + 1));
                let distinct: BTreeSet<&BTreeSet<String>> = views.iter().collect();
                assert_eq!(
                    distinct.len(),
                    n,
                    "n={n} seed={seed}: two nodes see the same set"
                );
                // The groups record each node's view, the node first.
                for group in &p.groups {
                    let recorded: BTreeSet<String> = group.iter().cloned().collect();
                    assert_eq!(recorded, view(&p, &nodes, &group[0]));
                }
            }
        }
    }

    #[test]
    fn majorities_ring_of_five_is_a_ring() {
        let nodes = nodes(5);
        let p = partition(Shape::MajoritiesRing, &nodes, None, &mut rng(7)).unwrap();
        assert!(nodes.iter().all(|x| view(&p, &nodes, x).len() == 3));
        assert_eq!(p.cut.len(), 10, "5 of the 10 pairs cut, both ways");
        assert_eq!(
            components(&p, &nodes).len(),
            1,
            "still connected as a whole"
        );
    }

    #[test]
    fn majorities_ring_of_three_is_a_line() {
        each(Shape::MajoritiesRing, &[3], |nodes, p| {
            assert_eq!(p.cut.len(), 2, "one pair cut");
            let sizes: BTreeSet<usize> = nodes.iter().map(|x| view(p, nodes, x).len()).collect();
            assert_eq!(sizes, BTreeSet::from([2, 3]));
        });
    }

    #[test]
    fn the_leader_is_never_the_bridge() {
        let nodes: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
        for seed in 0..50 {
            let p = partition(Shape::Bridge, &nodes, Some("n2"), &mut rng(seed)).unwrap();
            assert!(
                !p.connected("n2", "n1") || !p.connected("n2", "n3"),
                "seed {seed}: the leader n2 reaches both ends: {:?}",
                p.groups
            );
        }
    }

    #[test]
    fn bridge_node_reaches_both_halves_which_do_not_reach_each_other() {
        each(Shape::Bridge, &SIZES, |nodes, p| {
            let n = nodes.len();
            let [left, right] = [&p.groups[0], &p.groups[1]]
                .map(|g| g.iter().cloned().collect::<BTreeSet<String>>());
            let bridge: Vec<&String> = left.intersection(&right).collect();
            assert_eq!(bridge.len(), 1, "exactly one node in both sides");
            let bridge = bridge[0];
            assert_eq!(
                view(p, nodes, bridge).len(),
                n,
                "the bridge reaches everyone"
            );
            assert!(is_clique(p, &left) && is_clique(p, &right));
            for a in left.iter().filter(|a| *a != bridge) {
                for b in right.iter().filter(|b| *b != bridge) {
                    assert!(!p.connected(a, b), "{a} and {b} talk past the bridge");
                }
            }
            let mut sides = [left.len() - 1, right.len() - 1];
            sides.sort();
            assert_eq!(sides, [(n - 1) / 2, n - 1 - (n - 1) / 2]);
        });
    }

    #[test]
    fn same_seed_same_partition_whatever_the_node_order() {
        for shape in Shape::ALL {
            for n in SIZES {
                let forward = nodes(n);
                let backward: Vec<String> = forward.iter().rev().cloned().collect();
                let mut seen = BTreeSet::new();
                for seed in SEEDS {
                    let p = partition(shape, &forward, None, &mut rng(seed)).unwrap();
                    let q = partition(shape, &backward, None, &mut rng(seed)).unwrap();
                    assert_eq!(p, q, "{shape} n={n} seed={seed}");
                    seen.insert((p.cut, p.no_dial));
                }
                assert!(
                    seen.len() > 1,
                    "{shape} n={n}: every seed gives the same cut"
                );
            }
        }
    }

    #[test]
    fn too_few_or_duplicate_nodes_are_errors() {
        let one = nodes(1);
        assert_eq!(
            partition(Shape::RandomHalves, &one, None, &mut rng(0)),
            Err(PartitionError::TooFewNodes {
                shape: Shape::RandomHalves,
                min: 2,
                n: 1
            })
        );
        assert!(partition(Shape::MajoritiesRing, &nodes(2), None, &mut rng(0)).is_err());
        assert!(partition(Shape::IsolateOne, &nodes(2), None, &mut rng(0)).is_ok());
        let twice = ["n1".to_string(), "n2".into(), "n1".into()];
        assert_eq!(
            partition(Shape::Bridge, &twice, None, &mut rng(0)),
            Err(PartitionError::DuplicateNode("n1".into()))
        );
    }

    #[test]
    fn shapes_parse_by_their_names() {
        for shape in Shape::ALL {
            assert_eq!(shape.name().parse::<Shape>(), Ok(shape));
            assert_eq!(serde_json::to_value(shape).unwrap(), shape.name());
        }
        assert!(matches!(
            "halves".parse::<Shape>(),
            Err(PartitionError::UnknownShape(_))
        ));
    }

    #[test]
    fn the_history_value_names_shape_groups_and_cut() {
        let p = partition(Shape::IsolateLeader, &nodes(3), Some("n2"), &mut rng(0)).unwrap();
        assert_eq!(
            p.to_value(),
            serde_json::json!({
                "shape": "isolate-leader",
                "groups": [["n2"], ["n1", "n3"]],
                "cut": [["n1", "n2"], ["n2", "n1"], ["n2", "n3"], ["n3", "n2"]],
            })
        );
    }
}
