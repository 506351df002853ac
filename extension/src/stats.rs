//! Latency sketches for rollups, and the UTC hours and months the
//! statistics are kept by.
//!
//! A latency histogram is a `bigint[]` of counts per bucket, so histograms
//! of any hours, templates or shards add up bucket by bucket and a
//! percentile over millions of executions reads a few hundred numbers
//! instead of the rows. Buckets are those of DDSketch (Masson, Rim and Lee,
//! "DDSketch: A Fast and Fully-Mergeable Quantile Sketch with
//! Relative-Error Guarantees", VLDB 2019): bucket `k` holds latencies in
//! `(gamma^(k-1), gamma^k]` with `gamma = (1 + a) / (1 - a)`, and reports
//! `2 gamma^k / (gamma + 1)`, within `a` = 1% of every latency in it.
//!
//! The first 64 entries are 0.1.0's buckets (`[1.25^i, 1.25^(i+1))` ms,
//! reported within 12%): hours logged before the update keep their counts
//! there, and percentiles read both kinds together, so nothing needs
//! converting. New counts go to entries from `LEGACY` on: `LEGACY` holds
//! 0 ms, `LEGACY + 1 + k` DDSketch's bucket `k`.

/// Entries of 0.1.0's buckets at the start of every histogram.
pub const LEGACY: usize = 64;
/// Ratio between consecutive bounds of 0.1.0's buckets.
const LEGACY_GROWTH: f64 = 1.25;
/// The sketch's relative accuracy.
pub const ACCURACY: f64 = 0.01;
/// Ratio between consecutive bucket bounds.
fn gamma() -> f64 {
    (1.0 + ACCURACY) / (1.0 - ACCURACY)
}
/// Entries of a full histogram: the legacy ones, 0 ms, and DDSketch's
/// buckets up to 2^31 ms (latency_ms is an integer).
pub const BUCKETS: usize = LEGACY + 1 + 1076;

/// The bucket of a latency in milliseconds.
pub fn bucket(latency_ms: f64) -> usize {
    if !(latency_ms > 0.0) {
        return LEGACY; // 0 ms (NaN and negatives, which callers refuse earlier)
    }
    let k = (latency_ms.ln() / gamma().ln()).ceil().max(0.0) as usize;
    (LEGACY + 1 + k).min(BUCKETS - 1)
}

/// The histogram of some latencies.
pub fn histogram(latencies: impl IntoIterator<Item = f64>) -> Vec<i64> {
    let mut h = Vec::new();
    for l in latencies {
        add(&mut h, bucket(l), 1);
    }
    h
}

/// Adds `n` calls to bucket `b` (clamped to the last bucket), growing the
/// histogram as far as that bucket (histograms end at their last count).
pub fn add(h: &mut Vec<i64>, b: usize, n: i64) {
    let b = b.min(BUCKETS - 1);
    if h.len() <= b {
        h.resize(b + 1, 0);
    }
    h[b] = h[b].saturating_add(n);
}

/// Bucket-wise sum; a missing or short histogram counts as zeros.
pub fn merge(a: &[i64], b: &[i64]) -> Vec<i64> {
    (0..a.len().max(b.len())).map(|i| a.get(i).copied().unwrap_or(0).saturating_add(b.get(i).copied().unwrap_or(0))).collect()
}

/// The `q` quantile (0..=1) in milliseconds (nearest rank: the value of
/// the `ceil(q n)`-th smallest latency, as percentile_disc), or `None` for
/// an empty histogram.
pub fn quantile(h: &[i64], q: f64) -> Option<f64> {
    let total: i64 = h.iter().map(|&c| c.max(0)).sum();
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    let rank = ((q * total as f64).ceil() as i64).max(1);
    // Legacy and new buckets, each in increasing order, merged by value.
    let (legacy, new) = h.split_at(h.len().min(LEGACY));
    let mut legacy = legacy.iter().enumerate().map(|(i, &c)| (legacy_midpoint(i), c)).peekable();
    let mut new = new.iter().enumerate().map(|(i, &c)| (estimate(LEGACY + i), c)).peekable();
    let mut seen = 0;
    let mut last = 0.0;
    loop {
        let next = match (legacy.peek(), new.peek()) {
            (Some(a), Some(b)) => if a.0 <= b.0 { legacy.next() } else { new.next() },
            (Some(_), None) => legacy.next(),
            (None, Some(_)) => new.next(),
            (None, None) => return Some(last),
        };
        let (value, count) = next.expect("peeked");
        if count > 0 {
            seen += count;
            last = value;
            if seen >= rank {
                return Some(value);
            }
        }
    }
}

