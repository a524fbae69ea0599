//! Majority arithmetic, kept apart so it can be checked on its own.

use super::LogIndex;

/// Votes needed to win in a cluster of `voters` members.
pub fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

/// The highest index stored on a majority, given every member's match index
/// (the leader's own entry is its durable index).
pub fn committed_index(mut matches: Vec<LogIndex>) -> LogIndex {
    if matches.is_empty() {
        return LogIndex(0);
    }
    matches.sort_unstable_by(|a, b| b.cmp(a));
    matches[majority(matches.len()) - 1]
}

#[derive(Debug, PartialEq, Eq)]
pub enum VoteResult {
    Won,
    Lost,
    Pending,
}

pub fn vote_result(granted: usize, rejected: usize, voters: usize) -> VoteResult {
    let need = majority(voters);
    if granted >= need {
        VoteResult::Won
    } else if rejected > voters - need {
        VoteResult::Lost
    } else {
        VoteResult::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(v: &[u64]) -> Vec<LogIndex> {
        v.iter().map(|&i| LogIndex(i)).collect()
    }

    #[test]
    fn majorities() {
        assert_eq!(majority(1), 1);
        assert_eq!(majority(2), 2);
        assert_eq!(majority(3), 2);
        assert_eq!(majority(4), 3);
        assert_eq!(majority(5), 3);
    }

    #[test]
    fn commit_is_the_majority_th_highest_match() {
        assert_eq!(committed_index(idx(&[5])), LogIndex(5));
        assert_eq!(committed_index(idx(&[5, 3, 1])), LogIndex(3));
        assert_eq!(committed_index(idx(&[1, 3, 5])), LogIndex(3));
        assert_eq!(committed_index(idx(&[9, 9, 2, 2, 1])), LogIndex(2));
        assert_eq!(committed_index(idx(&[9, 9, 9, 2, 1])), LogIndex(9));
        assert_eq!(committed_index(idx(&[4, 4, 0, 0])), LogIndex(0));
    }

    #[test]
    fn vote_counting() {
        assert_eq!(vote_result(2, 0, 3), VoteResult::Won);
        assert_eq!(vote_result(1, 1, 3), VoteResult::Pending);
        assert_eq!(vote_result(1, 2, 3), VoteResult::Lost);
        assert_eq!(vote_result(2, 2, 5), VoteResult::Pending);
        assert_eq!(vote_result(2, 3, 5), VoteResult::Lost);
        assert_eq!(vote_result(1, 0, 1), VoteResult::Won);
    }
}
