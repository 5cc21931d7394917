//! L2-regularised logistic regression by Newton's method: P(won) = σ(b + Σ βᵢ·xᵢ), fitted by
//! minimising the negative log-likelihood plus λ/2·Σβᵢ² (the intercept is not penalised).
//!
//! Each step solves (XᵀWX + λI)·δ = Xᵀ(p − y) + λβ (W = diag p(1 − p)); the penalty keeps the
//! system positive definite, so the fit is finite even when the data separate perfectly. A few
//! dozen features and a few thousand deals take a handful of steps. Deterministic: no random
//! start, no shuffling. Knows nothing of models or deals: numbers in, coefficients out.

/// A fitted model.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    /// b.
    pub intercept: f64,
    /// βᵢ, one per feature.
    pub coefficients: Vec<f64>,
    /// Newton steps taken.
    pub iterations: u32,
}

impl Logistic {
    /// The linear predictor b + Σ βᵢ·xᵢ (log-odds of winning): ranks as the probability does.
    pub fn log_odds(&self, x: &[f64]) -> f64 {
        self.intercept + self.coefficients.iter().zip(x).map(|(b, x)| b * x).sum::<f64>()
    }

    /// P(won).
    pub fn probability(&self, x: &[f64]) -> f64 {
        1.0 / (1.0 + (-self.log_odds(x)).exp())
    }
}

/// Why no fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FitError {
    /// No rows, or rows of different lengths.
    BadInput(String),
    /// The system could not be solved (should not happen with λ > 0).
    Singular,
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FitError::BadInput(why) => f.write_str(why),
            FitError::Singular => f.write_str("the regression's system is singular"),
        }
    }
}

impl std::error::Error for FitError {}

const MAX_STEPS: u32 = 100;
const TOLERANCE: f64 = 1e-10;

/// Fits `y` (won) on `x` (one row of features per deal) with penalty `l2` (> 0).
pub fn fit_logistic(x: &[Vec<f64>], y: &[bool], l2: f64) -> Result<Logistic, FitError> {
    let Some(first) = x.first() else {
        return Err(FitError::BadInput("no rows to fit".into()));
    };
    let k = first.len();
    if x.len() != y.len() || x.iter().any(|r| r.len() != k) {
        return Err(FitError::BadInput(
            "every row needs one label and the same features".into(),
        ));
    }
    if !(l2 > 0.0 && l2.is_finite()) {
        return Err(FitError::BadInput(format!(
            "the penalty must be above 0, found {l2}"
        )));
    }
    // Parameters: [b, β₁ … β_k]; rows get a leading 1.
    let dim = k + 1;
    let mut theta = vec![0.0; dim];
    let mut iterations = 0;
    while iterations < MAX_STEPS {
        iterations += 1;
        let mut grad = vec![0.0; dim];
        let mut hess = vec![vec![0.0; dim]; dim];
        for (j, (g, h_row)) in grad.iter_mut().zip(hess.iter_mut()).enumerate().skip(1) {
            *g = l2 * theta[j];
            h_row[j] = l2;
        }
        let mut xs = vec![1.0; dim];
        for (row, &won) in x.iter().zip(y) {
            xs[1..].copy_from_slice(row);
            let z: f64 = theta.iter().zip(&xs).map(|(b, x)| b * x).sum();
            let p = 1.0 / (1.0 + (-z).exp());
            let w = p * (1.0 - p);
            let r = p - if won { 1.0 } else { 0.0 };
            for ((g, h_row), xa) in grad.iter_mut().zip(hess.iter_mut()).zip(&xs) {
                *g += r * xa;
                for (h, xb) in h_row.iter_mut().zip(&xs) {
                    *h += w * xa * xb;
                }
            }
        }
        let step = solve(hess, grad).ok_or(FitError::Singular)?;
        let mut largest: f64 = 0.0;
        for (t, s) in theta.iter_mut().zip(&step) {
            *t -= s;
            largest = largest.max(s.abs());
        }
        if largest < TOLERANCE {
            break;
        }
    }
    Ok(Logistic {
        intercept: theta[0],
        coefficients: theta[1..].to_vec(),
        iterations,
    })
}

