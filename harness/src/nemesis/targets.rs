//! Which nodes a process fault hits.

use serde::Serialize;

use raft::Rng;

/// Which nodes a kill or pause hits, as named on the command line and in the
/// history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// One node, at random.
    One,
    /// The current leader (a random node when none is known).
    Leader,
    /// A random minority: fewer than half.
    Minority,
    /// A random majority: the cluster loses its quorum.
    Majority,
    /// Every node: a whole-cluster crash (kill) or freeze (pause).
    All,
}

impl Target {
    /// Every target, in order.
    pub const ALL: [Target; 5] = [
        Target::One,
        Target::Leader,
        Target::Minority,
        Target::Majority,
        Target::All,
    ];

    /// A random target from `allowed`, or, when it is empty, from all of
    /// them, losing every node at once being rarer than losing one.
    pub fn pick_from(allowed: &[Target], rng: &mut Rng) -> Target {
        if !allowed.is_empty() {
            return allowed[rng.below(allowed.len() as u64) as usize];
        }
        Target::pick(rng)
    }

    /// A random target; losing every node at once is rarer than losing one.
    pub fn pick(rng: &mut Rng) -> Target {
        match rng.below(10) {
            0..=2 => Target::One,
            3..=5 => Target::Leader,
            6 => Target::Minority,
            7 | 8 => Target::Majority,
            _ => Target::All,
        }
    }

    /// A random target for a power cut: the whole cluster 60% of the time,
    /// a majority 20%, the leader 10%, one node or a minority 5% each.
    ///
    /// A node that loses power alone loses nothing acknowledged (its peers
    /// hold every committed entry); a majority that does mostly comes back
    /// to the survivor's longer log (it wins the next election); a
    /// whole-cluster cut leaves nothing but what was fsynced. Against a node
    /// that never fsyncs, with an earlier draw (30% whole-cluster, 30%
    /// majority), each of 7 runs of 30 s with a whole-cluster cut was
    /// invalid, and none of the 3 runs whose cuts were at most a majority's.
    pub fn pick_power(rng: &mut Rng) -> Target {
        match rng.below(20) {
            0 => Target::One,
            1 | 2 => Target::Leader,
            3 => Target::Minority,
            4..=7 => Target::Majority,
            _ => Target::All,
        }
    }

    /// The name on the command line and in the history.
    pub fn name(self) -> &'static str {
        match self {
            Target::One => "one",
            Target::Leader => "leader",
            Target::Minority => "minority",
            Target::Majority => "majority",
            Target::All => "all",
        }
    }
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(s: &str) -> Result<Target, String> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown fault target {s:?} (expected one, leader, minority, majority or all)"
                )
            })
    }
}

/// The nodes `target` means among `ids`, in sorted order. A minority is the
/// largest group without a majority; a majority the smallest with one. The
/// leader falls back to a random node when unknown. `focus`, when among
/// `ids`, is in every draw of one node, a minority or a majority.
pub fn choose(
    target: Target,
    ids: &[String],
    leader: Option<&str>,
    focus: Option<&str>,
    rng: &mut Rng,
) -> Vec<String> {
    let mut shuffled = ids.to_vec();
    for i in (1..shuffled.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        shuffled.swap(i, j);
    }
    if let Some(at) = focus.and_then(|f| shuffled.iter().position(|i| i == f)) {
        shuffled.swap(0, at);
    }
    let n = ids.len();
    let mut chosen: Vec<String> = match target {
        Target::One => shuffled.into_iter().take(1).collect(),
        Target::Leader => match leader.filter(|l| ids.iter().any(|i| i == l)) {
            Some(l) => vec![l.to_string()],
            None => shuffled.into_iter().take(1).collect(),
        },
        Target::Minority => shuffled.into_iter().take((n - 1) / 2).collect(),
        Target::Majority => shuffled.into_iter().take(n / 2 + 1).collect(),
        Target::All => shuffled,
    };
    if chosen.is_empty() && n > 0 {
        // A one-node cluster has no minority; fault the node anyway.
        chosen.push(ids[0].clone());
    }
    chosen.sort();
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn sizes_of_each_target() {
        let mut rng = Rng::new(3);
        for (n, minority, majority) in [(3, 1, 2), (5, 2, 3), (7, 3, 4)] {
            let ids = ids(n);
            assert_eq!(choose(Target::One, &ids, None, None, &mut rng).len(), 1);
            assert_eq!(
                choose(Target::Minority, &ids, None, None, &mut rng).len(),
                minority
            );
            assert_eq!(
                choose(Target::Majority, &ids, None, None, &mut rng).len(),
                majority
            );
            assert_eq!(choose(Target::All, &ids, None, None, &mut rng), ids);
        }
    }

    #[test]
    fn power_cuts_are_mostly_whole_cluster_ones_and_every_target_comes_up() {
        let mut rng = Rng::new(5);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..2000 {
            *counts
                .entry(Target::pick_power(&mut rng).name())
                .or_insert(0) += 1;
        }
        for t in Target::ALL {
            assert!(counts.get(t.name()).is_some_and(|&n| n > 40), "{counts:?}");
        }
        assert!((1100..1300).contains(&counts["all"]), "{counts:?}");
    }

    #[test]
    fn a_focus_is_in_every_draw_that_is_not_the_leader() {
        let mut rng = Rng::new(9);
        for _ in 0..50 {
            for t in [Target::One, Target::Minority, Target::Majority, Target::All] {
                let chosen = choose(t, &ids(5), Some("n1"), Some("n3"), &mut rng);
                assert!(chosen.contains(&"n3".to_string()), "{t:?}: {chosen:?}");
            }
            assert_eq!(
                choose(Target::Leader, &ids(5), Some("n1"), Some("n3"), &mut rng),
                ["n1"]
            );
        }
    }

    #[test]
    fn leader_target_hits_the_leader() {
        let mut rng = Rng::new(1);
        assert_eq!(
            choose(Target::Leader, &ids(5), Some("n4"), None, &mut rng),
            vec!["n4"]
        );
        assert_eq!(
            choose(Target::Leader, &ids(5), None, None, &mut rng).len(),
            1
        );
        assert_eq!(
            choose(Target::Leader, &ids(5), Some("zz"), None, &mut rng).len(),
            1
        );
    }
}
