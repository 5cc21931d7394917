//! Diffs between two tierings of the same population: what moved where.

use crate::tier::Tier;

/// Counts of movements between a previous and a new tiering.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movements {
    /// `matrix[from][to]`: accounts tiered in both runs, by previous and new tier (best first).
    pub matrix: [[usize; 4]; 4],
    /// Accounts with no previous tier.
    pub new_accounts: [usize; 4],
    /// Accounts tiered before and absent now.
    pub gone: usize,
}

impl Movements {
    /// Records one account present in this run.
    pub fn record(&mut self, previous: Option<Tier>, now: Tier) {
        match previous {
            Some(p) => self.matrix[p as usize][now as usize] += 1,
            None => self.new_accounts[now as usize] += 1,
        }
    }

    /// Accounts that moved up at least one tier.
    pub fn upgrades(&self) -> usize {
        self.sum(|from, to| to < from)
    }

    /// Accounts that moved down at least one tier.
    pub fn downgrades(&self) -> usize {
        self.sum(|from, to| to > from)
    }

    /// Accounts whose tier did not change.
    pub fn unchanged(&self) -> usize {
        self.sum(|from, to| to == from)
    }

    fn sum(&self, pick: impl Fn(usize, usize) -> bool) -> usize {
        (0..4)
            .flat_map(|f| (0..4).map(move |t| (f, t)))
            .filter(|&(f, t)| pick(f, t))
            .map(|(f, t)| self.matrix[f][t])
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_moves_by_direction() {
        let mut m = Movements::default();
        m.record(Some(Tier::Tier2), Tier::Tier1);
        m.record(Some(Tier::Tier1), Tier::Untiered);
        m.record(Some(Tier::Tier3), Tier::Tier3);
        m.record(None, Tier::Tier3);
        assert_eq!((m.upgrades(), m.downgrades(), m.unchanged()), (1, 1, 1));
        assert_eq!(m.new_accounts, [0, 0, 1, 0]);
    }
}