/// Solves `a·x = b` by Gaussian elimination with partial pivoting; `None` when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (done, rest) = a.split_at_mut(col + 1);
        let pivot_row = &done[col];
        for (offset, target) in rest.iter_mut().enumerate() {
            let f = target[col] / pivot_row[col];
            if f == 0.0 {
                continue;
            }
            for (t, p) in target[col..].iter_mut().zip(&pivot_row[col..]) {
                *t -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|c| a[row][c] * x[c]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auc::auc;

    /// A deterministic dataset: feature 0 drives winning (won when it is 3 or more, except one
    /// deal in seven flipped), feature 1 is noise unrelated to the outcome.
    fn dataset(n: usize) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            let driver = (i % 6) as f64; // 0..5
            let noise = ((i * 7919) % 11) as f64 / 2.0; // 0..5, no relation to i % 6
            let won = (driver >= 3.0) != (i % 7 == 0);
            x.push(vec![driver, noise]);
            y.push(won);
        }
        (x, y)
    }

    #[test]
    fn recovers_the_driver_and_ignores_the_noise() {
        let (x, y) = dataset(420);
        let (train_x, hold_x) = x.split_at(300);
        let (train_y, hold_y) = y.split_at(300);
        let fit = fit_logistic(train_x, train_y, 1.0).expect("fit");
        let [driver, noise] = [fit.coefficients[0], fit.coefficients[1]];
        assert!(driver > 0.5, "{fit:?}");
        assert!(noise.abs() < driver / 5.0, "{fit:?}");
        // On the held-out rows the fit ranks better than a constant (0.5) and than the noise.
        let scored: Vec<(f64, bool)> = hold_x
            .iter()
            .zip(hold_y)
            .map(|(r, w)| (fit.log_odds(r), *w))
            .collect();
        let fitted = auc(&scored).expect("auc");
        let by_noise: Vec<(f64, bool)> = hold_x.iter().zip(hold_y).map(|(r, w)| (r[1], *w)).collect();
        let constant: Vec<(f64, bool)> = hold_y.iter().map(|w| (0.0, *w)).collect();
        assert_eq!(auc(&constant), Some(0.5));
        assert!(fitted > 0.8, "{fitted}");
        assert!(fitted > auc(&by_noise).expect("auc") + 0.2, "{fitted}");
    }

    #[test]
    fn perfectly_separated_data_stay_finite() {
        let x: Vec<Vec<f64>> = (0..20).map(|i| vec![f64::from(i)]).collect();
        let y: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        let fit = fit_logistic(&x, &y, 1.0).expect("fit");
        assert!(fit.coefficients[0].is_finite() && fit.coefficients[0] > 0.0);
        assert!(fit.iterations < MAX_STEPS);
    }

    #[test]
    fn matches_a_hand_solved_one_feature_case() {
        // One binary feature, two groups: x = 0 wins 1 of 4, x = 1 wins 3 of 4. With a tiny
        // penalty the fit is the groups' log-odds: b = ln(1/3), b + β = ln(3), β = 2·ln 3.
        let x: Vec<Vec<f64>> = [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
            .iter()
            .map(|v| vec![*v])
            .collect();
        let y = [true, false, false, false, true, true, true, false];
        let fit = fit_logistic(&x, &y, 1e-9).expect("fit");
        assert!((fit.intercept - (1.0f64 / 3.0).ln()).abs() < 1e-5, "{fit:?}");
        assert!((fit.coefficients[0] - 2.0 * 3.0f64.ln()).abs() < 1e-5, "{fit:?}");
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(fit_logistic(&[], &[], 1.0).is_err());
        assert!(fit_logistic(&[vec![1.0]], &[true, false], 1.0).is_err());
        assert!(fit_logistic(&[vec![1.0]], &[true], 0.0).is_err());
    }
}