/// What bucket `b` (from `LEGACY` on) reports: within `ACCURACY` of every
/// latency in it.
pub fn estimate(b: usize) -> f64 {
    match b.checked_sub(LEGACY + 1) {
        None => 0.0,
        Some(k) => 2.0 * gamma().powi(k as i32) / (gamma() + 1.0),
    }
}

/// Geometric middle of 0.1.0's bucket `i` (bucket 0: 1 ms).
fn legacy_midpoint(i: usize) -> f64 {
    if i == 0 {
        return 1.0;
    }
    LEGACY_GROWTH.powf(i as f64 + 0.5)
}

/// Microseconds in an hour.
const HOUR: i64 = 3_600_000_000;

/// The start of the UTC hour holding `ts` (a PostgreSQL timestamp:
/// microseconds since 2000-01-01 00:00 UTC, itself an hour boundary).
pub fn utc_hour(ts: i64) -> i64 {
    ts.div_euclid(HOUR) * HOUR
}

/// `ts` (a whole hour) as ISO 8601 in UTC, `2026-01-31T10:00:00+00:00`,
/// as PostgreSQL writes a timestamptz into JSON with TimeZone UTC.
pub fn iso_hour(ts: i64) -> String {
    let (year, month, day) = civil(ts.div_euclid(HOUR * 24) + 10957);
    let hour = ts.rem_euclid(HOUR * 24) / HOUR;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:00:00+00:00")
}

