//! Trains the learned injection detector (`pgprompt::guard::model`).
//!
//! `train_injection <examples.jsonl> <out.bin> [<fixed_scores.jsonl>]`: each line of the input is
//! `{"text": ..., "label": 0 or 1, "source": ..., "split": "train" or
//! "valid"}`, as `extension/guard_model/prepare.py` writes it from the
//! pinned public sources. Texts are folded as the scanner folds them and
//! cut into the scanner's windows; every window of an attack is a positive
//! (the sources' attacks are instructions throughout), every window of a
//! benign text a negative.
//!
//! Logistic regression by AdaGrad over shuffled windows, in a fixed order
//! from a fixed seed and single-threaded, so the same input gives the same
//! bytes. Each class weighs as much as the other in total, and within a
//! class each source as much as the others, so no single large collection
//! decides what an attack looks like. The decision threshold written into
//! the model is the lowest score that keeps false positives on held-back
//! benign texts (split "valid") at or below `FALSE_POSITIVE_TARGET`.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use pgprompt::guard::model::{self, Model};
use pgprompt::guard::normalize;

const BITS: u32 = 20;
const EPOCHS: usize = 8;
const LEARNING_RATE: f32 = 0.4;
const L2: f32 = 1e-6;
const FALSE_POSITIVE_TARGET: f64 = 0.01;

struct Window {
    /// Distinct feature indices with their counts.
    features: Vec<(u32, f32)>,
    /// `model::norm` of the number of features, as `Model::scores` scales.
    norm: f32,
    label: f32,
    weight: f32,
}

struct Text {
    label: u8,
    source: String,
    split: String,
    windows: Vec<Window>,
}

fn featurize(text: &str) -> Vec<(Vec<(u32, f32)>, f32)> {
    let folded = normalize::fold(text).text;
    model::Reading::new(&folded)
        .window_features(BITS)
        .into_iter()
        .map(|mut idx| {
            let n = idx.len();
            idx.sort_unstable();
            let mut counted: Vec<(u32, f32)> = Vec::new();
            for i in idx {
                match counted.last_mut() {
                    Some((j, c)) if *j == i => *c += 1.0,
                    _ => counted.push((i, 1.0)),
                }
            }
            (counted, model::norm(n))
        })
        .collect()
}

