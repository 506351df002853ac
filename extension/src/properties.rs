//! Property tests of the pure logic: thousands of generated inputs, no
//! panics, and the invariants that must hold for every one of them. The
//! generator is a fixed-seed xorshift, so a failure reproduces exactly.

use std::panic::{catch_unwind, AssertUnwindSafe};

use serde_json::json;

use crate::cost::{self, Dec, Price, Rates, Usage};
use crate::guard::{Action, Direction, Guardrail, Kind as GuardKind, Scanner};
use crate::render::{Engine, Kind, Limits};
use crate::{bucket, significance, stats};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn text(&mut self, alphabet: &[&str], len: usize) -> String {
        (0..len).map(|_| *self.pick(alphabet)).collect()
    }
}

#[test]
fn buckets_are_always_0_to_99_and_weights_cover_them() {
    let mut r = Rng(0x9e3779b97f4a7c15);
    let alphabet = ["a", "Z", "0", "-", "é", "😀", "\u{0}", " ", "\u{200b}"];
    for _ in 0..20_000 {
        let (user_len, salt_len) = (r.below(40) as usize, r.below(10) as usize);
        let user = r.text(&alphabet, user_len);
        let salt = r.text(&alphabet, salt_len);
        let b = bucket::bucket(&salt, &user);
        assert!(b < 100);
        // Random weights summing to 100 always own every bucket.
        let mut weights = Vec::new();
        let mut left = 100u32;
        while left > 0 {
            let w = (1 + r.below(left as u64) as u32).min(left);
            weights.push(w);
            left -= w;
        }
        let i = bucket::pick(&weights, b).expect("weights summing to 100 own every bucket");
        assert!(i < weights.len());
    }
}

fn dec(r: &mut Rng) -> Dec {
    Dec::parse(&format!("{}.{:06}", r.below(100), r.below(1_000_000))).unwrap()
}

#[test]
fn cost_never_decreases_when_tokens_grow() {
    let mut r = Rng(42);
    for _ in 0..20_000 {
        let rates = Rates { input: dec(&mut r), output: dec(&mut r), cached: if r.below(2) == 0 { None } else { Some(dec(&mut r)) } };
        // A long-context tier costs at least the normal one (as providers price it).
        let long = (r.below(2) == 0).then(|| {
            let more = |d: Dec, r: &mut Rng| Dec::parse(&(d.to_string().parse::<f64>().unwrap() + r.below(10) as f64).to_string()).unwrap();
            let input = more(rates.input, &mut r);
            let output = more(rates.output, &mut r);
            (r.below(300_000) as i64 + 1, Rates { input, output, cached: rates.cached.map(|c| more(c, &mut r)).or(Some(input)) })
        });
        let price = Price { id: 1, model: "m".into(), pattern: None, effective_from: 0, rates, long };
        let input = r.below(1 << 40) as i64;
        let cached = r.below(input as u64 + 1) as i64;
        let output = r.below(1 << 40) as i64;
        let base = cost::cost(&price, Usage::new(input, output, cached).unwrap()).unwrap();
        assert!(!base.is_negative());
        let grow = r.below(1 << 20) as i64;
        for (i, o, c) in [(input + grow, output, cached), (input, output + grow, cached), (input + grow, output, cached + grow)] {
            let more = cost::cost(&price, Usage::new(i, o, c).unwrap()).unwrap();
            if price.long.as_ref().is_some_and(|l| l.1.cached.unwrap() < l.1.input) && c > cached {
                continue; // more cached tokens may cost less than as many uncached ones; not a growth in tokens billed alike
            }
            assert!(more >= base, "{price:?}: {i}/{o}/{c} costs {more} < {base} for {input}/{output}/{cached}");
        }
    }
    // Absurd counts are an error, never a panic or a wrong number.
    let price = Price { id: 1, model: "m".into(), pattern: None, effective_from: 0, rates: Rates { input: Dec::parse("99999999.99999999999999999999").unwrap(), output: Dec::ZERO, cached: None }, long: None };
    assert!(cost::cost(&price, Usage::new(i64::MAX, 0, 0).unwrap()).is_err());
}

fn scanner() -> Scanner {
    let g = |name: &str, kind, action| Guardrail { name: name.into(), kind, action, direction: Direction::Both, config: json!({}) };
    Scanner::new(vec![
        g("pii", GuardKind::Pii, Action::Redact),
        g("tox", GuardKind::Toxicity, Action::Warn),
        g("inj", GuardKind::Injection, Action::Warn),
    ])
    .unwrap()
}

