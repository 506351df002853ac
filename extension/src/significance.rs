//! The statistics behind experiment results: confidence intervals, tests
//! and the sample-ratio check. Plain f64 arithmetic with special functions
//! accurate to about 1e-14, checked against values computed independently.

/// z for a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// Wilson score interval for `successes` of `n` at normal quantile `z`:
/// unlike the textbook p ± z·se it stays inside [0, 1] and is honest for
/// small n and rates near 0 or 1. None when n is 0.
pub fn wilson(successes: u64, n: u64, z: f64) -> Option<(f64, f64)> {
    if n == 0 || successes > n {
        return None;
    }
    let (s, n) = (successes as f64, n as f64);
    let p = s / n;
    let z2 = z * z;
    let d = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / d;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / d;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

/// Two-sided p-value of the pooled two-proportion z-test of rate b against
/// rate a. None when either group is empty; 1 when both rates are equal and
/// the pooled rate is 0 or 1 (no variation, no evidence).
pub fn two_proportion_p(s_a: u64, n_a: u64, s_b: u64, n_b: u64) -> Option<f64> {
    if n_a == 0 || n_b == 0 || s_a > n_a || s_b > n_b {
        return None;
    }
    let (pa, pb) = (s_a as f64 / n_a as f64, s_b as f64 / n_b as f64);
    let pooled = (s_a + s_b) as f64 / (n_a + n_b) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_a as f64 + 1.0 / n_b as f64)).sqrt();
    if se == 0.0 {
        return Some(1.0);
    }
    let z = (pb - pa) / se;
    Some(erfc(z.abs() / std::f64::consts::SQRT_2))
}

/// Sample-ratio mismatch: the p-value of Pearson's chi-square test of the
/// observed counts against the configured weights. A tiny p-value means
/// assignment or logging is broken, and no result of the experiment can be
/// trusted. None without observations or with fewer than two positive weights.
pub fn sample_ratio_p(observed: &[u64], weights: &[f64]) -> Option<f64> {
    let total: u64 = observed.iter().sum();
    let weight_sum: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    if total == 0 || observed.len() != weights.len() || weights.iter().filter(|w| **w > 0.0).count() < 2 {
        return None;
    }
    let mut stat = 0.0;
    for (&o, &w) in observed.iter().zip(weights) {
        if w <= 0.0 {
            if o > 0 {
                return Some(0.0); // traffic where none was configured
            }
            continue;
        }
        let e = total as f64 * w / weight_sum;
        stat += (o as f64 - e).powi(2) / e;
    }
    let df = weights.iter().filter(|w| **w > 0.0).count() - 1;
    Some(chi_square_sf(stat, df as f64))
}

/// P(X > x) for X chi-square distributed with `df` degrees of freedom.
pub fn chi_square_sf(x: f64, df: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    gamma_q(df / 2.0, x / 2.0)
}

/// The complementary error function.
pub fn erfc(x: f64) -> f64 {
    if x < 0.0 {
        2.0 - erfc(-x)
    } else {
        gamma_q(0.5, x * x)
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms).
pub fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1-x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a):
/// the series for P below a + 1, Lentz's continued fraction above.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let front = (-x + a * x.ln() - ln_gamma(a)).exp();
    if x < a + 1.0 {
        let (mut term, mut sum, mut n) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            n += 1.0;
            term *= x / n;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * front).max(0.0)
    } else {
        const TINY: f64 = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / TINY;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < TINY {
                d = TINY;
            }
            c = b + an / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (front * h).min(1.0)
    }
}