/// xorshift64*: a fixed, dependency-free shuffle.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (input, output, fixed) = match &args[..] {
        [_, input, output] => (input, output, None),
        [_, input, output, fixed] => (input, output, Some(fixed)),
        _ => {
            eprintln!("usage: train_injection <examples.jsonl> <out.bin> [<fixed_scores.jsonl>]");
            std::process::exit(2);
        }
    };
    let file = std::fs::File::open(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    let mut texts = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("reading the examples");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
        let text = v["text"].as_str().expect("text");
        raw.push(text.to_string());
        let label = v["label"].as_u64().expect("label") as u8;
        let windows = featurize(text)
            .into_iter()
            .map(|(features, norm)| Window { features, norm, label: label as f32, weight: 0.0 })
            .collect();
        texts.push(Text {
            label,
            source: v["source"].as_str().expect("source").to_string(),
            split: v["split"].as_str().expect("split").to_string(),
            windows,
        });
    }

    // Weights: each class half of the total, each source an equal share of
    // its class, each text an equal share of its source (spread over its
    // windows).
    let mut sources: BTreeMap<(u8, String), usize> = BTreeMap::new();
    for t in texts.iter().filter(|t| t.split == "train") {
        *sources.entry((t.label, t.source.clone())).or_default() += 1;
    }
    let per_class = |label: u8| sources.keys().filter(|(l, _)| *l == label).count().max(1) as f32;
    let share: BTreeMap<(u8, String), f32> =
        sources.iter().map(|((l, s), &n)| ((*l, s.clone()), 1.0 / per_class(*l) / n as f32)).collect();
    let train_texts = texts.iter().filter(|t| t.split == "train").count() as f32;
    for t in texts.iter_mut().filter(|t| t.split == "train") {
        let w = share[&(t.label, t.source.clone())] * train_texts / 2.0 / t.windows.len() as f32;
        for win in &mut t.windows {
            win.weight = w;
        }
    }
    for ((label, source), n) in &sources {
        eprintln!("train: label {label} {source}: {n} texts");
    }

    let mut order: Vec<(usize, usize)> = texts
        .iter()
        .enumerate()
        .filter(|(_, t)| t.split == "train")
        .flat_map(|(i, t)| (0..t.windows.len()).map(move |j| (i, j)))
        .collect();
    let size = 1usize << BITS;
    let mut w = vec![0f32; size];
    let mut g2 = vec![1e-6f32; size];
    let (mut bias, mut bias_g2) = (0f32, 1e-6f32);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut loss = 0f64;
        for &(ti, wi) in &order {
            let win = &texts[ti].windows[wi];
            let z = bias + win.features.iter().map(|&(i, c)| w[i as usize] * c).sum::<f32>() * win.norm;
            let p = model::sigmoid(z);
            loss -= win.weight as f64 * if win.label > 0.5 { (p.max(1e-7) as f64).ln() } else { ((1.0 - p).max(1e-7) as f64).ln() };
            let g = (p - win.label) * win.weight;
            for &(i, c) in &win.features {
                let i = i as usize;
                let gi = g * c * win.norm + L2 * w[i];
                g2[i] += gi * gi;
                w[i] -= LEARNING_RATE * gi / g2[i].sqrt();
            }
            bias_g2 += g * g;
            bias -= LEARNING_RATE * g / bias_g2.sqrt();
        }
        eprintln!("epoch {epoch}: weighted loss {:.4}", loss / order.len() as f64);
    }

    // The threshold from held-back benign texts, scored as the scanner
    // scores them (quantised weights, highest window).
    let provisional = Model::quantise(BITS, bias, &w, 0.5);
    let score = |m: &Model, t: &Text| t.windows.iter().map(|win| quantised_score(m, win)).fold(0f32, f32::max);
    // Per benign source, the score above which its allowed share of false
    // positives lies; the threshold is the strictest of them, so no kind of
    // benign text (chit-chat, instructions, documents) is flagged more often.
    let mut threshold = 0.05f32;
    let benign_sources: std::collections::BTreeSet<&str> =
        texts.iter().filter(|t| t.split == "valid" && t.label == 0).map(|t| t.source.as_str()).collect();
    for source in benign_sources {
        let mut scores: Vec<f32> =
            texts.iter().filter(|t| t.split == "valid" && t.label == 0 && t.source == source).map(|t| score(&provisional, t)).collect();
        scores.sort_by(|a, b| b.total_cmp(a));
        let allowed = (scores.len() as f64 * FALSE_POSITIVE_TARGET).floor() as usize;
        if let Some(s) = scores.get(allowed) {
            threshold = threshold.max((s + 1e-4).min(0.99));
        }
    }
    let m = Model::quantise(BITS, bias, &w, threshold);

    // Report on the held-back split, per source, through the shipped model.
    let mut by_source: BTreeMap<(u8, &str), (usize, usize)> = BTreeMap::new();
    for t in texts.iter().filter(|t| t.split == "valid") {
        let flagged = score(&m, t) >= threshold;
        let e = by_source.entry((t.label, t.source.as_str())).or_default();
        e.0 += 1;
        e.1 += flagged as usize;
    }
    eprintln!("threshold {threshold:.4} (at most {:.0}% of each source's held-back benign texts flagged)", FALSE_POSITIVE_TARGET * 100.0);
    for ((label, source), (n, flagged)) in &by_source {
        let what = if *label == 1 { "recall" } else { "false positives" };
        eprintln!("valid: {source}: {n} texts, {what} {:.3}", *flagged as f64 / *n as f64);
    }
    let mut out = std::fs::File::create(output).unwrap_or_else(|e| panic!("{output}: {e}"));
    out.write_all(&m.to_bytes()).expect("writing the model");

    // Fixed examples with the scores this trainer gives them (its own
    // features and the quantised weights): the first two held-back texts of
    // every source. The extension's tests score them through the shipped
    // model and must agree.
    if let Some(fixed) = fixed {
        let mut taken: BTreeMap<(u8, &str), usize> = BTreeMap::new();
        let mut lines = String::new();
        for (t, text) in texts.iter().zip(&raw).filter(|(t, _)| t.split == "valid") {
            let n = taken.entry((t.label, t.source.as_str())).or_default();
            if *n >= 2 {
                continue;
            }
            *n += 1;
            let line = serde_json::json!({"text": text, "label": t.label, "source": t.source, "score": score(&m, t)});
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        std::fs::write(fixed, lines).unwrap_or_else(|e| panic!("{fixed}: {e}"));
    }
}

/// A window's score through the shipped (quantised) weights.
fn quantised_score(m: &Model, win: &Window) -> f32 {
    let sum: f32 = win.features.iter().map(|&(i, c)| m.weight(i) * c).sum();
    model::sigmoid(m.bias() + sum * win.norm)
}
