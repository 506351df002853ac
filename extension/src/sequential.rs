//! Always-valid inference: p-values and confidence sequences that stay
//! honest however often the results are looked at.
//!
//! A fixed-horizon test is valid once, at the sample size fixed in advance.
//! Checked after every batch of calls and stopped at the first p < alpha, it
//! calls a winner in far more than alpha of experiments where there is none
//! (the A/A simulation in tests/tests/experiments.rs shows it). The mixture
//! sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and
//! Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests",
//! Operations Research 70(3), 2022 (arXiv:1512.04922), does not: with a
//! normal mixture N(0, tau^2) over the effect, the likelihood ratio of the
//! observed difference theta (variance V) against no difference is
//!
//!   Lambda = sqrt(V / (V + tau^2)) * exp(theta^2 tau^2 / (2 V (V + tau^2)))
//!
//! a nonnegative martingale under the null, so by Ville's inequality
//! P(Lambda ever reaches 1/alpha) <= alpha: p = min(1, 1/Lambda) may be
//! read at any time, and the confidence sequence {theta : Lambda(theta) <
//! 1/alpha}, that is
//!
//!   theta_hat +- sqrt(V (V + tau^2) / tau^2 * (ln((V + tau^2) / V) - 2 ln alpha))
//!
//! covers the true difference at all times with probability 1 - alpha.
//! Differences of means and of rates use the normal approximation of the
//! paper's Section 4 (V estimated from the data).

use crate::significance::{Comparison, Sample};

/// The mixture's variance as a share of the metric's per-call variance:
/// tau = 0.1 sigma, most powerful for effects around a tenth of a standard
/// deviation (a 5-point lift of a 50% rate), the size prompt changes tend to
/// have. Fixed, not fitted to the data: any fixed tau keeps the guarantee.
pub const MIXTURE_SHARE: f64 = 0.01;

/// The always-valid p-value and the (1 - alpha) confidence sequence of b
/// minus a. None when a group has fewer than two observations.
pub fn msprt(a: Sample, b: Sample, alpha: f64) -> Option<Comparison> {
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let diff = b.mean - a.mean;
    let v = a.var.max(0.0) / a.n + b.var.max(0.0) / b.n;
    let sigma2 = (a.var.max(0.0) + b.var.max(0.0)) / 2.0;
    if v == 0.0 || sigma2 == 0.0 {
        return Some(Comparison { diff, low: diff, high: diff, p: if diff == 0.0 { 1.0 } else { 0.0 }, df: f64::INFINITY });
    }
    let tau2 = MIXTURE_SHARE * sigma2;
    let ln_lambda = 0.5 * (v / (v + tau2)).ln() + diff * diff * tau2 / (2.0 * v * (v + tau2));
    let p = (-ln_lambda).exp().min(1.0);
    let half = (v * (v + tau2) / tau2 * (((v + tau2) / v).ln() - 2.0 * alpha.ln())).sqrt();
    Some(Comparison { diff, low: diff - half, high: diff + half, p, df: f64::INFINITY })
}

/// A rate as a sample of zeros and ones.
pub fn rate(successes: u64, n: u64) -> Sample {
    let n_f = n as f64;
    let p = if n == 0 { 0.0 } else { successes as f64 / n_f };
    Sample { n: n_f, mean: p, var: if n < 2 { 0.0 } else { p * (1.0 - p) * n_f / (n_f - 1.0) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn the_boundary_is_where_lambda_reaches_one_over_alpha() {
        let a = Sample { n: 1000.0, mean: 0.0, var: 1.0 };
        let b = Sample { n: 1000.0, mean: 0.1, var: 1.0 };
        let c = msprt(a, b, 0.05).unwrap();
        // The sequence holds the differences not rejected: at its edges the
        // observed difference is exactly as far from them as p = alpha allows.
        for half in [c.high - c.diff, c.diff - c.low] {
            let at = msprt(a, Sample { mean: half, ..b }, 0.05).unwrap();
            close(at.p, 0.05, 1e-9);
        }
        // Closed form, computed by hand: V = 0.002, tau^2 = 0.01.
        let (v, t2) = (0.002_f64, 0.01_f64);
        let lambda = (v / (v + t2)).sqrt() * (0.01 * t2 / (2.0 * v * (v + t2))).exp();
        close(c.p, 1.0 / lambda, 1e-12);
        // Wider than the fixed-horizon interval: the price of peeking.
        let fixed = crate::significance::welch(a, b, 0.05).unwrap();
        assert!(c.high - c.low > fixed.high - fixed.low);
    }

    /// 2,000 A/A experiments (both arms the same 30% rate), checked after
    /// every 100 calls per arm up to 2,000: the always-valid p-value calls a
    /// difference in at most alpha of them; the fixed-horizon test, read at
    /// every look, in far more. (The same simulation runs through SQL in
    /// tests/tests/experiments.rs.)
    #[test]
    fn peeking_keeps_the_false_positive_rate() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut draw = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let (mut sequential, mut naive) = (0, 0);
        for _ in 0..2000 {
            let (mut sa, mut sb, mut n) = (0u64, 0u64, 0u64);
            let (mut seq_hit, mut naive_hit) = (false, false);
            for _ in 0..20 {
                for _ in 0..100 {
                    sa += u64::from(draw() < 0.3);
                    sb += u64::from(draw() < 0.3);
                }
                n += 100;
                seq_hit |= msprt(rate(sa, n), rate(sb, n), 0.05).unwrap().p < 0.05;
                naive_hit |= crate::significance::two_proportion_p(sa, n, sb, n).unwrap() < 0.05;
            }
            sequential += usize::from(seq_hit);
            naive += usize::from(naive_hit);
        }
        assert!(sequential <= 100, "{sequential} of 2000 A/A experiments called significant");
        assert!(naive > 300, "naive peeking called only {naive}");
    }

    #[test]
    fn no_variation_and_small_samples() {
        assert_eq!(msprt(rate(1, 1), rate(1, 1), 0.05), None);
        assert_eq!(msprt(rate(10, 10), rate(10, 10), 0.05).unwrap().p, 1.0);
        close(rate(3, 4).var, 0.25, 1e-15);
    }
}
