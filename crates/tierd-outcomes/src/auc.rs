//! The ranking quality of a score: the area under the ROC curve of won against lost deals, by
//! the rank-sum (Mann-Whitney U) formula.
//!
//! AUC = (R_won − n_won·(n_won + 1)/2) / (n_won · n_lost), where R_won is the sum of the won
//! deals' ranks among all deals (ascending score, tied scores sharing their mean rank). It is the
//! chance that a won deal drawn at random scored above a lost one, ties counting half: 0.5 is a
//! coin, 1 a perfect ranking. Knows nothing of deals or models: scores and labels in, a number out.

/// The AUC of `scored` (score, won); `None` without at least one won and one lost.
pub fn auc(scored: &[(f64, bool)]) -> Option<f64> {
    let won = scored.iter().filter(|(_, w)| *w).count();
    let lost = scored.len() - won;
    if won == 0 || lost == 0 {
        return None;
    }
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rank_sum_won = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let mut j = i;
        while j + 1 < sorted.len() && sorted[j + 1].0 == sorted[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let won_here = sorted[i..=j].iter().filter(|(_, w)| *w).count();
        rank_sum_won += mean_rank * won_here as f64;
        i = j + 1;
    }
    let (won, lost) = (won as f64, lost as f64);
    Some((rank_sum_won - won * (won + 1.0) / 2.0) / (won * lost))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_ties_half() {
        // Won 0.9, 0.7, 0.5; lost 0.7, 0.3. Pairs (won, lost): (0.9,0.7) 1, (0.9,0.3) 1,
        // (0.7,0.7) ½, (0.7,0.3) 1, (0.5,0.7) 0, (0.5,0.3) 1: 4.5 of 6 = 0.75.
        let scored = [(0.9, true), (0.7, true), (0.5, true), (0.7, false), (0.3, false)];
        assert_eq!(auc(&scored), Some(0.75));
    }

    #[test]
    fn perfect_reversed_and_all_tied_rankings() {
        assert_eq!(auc(&[(2.0, true), (1.0, false), (0.5, false)]), Some(1.0));
        assert_eq!(auc(&[(0.0, true), (1.0, false)]), Some(0.0));
        assert_eq!(auc(&[(3.0, true), (3.0, false), (3.0, true)]), Some(0.5));
    }

    #[test]
    fn one_sided_labels_have_no_auc() {
        assert_eq!(auc(&[(1.0, true), (2.0, true)]), None);
        assert_eq!(auc(&[]), None);
    }
}