/// The standard normal quantile: x with P(Z <= x) = p, for 0 < p < 1
/// (Acklam's rational approximation, then one Halley step on erfc, which
/// brings it to full double precision).
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [-3.969_683_028_665_376e1, 2.209_460_984_245_205e2, -2.759_285_104_469_687e2, 1.383_577_518_672_69e2, -3.066_479_806_614_716e1, 2.506_628_277_459_239];
    const B: [f64; 5] = [-5.447_609_879_822_406e1, 1.615_858_368_580_409e2, -1.556_989_798_598_866e2, 6.680_131_188_771_972e1, -1.328_068_155_288_572e1];
    const C: [f64; 6] = [-7.784_894_002_430_293e-3, -3.223_964_580_411_365e-1, -2.400_758_277_161_838, -2.549_732_539_343_734, 4.374_664_141_464_968, 2.938_163_982_698_783];
    const D: [f64; 4] = [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        let q = (-2.0 * q.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5]) / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p > 0.5 {
        // By symmetry, from the lower tail, where the refinement below is
        // accurate (near 1, 1 - Phi(x) would cancel).
        return -normal_quantile(1.0 - p);
    }
    let x = if p < 0.02425 {
        tail(p)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    };
    let e = 0.5 * erfc(-x / std::f64::consts::SQRT_2) - p;
    let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
    x - u / (1.0 + x * u / 2.0)
}

/// The regularized incomplete beta function I_x(a, b) (Lentz's continued
/// fraction, on the side of x where it converges fast).
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let front = (ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln()).exp();
    if x > (a + 1.0) / (a + b + 2.0) {
        return 1.0 - incomplete_beta(1.0 - x, b, a);
    }
    const TINY: f64 = 1e-300;
    let (mut c, mut d) = (1.0, 1.0 - (a + b) * x / (a + 1.0));
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..1000 {
        let m = m as f64;
        for numerator in [
            m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0)),
        ] {
            d = 1.0 + numerator * d;
            if d.abs() < TINY {
                d = TINY;
            }
            c = 1.0 + numerator / c;
            if c.abs() < TINY {
                c = TINY;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-16 {
            break;
        }
    }
    front * h / a
}

/// Two-sided p-value of Student's t with `df` degrees of freedom: P(|T| >= |t|).
pub fn t_two_sided_p(t: f64, df: f64) -> f64 {
    if !t.is_finite() {
        return 0.0;
    }
    incomplete_beta(df / (df + t * t), df / 2.0, 0.5)
}

/// The quantile of Student's t: x with P(T <= x) = p, for p above 0.5
/// (bisection on the two-sided p-value: monotone, and exact to 1e-12).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let target = 2.0 * (1.0 - p);
    let (mut lo, mut hi) = (0.0, 1.0);
    while t_two_sided_p(hi, df) > target {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        if t_two_sided_p(mid, df) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    (lo + hi) / 2.0
}

/// A sample summarised: size, mean and (unbiased) variance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub n: f64,
    pub mean: f64,
    pub var: f64,
}

/// A comparison of a treatment (b) with a control (a): the difference of
/// means b - a with its two-sided confidence interval and p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    pub diff: f64,
    pub low: f64,
    pub high: f64,
    pub p: f64,
    /// Degrees of freedom (Welch–Satterthwaite); infinite for z-tests.
    pub df: f64,
}

/// Welch's t-test of mean b against mean a (unequal variances), with the
/// (1 - alpha) confidence interval of the difference. None when a group has
/// fewer than two observations.
pub fn welch(a: Sample, b: Sample, alpha: f64) -> Option<Comparison> {
    if a.n < 2.0 || b.n < 2.0 {
        return None;
    }
    let (va, vb) = (a.var.max(0.0) / a.n, b.var.max(0.0) / b.n);
    let se2 = va + vb;
    let diff = b.mean - a.mean;
    if se2 == 0.0 {
        // No variation: the difference is what it is, exactly.
        return Some(Comparison { diff, low: diff, high: diff, p: if diff == 0.0 { 1.0 } else { 0.0 }, df: f64::INFINITY });
    }
    let df = se2 * se2 / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    let se = se2.sqrt();
    let half = t_quantile(1.0 - alpha / 2.0, df) * se;
    Some(Comparison { diff, low: diff - half, high: diff + half, p: t_two_sided_p(diff / se, df), df })
}

