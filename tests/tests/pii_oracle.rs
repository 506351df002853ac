//! The default PII guardrail on PII nobody here generated or labelled:
//! Faker's values in 27 locales, labelled by libphonenumber, python-stdnum,
//! email-validator and `ipaddress` (tests/oracle/pii_oracle.py), each text
//! scanned by prompt_guard_scan on a real server. Prints precision and
//! recall per entity (the README quotes them) and fails below the issue's
//! targets: recall >= 0.9 at precision >= 0.95 per entity.
//!
//! The detectors were adjusted after reading the errors on the development
//! seed (1); the figures are measured on seed 2, which nothing was looked
//! at or tuned on (`PGPROMPT_PII_SEED` picks another).
//!
//! Needs PGPROMPT_ORACLE_PYTHON (a Python with Faker, phonenumbers,
//! python-stdnum and email-validator; `make test` sets it up).

use std::collections::BTreeMap;

use pgprompt_tests::*;

struct Sample {
    locale: String,
    text: String,
    /// (entity, start, end) in characters.
    spans: Vec<(String, i32, i32)>,
}

fn oracle(seed: &str) -> Vec<Sample> {
    oracle_lines("pii_oracle.py", &["--seed", seed])
        .into_iter()
        .map(|v| Sample {
            locale: v["locale"].as_str().unwrap().to_string(),
            text: v["text"].as_str().unwrap().to_string(),
            spans: v["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| (s["entity"].as_str().unwrap().to_string(), s["start"].as_i64().unwrap() as i32, s["end"].as_i64().unwrap() as i32))
                .collect(),
        })
        .collect()
}

/// Locales whose national phone numbers the default guardrail reads (the
/// oracle's DEFAULT_REGION_LOCALES).
const DEFAULT_REGION_LOCALES: &[&str] = &[
    "en_US", "en_CA", "en_GB", "en_IE", "de_DE", "de_AT", "de_CH", "fr_FR", "nl_NL", "nl_BE", "es_ES", "it_IT", "pt_PT", "en_IN", "pt_BR", "es_MX",
    "en_AU",
];

#[derive(Default)]
struct Tally {
    samples: usize,
    tp: usize,
    fp: usize,
    fn_: usize,
}

impl Tally {
    fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 { 1.0 } else { self.tp as f64 / (self.tp + self.fp) as f64 }
    }
    fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 { 1.0 } else { self.tp as f64 / (self.tp + self.fn_) as f64 }
    }
}

#[test]
fn pii_of_27_locales_labelled_by_independent_validators() {
    let seed = std::env::var("PGPROMPT_PII_SEED").unwrap_or_else(|_| "2".into());
    let samples = oracle(&seed);
    assert!(samples.len() > 2000, "the oracle made {} samples", samples.len());
    let db = TestDb::new();
    let mut c = db.connect();
    // Only the PII guardrail: a phrase rule's finding is no PII finding.
    c.batch_execute("UPDATE pgprompt.prompt_guardrails SET enabled = (kind = 'pii')").unwrap();
    let texts: Vec<&str> = samples.iter().map(|s| s.text.as_str()).collect();
    let rows = c
        .query(
            "SELECT i::int, f.entity, f.start_pos, f.end_pos
               FROM unnest($1::text[]) WITH ORDINALITY AS t(x, i), pgprompt.prompt_guard_scan(x, 'input') f",
            &[&texts],
        )
        .unwrap();
    let mut found: Vec<Vec<(String, i32, i32)>> = vec![Vec::new(); samples.len()];
    for r in rows {
        found[r.get::<_, i32>(0) as usize - 1].push((r.get(1), r.get(2), r.get(3)));
    }

    // Per entity; phone numbers also per group of locales.
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let verbose = std::env::var("PGPROMPT_PII_ERRORS").is_ok();
    for (s, f) in samples.iter().zip(&found) {
        let overlaps = |a: &(String, i32, i32), b: &(String, i32, i32)| a.0 == b.0 && a.1 < b.2 && b.1 < a.2;
        for span in &s.spans {
            let mut keys = vec![span.0.clone()];
            if span.0 == "PHONE_NUMBER" {
                let group = if DEFAULT_REGION_LOCALES.contains(&s.locale.as_str()) { "default regions" } else { "other regions" };
                keys.push(format!("PHONE_NUMBER ({group})"));
            }
            let hit = f.iter().any(|x| overlaps(x, span));
            for k in keys {
                let t = tallies.entry(k).or_default();
                t.samples += 1;
                if hit { t.tp += 1 } else { t.fn_ += 1 }
            }
            if !hit && verbose {
                eprintln!("FN {} [{}]: {}", span.0, s.locale, s.text);
            }
        }
        for x in f {
            if !s.spans.iter().any(|span| overlaps(x, span)) {
                tallies.entry(x.0.clone()).or_default().fp += 1;
                if verbose {
                    let chars: Vec<char> = s.text.chars().collect();
                    let what: String = chars[x.1 as usize..x.2 as usize].iter().collect();
                    eprintln!("FP {} [{}] {what:?}: {}", x.0, s.locale, s.text);
                }
            }
        }
    }
    let negatives = samples.iter().filter(|s| s.spans.is_empty()).count();
    println!("\nPII of Faker's 27 locales (seed {seed}; {} texts, {negatives} without PII):", samples.len());
    println!("| entity | samples with it | precision | recall |\n|---|---|---|---|");
    for (entity, t) in &tallies {
        println!("| `{entity}` | {} | {:.3} | {:.3} |", t.samples, t.precision(), t.recall());
    }
    let mut misses = Vec::new();
    for (entity, t) in &tallies {
        // Phone numbers: all 27 countries, the default regions and the
        // other countries each, whose national numbers are read among
        // their script's or language's words (config.regions adds them).
        if t.samples > 0 && (t.precision() < 0.95 || t.recall() < 0.9) {
            misses.push(format!("{entity}: precision {:.3}, recall {:.3}", t.precision(), t.recall()));
        }
    }
    assert!(misses.is_empty(), "below the targets (precision >= 0.95, recall >= 0.9): {misses:?}");
}