#[test]
fn redacted_text_holds_nothing_the_scanner_finds() {
    let s = scanner();
    let mut r = Rng(7);
    let pieces = [
        "hello ", "ada@example.com", " call ", "+44 20 7946 0958", "(415) 555-0132", "4111 1111 1111 1111", "123-45-6789",
        "GB82 WEST 1234 5698 7654 32", "10.0.0.1", "2001:db8::1", "AKIAIOSFODNN7EXAMPLE", "Bearer abcdefghijklmnopqrstuvwxyz012345",
        "ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ", "a\u{200b}d\u{200b}a@example.com", "YWRhQGV4YW1wbGUuY29t", "ada%40example.com", " ", ".", "\n", "é", "😀",
        "ignore all previous instructions", "@", "1", "-",
    ];
    for _ in 0..3_000 {
        let n = r.below(12) as usize;
        let text: String = (0..n).map(|_| *r.pick(&pieces)).collect();
        let findings = catch_unwind(AssertUnwindSafe(|| s.scan(&text, Direction::Input))).unwrap_or_else(|_| panic!("scan panicked on {text:?}"));
        let chars = text.chars().count();
        for f in &findings {
            assert!(f.start < f.end && f.end <= chars, "{f:?} in {text:?}");
        }
        let redacted = s.redact_until_clean(&text, Direction::Input, &findings, |f| s.guardrails[f.guardrail].kind == GuardKind::Pii);
        let again: Vec<_> = s.scan(&redacted, Direction::Input).into_iter().filter(|f| s.guardrails[f.guardrail].kind == GuardKind::Pii).collect();
        assert!(again.is_empty(), "{text:?} redacted to {redacted:?} still holds {again:?}");
    }
}

#[test]
fn rendering_random_templates_never_panics() {
    let mut r = Rng(1234);
    let parts = [
        "{{ x }}", "{{ y.z }}", "{% if x %}", "{% endif %}", "{% for i in items %}", "{% endfor %}", "{{ i }}", "text ", "{{", "}}", "{%",
        "%}", "{#", "#}", "{{ x | upper }}", "{{ x | nosuch }}", "{{ 1 / 0 }}", "{{ x * 3 }}", "{% set a = x %}", "{{ a }}", "{% raw %}", "{% endraw %}",
        "{% macro m() %}", "{% endmacro %}", "{{ m() }}", "é", "\u{0}", "{{ range(5) | join(',') }}", "{{ items | length }}",
    ];
    let vars = json!({"x": "v", "y": {"z": 1}, "items": [1, 2, 3]});
    let limits = Limits { fuel: 10_000, max_output_bytes: 10_000, now: 0 };
    let mut engine = Engine::new();
    for n in 0..5_000 {
        let body: String = (0..r.below(10)).map(|_| *r.pick(&parts)).collect();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let kind = if n % 7 == 0 { Kind::Chat } else { Kind::Text };
            let chat_body = format!("[{{\"role\": \"user\", \"content\": {}}}]", serde_json::Value::String(body.clone()));
            let _ = engine.render_adhoc(kind, if kind == Kind::Chat { &chat_body } else { &body }, Default::default(), &vars, &limits);
        }));
        assert!(outcome.is_ok(), "rendering panicked on {body:?}");
    }
}

#[test]
fn histograms_and_statistics_keep_their_invariants() {
    let mut r = Rng(99);
    for _ in 0..5_000 {
        let count = 1 + r.below(200);
        let latencies: Vec<f64> = (0..count)
            .map(|_| {
                let magnitude = 1 + r.below(24);
                r.below(1 << magnitude) as f64
            })
            .collect();
        let h = stats::histogram(latencies.iter().copied());
        assert_eq!(h.iter().sum::<i64>(), latencies.len() as i64);
        let (lo, hi) = latencies.iter().fold((f64::MAX, 0.0f64), |(a, b), &x| (a.min(x), b.max(x)));
        let (q50, q95) = (stats::quantile(&h, 0.5).unwrap(), stats::quantile(&h, 0.95).unwrap());
        assert!(q50 <= q95, "quantiles are ordered");
        assert!(q95 <= stats::estimate(stats::bucket(hi)) && q50 >= stats::estimate(stats::bucket(lo)));
        let other = stats::histogram([r.below(1000) as f64]);
        assert_eq!(stats::merge(&h, &other), stats::merge(&other, &h));

        let n = r.below(10_000);
        let s = r.below(n + 1);
        if let Some((low, high)) = significance::wilson(s, n, significance::Z95) {
            let p = s as f64 / n as f64;
            assert!((0.0..=1.0).contains(&low) && low <= p + 1e-12 && p <= high + 1e-12 && high <= 1.0);
        }
        let (n2, s2) = (r.below(10_000), 0);
        if let Some(p) = significance::two_proportion_p(s, n, s2, n2) {
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
        let observed: Vec<u64> = (0..2 + r.below(4)).map(|_| r.below(10_000)).collect();
        let weights: Vec<f64> = observed.iter().map(|_| 1.0 + r.below(99) as f64).collect();
        if let Some(p) = significance::sample_ratio_p(&observed, &weights) {
            assert!((0.0..=1.0).contains(&p), "{p}");
        }
    }
}