/// Rate b minus rate a with Newcombe's hybrid score interval (from the two
/// Wilson intervals; it stays honest near 0 and 1 where the Wald interval
/// does not) and the pooled two-proportion z-test's p-value.
pub fn proportions(s_a: u64, n_a: u64, s_b: u64, n_b: u64, alpha: f64) -> Option<Comparison> {
    let z = normal_quantile(1.0 - alpha / 2.0);
    let (la, ua) = wilson(s_a, n_a, z)?;
    let (lb, ub) = wilson(s_b, n_b, z)?;
    let (pa, pb) = (s_a as f64 / n_a as f64, s_b as f64 / n_b as f64);
    let diff = pb - pa;
    Some(Comparison {
        diff,
        low: diff - ((pb - lb).powi(2) + (ua - pa).powi(2)).sqrt(),
        high: diff + ((ub - pb).powi(2) + (pa - la).powi(2)).sqrt(),
        p: two_proportion_p(s_a, n_a, s_b, n_b)?,
        df: f64::INFINITY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol * b.abs().max(1e-300), "{a} vs {b}");
    }

    // Expected values from Python's math.erfc and math.lgamma, and from the
    // closed forms of the chi-square survival function for df 1 to 4.

    #[test]
    fn special_functions() {
        close(erfc(1.0), 0.157_299_207_050_285_13, 1e-13);
        close(erfc(0.1), 0.887_537_083_981_715_2, 1e-13);
        close(erfc(3.0), 2.209_049_699_858_543_8e-5, 1e-12);
        close(erfc(6.0), 2.151_973_671_249_891_6e-17, 1e-10);
        close(erfc(-1.0), 2.0 - 0.157_299_207_050_285_13, 1e-13);
        close(ln_gamma(0.5), 0.572_364_942_924_700_4, 1e-13);
        close(ln_gamma(10.3), 13.482_036_786_138_36, 1e-13);
        close(ln_gamma(100.5), 361.435_540_467_777_6, 1e-13);
        close(chi_square_sf(3.841_458_820_694_124, 1.0), 0.05, 1e-12);
        close(chi_square_sf(5.991_464_547_107_979, 2.0), 0.05, 1e-12);
        close(chi_square_sf(7.0, 3.0), 0.071_897_772_496_465_13, 1e-12);
        close(chi_square_sf(9.0, 4.0), 0.061_099_480_960_332_686, 1e-12);
        close(chi_square_sf(0.5, 1.0), 0.479_500_122_186_953_5, 1e-12);
        close(chi_square_sf(0.1, 3.0), 0.991_837_423_731_876_4, 1e-12);
        close(chi_square_sf(30.0, 1.0), 4.320_463_057_827_492e-8, 1e-10);
        assert_eq!(chi_square_sf(0.0, 2.0), 1.0);
    }

    #[test]
    fn wilson_intervals() {
        let (lo, hi) = wilson(50, 100, Z95).unwrap();
        close(lo, 0.403_831_530_365_995_6, 1e-12);
        close(hi, 0.596_168_469_634_004_4, 1e-12);
        let (lo, hi) = wilson(0, 10, Z95).unwrap();
        assert_eq!(lo, 0.0);
        close(hi, 0.277_532_799_862_889_2, 1e-12);
        let (lo, hi) = wilson(10, 10, Z95).unwrap();
        close(lo, 0.722_467_200_137_110_7, 1e-12);
        assert!(hi <= 1.0);
        let (lo, hi) = wilson(1, 1000, Z95).unwrap();
        close(lo, 0.000_176_546_370_626_078_09, 1e-9);
        close(hi, 0.005_642_558_597_957_935_5, 1e-12);
        assert_eq!(wilson(0, 0, Z95), None);
        assert_eq!(wilson(3, 2, Z95), None);
    }

    #[test]
    fn two_proportion_tests() {
        close(two_proportion_p(200, 1000, 240, 1000).unwrap(), 0.030_837_167_828_904_333, 1e-12);
        close(two_proportion_p(4800, 10000, 5000, 10000).unwrap(), 0.004_669_472_320_357_510_5, 1e-11);
        assert_eq!(two_proportion_p(500, 1000, 500, 1000), Some(1.0));
        assert_eq!(two_proportion_p(0, 100, 0, 100), Some(1.0));
        assert_eq!(two_proportion_p(0, 0, 5, 10), None);
        // Symmetric in the groups.
        assert_eq!(two_proportion_p(240, 1000, 200, 1000), two_proportion_p(200, 1000, 240, 1000));
    }

    // Expected values from scipy 1.17 (stats.norm.ppf, special.betainc,
    // stats.t, stats.ttest_ind_from_stats with equal_var=False) and
    // statsmodels' confint_proportions_2indep(method='newcomb').

    #[test]
    fn quantiles_and_the_t_distribution() {
        close(normal_quantile(0.975), 1.959_963_984_540_054, 1e-14);
        close(normal_quantile(0.001), -3.090_232_306_167_813, 1e-13);
        close(normal_quantile(0.999_999_9), 5.199_337_582_290_661, 1e-12);
        close(normal_quantile(0.3), -0.524_400_512_708_040_9, 1e-13);
        close(incomplete_beta(0.3, 2.5, 3.5), 0.296_752_989_295_666_46, 1e-12);
        close(incomplete_beta(0.9, 10.0, 0.5), 0.151_640_909_634_709_94, 1e-12);
        close(incomplete_beta(0.01, 0.5, 0.5), 0.063_768_560_858_519_85, 1e-12);
        close(t_two_sided_p(2.1, 7.0), 0.073_871_196_212_922_65, 1e-12);
        close(t_two_sided_p(0.5, 30.5), 0.620_663_523_914_525_7, 1e-12);
        close(t_two_sided_p(-5.0, 3.0), 0.015_392_438_073_302_294, 1e-12);
        close(t_quantile(0.975, 7.0), 2.364_624_251_592_784, 1e-11);
        close(t_quantile(0.975, 123.4), 1.979_374_946_317_419_7, 1e-11);
        close(t_quantile(0.995, 2.5), 7.163_728_138_948_783, 1e-11);
    }

    #[test]
    fn welch_and_newcombe() {
        let c = welch(Sample { n: 40.0, mean: 3.2, var: 1.1 }, Sample { n: 35.0, mean: 3.7, var: 2.3 }, 0.05).unwrap();
        close(c.p, 0.106_780_466_436_312_4, 1e-10);
        close(c.df, 59.349_688_890_056_97, 1e-12);
        close(c.low, -0.110_848_886_497_960_99, 1e-10);
        close(c.high, 1.110_848_886_497_961, 1e-10);
        let c = welch(Sample { n: 1000.0, mean: 850.0, var: 250_000.0 }, Sample { n: 980.0, mean: 820.0, var: 160_000.0 }, 0.01).unwrap();
        close(c.p, 0.140_182_016_646_209_13, 1e-10);
        close(c.df, 1_902.087_199_111_916_3, 1e-12);
        close(c.low, -82.416_444_215_463_97, 1e-10);
        close(c.high, 22.416_444_215_463_97, 1e-10);
        assert_eq!(welch(Sample { n: 1.0, mean: 1.0, var: 0.0 }, Sample { n: 5.0, mean: 1.0, var: 1.0 }, 0.05), None);
        let c = proportions(200, 1000, 240, 1000, 0.05).unwrap();
        close(c.diff, 0.04, 1e-12);
        close(c.low, 0.003_679_714_497_771_255_4, 1e-9);
        close(c.high, 0.076_202_661_508_461_11, 1e-9);
        close(c.p, 0.030_837_167_828_904_333, 1e-12);
        let c = proportions(0, 12, 3, 10, 0.05).unwrap();
        close(c.low, -0.009_430_994_163_461_492, 1e-9);
        close(c.high, 0.603_221_852_538_854_6, 1e-9);
    }

    #[test]
    fn sample_ratio_mismatch() {
        close(sample_ratio_p(&[5150, 4850], &[50.0, 50.0]).unwrap(), 0.002_699_796_063_260_191_3, 1e-11);
        close(sample_ratio_p(&[5100, 3000, 1900], &[50.0, 30.0, 20.0]).unwrap(), 0.030_197_383_422_318_5, 1e-11);
        assert_eq!(sample_ratio_p(&[5000, 5000], &[50.0, 50.0]), Some(1.0));
        assert_eq!(sample_ratio_p(&[0, 0], &[50.0, 50.0]), None);
        assert_eq!(sample_ratio_p(&[10], &[100.0]), None);
    }
}
