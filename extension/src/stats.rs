//! Latency histograms for rollups: fixed log-scale buckets, so histograms of
//! any hours, templates or shards add up bucket by bucket and a percentile
//! over millions of executions reads 64 numbers instead of the rows.
//!
//! Bucket `i` holds latencies in `[1.25^i, 1.25^(i+1))` milliseconds (bucket 0
//! also holds everything below 1.25 ms, bucket 63 everything from about 21
//! minutes up). A percentile is reported as the geometric middle of its
//! bucket, so it is within ±12% of the exact value — plenty for alerting on
//! "p95 above 5 seconds", at a fraction of the cost of sorting the rows.

/// Number of buckets.
pub const BUCKETS: usize = 64;
/// Ratio between consecutive bucket bounds.
pub const GROWTH: f64 = 1.25;

/// The bucket of a latency in milliseconds.
pub fn bucket(latency_ms: f64) -> usize {
    if !(latency_ms >= GROWTH) {
        return 0; // also NaN and negatives, which callers refuse earlier
    }
    ((latency_ms.ln() / GROWTH.ln()).floor() as usize).min(BUCKETS - 1)
}

/// The histogram of some latencies.
pub fn histogram(latencies: impl IntoIterator<Item = f64>) -> Vec<i64> {
    let mut h = vec![0i64; BUCKETS];
    for l in latencies {
        h[bucket(l)] += 1;
    }
    h
}

/// Adds `n` calls to bucket `b` (clamped to the last bucket), growing a
/// short histogram to full length.
pub fn add(h: &mut Vec<i64>, b: usize, n: i64) {
    if h.len() < BUCKETS {
        h.resize(BUCKETS, 0);
    }
    let b = b.min(BUCKETS - 1);
    h[b] = h[b].saturating_add(n);
}

/// Bucket-wise sum; a missing or short histogram counts as zeros.
pub fn merge(a: &[i64], b: &[i64]) -> Vec<i64> {
    (0..BUCKETS).map(|i| a.get(i).copied().unwrap_or(0).saturating_add(b.get(i).copied().unwrap_or(0))).collect()
}

/// The `q` quantile (0..=1) in milliseconds, or `None` for an empty histogram.
pub fn quantile(h: &[i64], q: f64) -> Option<f64> {
    let total: i64 = h.iter().map(|&c| c.max(0)).sum();
    if total == 0 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // The rank of the quantile among `total` sorted values (nearest rank).
    let rank = ((q * total as f64).ceil() as i64).max(1);
    let mut seen = 0;
    for (i, &c) in h.iter().enumerate() {
        seen += c.max(0);
        if seen >= rank {
            return Some(midpoint(i));
        }
    }
    Some(midpoint(h.len() - 1))
}

/// Geometric middle of bucket `i` (bucket 0: 1 ms).
pub fn midpoint(i: usize) -> f64 {
    if i == 0 {
        return 1.0;
    }
    GROWTH.powf(i as f64 + 0.5)
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

/// The UTC month holding `ts`, as `year * 12 + month - 1`.
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

pub fn utc_month(ts: i64) -> i64 {
    let (year, month, _) = civil(ts.div_euclid(HOUR * 24) + 10957);
    year * 12 + month - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_log_scale_and_clamped() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(-3.0), 0);
        assert_eq!(bucket(f64::NAN), 0);
        assert_eq!(bucket(1.0), 0);
        assert_eq!(bucket(1.25), 1);
        assert_eq!(bucket(1.5624), 1);
        assert_eq!(bucket(1.5626), 2);
        assert_eq!(bucket(1e12), BUCKETS - 1);
        // monotonic
        let mut last = 0;
        for ms in (0..200_000).step_by(7) {
            let b = bucket(ms as f64);
            assert!(b >= last);
            last = b;
        }
    }

    #[test]
    fn quantiles_are_within_the_bucket_resolution() {
        let latencies: Vec<f64> = (1..=10_000).map(|i| i as f64).collect();
        let h = histogram(latencies.iter().copied());
        for (q, exact) in [(0.5, 5000.0), (0.95, 9500.0), (0.99, 9900.0)] {
            let est = quantile(&h, q).unwrap();
            assert!((est / exact - 1.0).abs() < 0.12, "q{q}: {est} vs {exact}");
        }
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&vec![0; BUCKETS], 0.5), None);
        assert_eq!(quantile(&h, 1.5), None);
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
        add(&mut h, 1000, 1);
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