/// The civil date of a day counted from 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// The first instant (microseconds since 2000, UTC) of the month after the
/// one holding `ts`.
pub fn next_month_start(ts: i64) -> i64 {
    let next = utc_month(ts) + 1;
    (days_from_civil(next.div_euclid(12), next.rem_euclid(12) + 1, 1) - 10957) * HOUR * 24
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The hour `iso_hour` wrote, back as a timestamp; `None` for any other text.
pub fn parse_iso_hour(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 25 || &s[4..5] != "-" || &s[7..8] != "-" || &s[10..11] != "T" || &s[13..] != ":00:00+00:00" {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r).filter(|t| t.bytes().all(|c| c.is_ascii_digit())).and_then(|t| t.parse::<i64>().ok());
    let (year, month, day, hour) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 {
        return None;
    }
    let ts = ((days_from_civil(year, month, day) - 10957) * 24 + hour) * HOUR;
    // (A day past the month's end would name another date.)
    (iso_hour(ts) == s).then_some(ts)
}

/// The UTC month holding `ts`, as `year * 12 + month - 1`.
pub fn utc_month(ts: i64) -> i64 {
    let (year, month, _) = civil(ts.div_euclid(HOUR * 24) + 10957);
    year * 12 + month - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_one_percent_and_clamped() {
        assert_eq!(bucket(0.0), LEGACY);
        assert_eq!(bucket(-3.0), LEGACY);
        assert_eq!(bucket(f64::NAN), LEGACY);
        assert_eq!(bucket(1e12), BUCKETS - 1);
        assert_eq!(bucket(2_147_483_647.0), BUCKETS - 1, "the largest latency_ms has its own bucket");
        assert!(bucket(2_147_483_647.0 / gamma()) < BUCKETS - 1);
        let mut last = LEGACY;
        for ms in 0..200_000 {
            let b = bucket(ms as f64);
            assert!(b >= last, "monotonic");
            last = b;
            let e = estimate(b);
            assert!((e - ms as f64).abs() <= ACCURACY * ms as f64 * (1.0 + 1e-12), "{ms} ms reported as {e}");
        }
    }

    #[test]
    fn quantiles_are_within_one_percent_of_the_exact_ones() {
        // Exact: the nearest-rank quantile of the sorted values.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut latencies: Vec<f64> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Log-normal-ish: 5 ms to 50 s.
                (5.0 * 10f64.powf((state >> 11) as f64 / (1u64 << 53) as f64 * 4.0)).round()
            })
            .collect();
        let h = histogram(latencies.iter().copied());
        latencies.sort_by(f64::total_cmp);
        for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0] {
            let exact = latencies[((q * latencies.len() as f64).ceil() as usize).max(1) - 1];
            let est = quantile(&h, q).unwrap();
            assert!((est / exact - 1.0).abs() <= ACCURACY * (1.0 + 1e-12), "q{q}: {est} vs {exact}");
        }
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&vec![0; BUCKETS], 0.5), None);
        assert_eq!(quantile(&h, 1.5), None);
    }

    #[test]
    fn legacy_counts_are_read_with_new_ones() {
        // 0.1.0's bucket 30 (about 904 ms) holds 10 calls; 10 new calls at 100 ms.
        let mut h = vec![0; LEGACY];
        h[30] = 10;
        add(&mut h, bucket(100.0), 10);
        assert!((quantile(&h, 0.5).unwrap() - 100.0).abs() <= 1.0);
        let p95 = quantile(&h, 0.95).unwrap();
        assert!((p95 / 1.25f64.powf(30.5) - 1.0).abs() < 1e-12, "{p95}");
        assert_eq!(merge(&h, &[1]).len(), h.len());
        assert_eq!(merge(&h, &[1])[0], 1);
    }

    #[test]
    fn hours_and_months_are_utc() {
        const DAY: i64 = 24 * HOUR;
        assert_eq!(utc_hour(0), 0);
        assert_eq!(utc_hour(HOUR - 1), 0);
        assert_eq!(utc_hour(-1), -HOUR, "before 2000 rounds down too");
        assert_eq!(utc_month(0), 2000 * 12);
        assert_eq!(utc_month(31 * DAY - 1), 2000 * 12, "2000-01-31 23:59:59.999999");
        assert_eq!(utc_month(31 * DAY), 2000 * 12 + 1, "2000-02-01");
        assert_eq!(utc_month(60 * DAY), 2000 * 12 + 2, "2000-03-01 (2000 is a leap year)");
        assert_eq!(utc_month(-1), 1999 * 12 + 11, "1999-12-31");
        // 2026-11-22 is day 9822 after 2000-01-01.
        assert_eq!(utc_month(9822 * DAY), 2026 * 12 + 10);
        assert_eq!(utc_month(9830 * DAY), 2026 * 12 + 10, "2026-11-30");
        assert_eq!(utc_month(9831 * DAY), 2026 * 12 + 11, "2026-12-01");
    }

    #[test]
    fn the_next_month_starts_where_the_month_ends() {
        const DAY: i64 = 24 * HOUR;
        assert_eq!(next_month_start(0), 31 * DAY, "2000-02-01");
        assert_eq!(next_month_start(31 * DAY), 60 * DAY, "2000-03-01");
        assert_eq!(next_month_start(-1), 0, "1999-12-31 to 2000-01-01");
        assert_eq!(next_month_start(9822 * DAY), 9831 * DAY, "2026-12-01");
        // Over 60 years, every instant's next month starts a month after its own.
        let mut t = -10_000 * DAY;
        while t < 20_000 * DAY {
            let next = next_month_start(t);
            assert!(next > t);
            assert_eq!(utc_month(next), utc_month(t) + 1, "{t}");
            assert_eq!(utc_month(next - 1), utc_month(t), "{t}");
            t += 7 * DAY + 3 * HOUR;
        }
    }

    #[test]
    fn adding_grows_and_clamps() {
        let mut h = Vec::new();
        add(&mut h, 3, 2);
        assert_eq!(h.len(), 4);
        add(&mut h, 100_000, 1);
        assert_eq!(h.len(), BUCKETS);
        assert_eq!(h[3], 2);
        assert_eq!(h[BUCKETS - 1], 1);
    }

    #[test]
    fn hours_in_iso_8601() {
        // PostgreSQL: to_jsonb('2026-01-31 10:00+00'::timestamptz) with TimeZone UTC.
        let ts = (9527 * 24 + 10) * HOUR; // days from 2000-01-01 to 2026-01-31
        assert_eq!(iso_hour(ts), "2026-01-31T10:00:00+00:00");
        assert_eq!(iso_hour(0), "2000-01-01T00:00:00+00:00");
        assert_eq!(iso_hour(-HOUR), "1999-12-31T23:00:00+00:00");
        assert_eq!(iso_hour((59 * 24 + 5) * HOUR), "2000-02-29T05:00:00+00:00");
        for ts in [0, ts, -HOUR, (59 * 24 + 5) * HOUR, 40_000 * 24 * HOUR] {
            assert_eq!(parse_iso_hour(&iso_hour(ts)), Some(ts));
        }
        for bad in ["2026-02-30T10:00:00+00:00", "2026-01-31T10:00:00+01:00", "2026-01-31 10:00:00+00", "x"] {
            assert_eq!(parse_iso_hour(bad), None, "{bad}");
        }
    }

    #[test]
    fn histograms_merge_bucket_by_bucket() {
        let a = histogram([1.0, 100.0]);
        let b = histogram([100.0, 5000.0]);
        let m = merge(&a, &b);
        assert_eq!(m.iter().sum::<i64>(), 4);
        assert_eq!(m[bucket(100.0)], 2);
        assert_eq!(merge(&[], &a), a);
    }
}
