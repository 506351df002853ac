//! Trains the learned injection detector (`pgprompt::guard::model`).
//!
//! `train_injection <examples.jsonl> <out.bin> [<fixed_scores.jsonl>]`: each line of the input is
//! `{"text": ..., "label": 0 or 1, "source": ..., "split": "train" or
//! "valid"}`, as `extension/guard_model/prepare.py` writes it from the
//! pinned public sources. Texts are folded as the scanner folds them and
//! cut into the scanner's windows; every window of an attack is a positive
//! (the sources' attacks are instructions throughout), every window of a
//! benign text a negative. Besides, every attack is planted once inside a
//! benign document of another source (`plant`): the windows holding it are
//! positives too, so the detector learns an instruction among unrelated
//! prose (indirect injection) rather than its source's style.
//!
//! Logistic regression by AdaGrad over shuffled windows, in a fixed order
//! from a fixed seed and single-threaded, so the same input gives the same
//! bytes. Each class weighs as much as the other in total, and within a
//! class each source as much as the others, so no single large collection
//! decides what an attack looks like. The decision threshold written into
//! the model is the lowest score that keeps false positives on held-back
//! benign texts (split "valid") of every source at or below
//! `FALSE_POSITIVE_TARGET` (the sources of fewer than 100 such texts
//! together: one text of them).
//!
//! `train_injection --leave-one-out <examples.jsonl>` writes no model: for
//! each source, it trains without it and reports how the detector does on
//! that unseen source (see `leave_one_out`).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use pgprompt::guard::model::{self, Model};
use pgprompt::guard::normalize;

/// 2^19 weights: as accurate left-out as 2^20 (`make model-unseen`), and
/// half the table to keep in cache while scanning.
const BITS: u32 = 19;
/// Passes over the training windows: with `L2`, 8 caught 0.480 of a
/// left-out source's attacks on average and flagged 0.153 of a left-out
/// benign source, 16 0.497 and 0.160 (writing requests 0.375 and 0.342),
/// 32 0.510 and 0.170, 4 0.449 and 0.150 (`make model-unseen`).
const EPOCHS: usize = 16;
const LEARNING_RATE: f32 = 0.4;
/// The pull of each weight toward zero as it is updated. Chosen by `make
/// model-unseen` (attacks of a left-out source caught, on average, against
/// left-out benign sources flagged): 1e-6 0.419 and 0.137, 1e-5 0.442 and
/// 0.138, 1e-4 0.480 and 0.153, 3e-4 0.495 and 0.166, 1e-3 0.470 and
/// 0.149 (8 epochs each). Nearly unregularised, the model learnt each
/// source's own words (training loss near zero) more than what an attack
/// is.
const L2: f32 = 1e-4;
const FALSE_POSITIVE_TARGET: f64 = 0.01;

struct Window {
    /// Distinct feature indices (present or not: counts do not matter).
    features: Vec<u32>,
    /// `model::norm` of the number of features, as `Model::scores` scales.
    norm: f32,
    label: f32,
    weight: f32,
}

struct Text {
    label: u8,
    source: String,
    split: String,
    /// A machine translation of one of the source's texts (prepare.py's
    /// `translated`): trained on, never scored as the source's own.
    translated: bool,
    /// The text as the scanner folds it (what attacks are planted from and into).
    folded: String,
    windows: Vec<Window>,
}

/// The windows of a folded text: each one's byte range in it, its distinct
/// features (sorted by `Reading::window_features`, each counted once as
/// `Model::scores` counts them) and its `model::norm`.
fn featurize(folded: &str) -> Vec<((usize, usize), Vec<u32>, f32)> {
    let reading = model::Reading::new(folded);
    reading
        .windows()
        .into_iter()
        .zip(reading.window_features(BITS))
        .map(|(range, distinct)| {
            let norm = model::norm(distinct.len());
            (reading.bytes(range), distinct, norm)
        })
        .collect()
}

/// Spreads a run's seed over every bit (0 stays 0: the shipped model's).
fn mix(seed: u64) -> u64 {
    seed.wrapping_mul(0xd1b5_4a32_d192_ed03)
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
    match &args[..] {
        [_, flag, input] if flag == "--leave-one-out" => leave_one_out(&mut load(input).0, 0),
        [_, flag, input, seed] if flag == "--leave-one-out" => {
            leave_one_out(&mut load(input).0, seed.parse().expect("a seed: a whole number"))
        }
        [_, input, output] => run(input, output, None),
        [_, input, output, fixed] => run(input, output, Some(fixed)),
        _ => {
            eprintln!("usage: train_injection <examples.jsonl> <out.bin> [<fixed_scores.jsonl>]");
            eprintln!("       train_injection --leave-one-out <examples.jsonl> [<seed>]");
            std::process::exit(2);
        }
    }
}

/// The examples, featurized, and their texts.
fn load(input: &str) -> (Vec<Text>, Vec<String>) {
    let file = std::fs::File::open(input).unwrap_or_else(|e| panic!("{input}: {e}"));
    let mut texts = Vec::new();
    let mut raw: Vec<String> = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.expect("reading the examples");
        let v: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
        let text = v["text"].as_str().expect("text");
        raw.push(text.to_string());
        let label = v["label"].as_u64().expect("label") as u8;
        let folded = normalize::fold(text).text;
        let windows = featurize(&folded)
            .into_iter()
            .map(|(_, features, norm)| Window { features, norm, label: label as f32, weight: 0.0 })
            .collect();
        texts.push(Text {
            label,
            source: v["source"].as_str().expect("source").to_string(),
            split: v["split"].as_str().expect("split").to_string(),
            translated: v.get("translated").is_some(),
            folded,
            windows,
        });
    }
    (texts, raw)
}

/// Trains on the texts of split "train" that `keep` accepts; the bias and
/// the weights. `verbose`: reports the sources and each epoch's loss.
/// `seed` 0 is the shipped model's order and planting; others (leave-one-out
/// runs only) give the same data another order and other documents to
/// plant in, to tell a change's effect from a run's chance.
fn fit(texts: &mut Vec<Text>, keep: impl Fn(&Text) -> bool, verbose: bool, seed: u64) -> (f32, Vec<f32>) {
    let read = texts.len();
    let planted = {
        let of = |label: u8| -> Vec<&Text> { texts.iter().filter(|t| t.split == "train" && t.label == label && keep(t)).collect() };
        plant(&of(1), &of(0), PLANT_SEED ^ mix(seed))
    };
    texts.extend(planted);
    let training = |t: &Text| t.split == "train" && (t.source == PLANTED || keep(t));
    // Weights: each class half of the total, each source an equal share of
    // its class, each text an equal share of its source (spread over its
    // windows).
    let mut sources: BTreeMap<(u8, String), usize> = BTreeMap::new();
    for t in texts.iter().filter(|t| training(t)) {
        *sources.entry((t.label, t.source.clone())).or_default() += 1;
    }
    let per_class = |label: u8| sources.keys().filter(|(l, _)| *l == label).count().max(1) as f32;
    let share: BTreeMap<(u8, String), f32> =
        sources.iter().map(|((l, s), &n)| ((*l, s.clone()), 1.0 / per_class(*l) / n as f32)).collect();
    let train_texts = texts.iter().filter(|t| training(t)).count() as f32;
    for t in texts.iter_mut().filter(|t| training(t)) {
        let w = share[&(t.label, t.source.clone())] * train_texts / 2.0 / t.windows.len() as f32;
        for win in &mut t.windows {
            win.weight = w;
        }
    }
    if verbose {
        for ((label, source), n) in &sources {
            eprintln!("train: label {label} {source}: {n} texts");
        }
    }

    let mut order: Vec<(usize, usize)> = texts
        .iter()
        .enumerate()
        .filter(|(_, t)| training(t))
        .flat_map(|(i, t)| (0..t.windows.len()).map(move |j| (i, j)))
        .collect();
    let size = 1usize << BITS;
    let mut w = vec![0f32; size];
    let mut g2 = vec![1e-6f32; size];
    let (mut bias, mut bias_g2) = (0f32, 1e-6f32);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ mix(seed));
    for epoch in 0..EPOCHS {
        for i in (1..order.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        let mut loss = 0f64;
        for &(ti, wi) in &order {
            let win = &texts[ti].windows[wi];
            let z = bias + win.features.iter().map(|&i| w[i as usize]).sum::<f32>() * win.norm;
            let p = model::sigmoid(z);
            loss -= win.weight as f64 * if win.label > 0.5 { (p.max(1e-7) as f64).ln() } else { ((1.0 - p).max(1e-7) as f64).ln() };
            let g = (p - win.label) * win.weight;
            for &i in &win.features {
                let i = i as usize;
                let gi = g * win.norm + L2 * w[i];
                g2[i] += gi * gi;
                w[i] -= LEARNING_RATE * gi / g2[i].sqrt();
            }
            bias_g2 += g * g;
            bias -= LEARNING_RATE * g / bias_g2.sqrt();
        }
        if verbose {
            eprintln!("epoch {epoch}: weighted loss {:.4}", loss / order.len() as f64);
        }
    }
    texts.truncate(read);
    (bias, w)
}

/// The seed of the planting in training (`fit`), and of the planting
/// `leave_one_out` scores.
const PLANT_SEED: u64 = 0x5eed_0f_d0c5;
const PLANT_SEED_UNSEEN: u64 = 0x0dd_5eed_0f_d0c5;
/// The source of the attacks `plant` makes (no source of the examples is
/// so named: prepare.py names them after their packages).
const PLANTED: &str = "planted";
/// Benign texts at least this long (bytes, folded) are documents attacks
/// are planted in.
const HOST_MIN: usize = 400;

/// Attacks planted in documents, as an injection reaches a model inside
/// retrieved text, an e-mail or a tool's result: each attack put between
/// two paragraphs or sentences of a benign document (one of `hosts` long
/// enough, chosen by a fixed sequence from `seed`). Only the windows that
/// hold most of the attack are examples, positives; the document's other
/// windows are benign examples already. What it teaches: an instruction
/// among unrelated prose is an attack, and neither the attack's source's
/// style nor the document's decides. Texts of source `PLANTED`.
fn plant(attacks: &[&Text], hosts: &[&Text], seed: u64) -> Vec<Text> {
    let hosts: Vec<&&Text> = hosts.iter().filter(|h| h.folded.len() >= HOST_MIN).collect();
    if hosts.is_empty() {
        return Vec::new();
    }
    let mut rng = Rng(seed);
    let mut out = Vec::with_capacity(attacks.len());
    for a in attacks.iter().filter(|a| !a.folded.trim().is_empty()) {
        let host = &hosts[(rng.next() % hosts.len() as u64) as usize].folded;
        // After the next line or sentence end from a random place (ASCII,
        // so a character boundary), else at the end.
        let from = (rng.next() % host.len() as u64) as usize;
        let cut = host.as_bytes()[from..]
            .windows(2)
            .position(|w| w[0] == b'\n' || (w[0] == b'.' && w[1] == b' '))
            .map_or(host.len(), |p| from + p + 1);
        let text = format!("{}\n\n{}\n\n{}", &host[..cut], a.folded.trim(), &host[cut..]);
        let span = (cut + 2, cut + 2 + a.folded.trim().len());
        let windows = featurize(&text)
            .into_iter()
            .filter(|&((from, to), _, _)| {
                let overlap = to.min(span.1).saturating_sub(from.max(span.0));
                2 * overlap >= (span.1 - span.0).min(to - from)
            })
            .map(|(_, features, norm)| Window { features, norm, label: 1.0, weight: 0.0 })
            .collect();
        out.push(Text { label: 1, source: PLANTED.into(), split: "train".into(), translated: false, folded: text, windows });
    }
    out
}

/// A text's score as the scanner gives it: its highest window's, through
/// the quantised weights.
fn score(m: &Model, t: &Text) -> f32 {
    t.windows.iter().map(|win| quantised_score(m, win)).fold(0f32, f32::max)
}

/// Held-back benign texts a source needs to be calibrated on its own.
const OWN_CALIBRATION: usize = 100;

/// The threshold from the held-back benign texts `keep` accepts, scored
/// through `m`: per benign source, the score above which its allowed share
/// of false positives lies; the strictest of them, so no kind of benign
/// text (chit-chat, instructions, documents) is flagged more often. The
/// sources with fewer than `OWN_CALIBRATION` held-back texts count as one
/// (a 1% share of a dozen texts is none: the single most attack-like text
/// of any small source would set the threshold alone), which may have one
/// text flagged however small it is.
fn threshold(texts: &[Text], m: &Model, keep: impl Fn(&Text) -> bool) -> f32 {
    let held_back = |t: &Text| t.split == "valid" && t.label == 0 && keep(t);
    let mut per_source: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
    for t in texts.iter().filter(|t| held_back(t)) {
        per_source.entry(t.source.as_str()).or_default().push(score(m, t));
    }
    let mut groups: Vec<Vec<f32>> = Vec::new();
    let mut small: Vec<f32> = Vec::new();
    for (_, scores) in per_source {
        if scores.len() >= OWN_CALIBRATION {
            groups.push(scores);
        } else {
            small.extend(scores);
        }
    }
    let mut threshold = 0.05f32;
    for (mut scores, at_least_one) in groups.into_iter().map(|g| (g, false)).chain([(small, true)]) {
        scores.sort_by(|a, b| b.total_cmp(a));
        let mut allowed = (scores.len() as f64 * FALSE_POSITIVE_TARGET).floor() as usize;
        if at_least_one {
            allowed = allowed.max(1);
        }
        if let Some(s) = scores.get(allowed) {
            threshold = threshold.max((s + 1e-4).min(0.99));
        }
    }
    threshold
}

/// Trains, writes the model to `output` and, when asked, the fixed
/// examples to `fixed`.
fn run(input: &str, output: &str, fixed: Option<&String>) {
    let (mut texts, raw) = load(input);
    let (bias, w) = fit(&mut texts, |_| true, true, 0);
    let provisional = Model::quantise(BITS, bias, &w, 0.5);
    let threshold = threshold(&texts, &provisional, |_| true);
    let m = Model::quantise(BITS, bias, &w, threshold);

    // Report on the held-back split, per source, through the shipped model.
    let mut by_source: BTreeMap<(u8, &str), (usize, usize)> = BTreeMap::new();
    for t in texts.iter().filter(|t| t.split == "valid") {
        let flagged = score(&m, t) >= threshold;
        let e = by_source.entry((t.label, t.source.as_str())).or_default();
        e.0 += 1;
        e.1 += flagged as usize;
    }
    eprintln!("threshold {threshold:.4} (at most {:.0}% of each source's held-back benign texts flagged; one of the small sources')", FALSE_POSITIVE_TARGET * 100.0);
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

/// How the detector does on a kind of text it never saw: for each source,
/// a model trained and calibrated without it (its texts of both splits
/// left out, translations too), then every text of that source scored
/// (its own, not the translations). For a source of
/// attacks, the share caught; for a benign one, the share flagged. What
/// the held-back split of a source that was trained on cannot tell: the
/// figures to choose training data and features by, without looking at
/// the collections reserved for evaluation. Prints a Markdown table.
fn leave_one_out(texts: &mut Vec<Text>, seed: u64) {
    let sources: std::collections::BTreeSet<(u8, String)> = texts.iter().map(|t| (t.label, t.source.clone())).collect();
    println!("| source left out | kind | texts | flagged | flagged inside documents | threshold |");
    println!("|---|---|---|---|---|---|");
    let (mut recall, mut false_positives, mut in_documents) = (Vec::new(), Vec::new(), Vec::new());
    for (label, source) in &sources {
        let seen = |t: &Text| !(t.label == *label && &t.source == source);
        let (bias, w) = fit(texts, seen, false, seed);
        let threshold = threshold(texts, &Model::quantise(BITS, bias, &w, 0.5), seen);
        let m = Model::quantise(BITS, bias, &w, threshold);
        let own = |t: &&Text| !seen(t) && !t.translated;
        let scored: Vec<bool> = texts.iter().filter(own).map(|t| score(&m, t) >= threshold).collect();
        let share = scored.iter().filter(|&&f| f).count() as f64 / scored.len().max(1) as f64;
        let kind = if *label == 1 { "attacks" } else { "benign" };
        // The same attacks inside held-back documents of the other sources
        // (scored on the windows holding them, so the documents' own
        // false positives do not count).
        let in_documents = if *label == 1 {
            let attacks: Vec<&Text> = texts.iter().filter(own).collect();
            let hosts: Vec<&Text> = texts.iter().filter(|t| t.split == "valid" && t.label == 0 && seen(t)).collect();
            let planted = plant(&attacks, &hosts, PLANT_SEED_UNSEEN ^ mix(seed));
            let caught = planted.iter().filter(|t| score(&m, t) >= threshold).count();
            in_documents.push(caught as f64 / planted.len().max(1) as f64);
            format!("{:.3}", caught as f64 / planted.len().max(1) as f64)
        } else {
            String::new()
        };
        println!("| {source} | {kind} | {} | {share:.3} | {in_documents} | {threshold:.4} |", scored.len());
        if *label == 1 { &mut recall } else { &mut false_positives }.push(share);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    println!("| mean over attack sources (recall) | | | {:.3} | {:.3} | |", mean(&recall), mean(&in_documents));
    println!("| mean over benign sources (false positives) | | | {:.3} | | |", mean(&false_positives));
}

/// A window's score through the shipped (quantised) weights.
fn quantised_score(m: &Model, win: &Window) -> f32 {
    let sum: f32 = win.features.iter().map(|&i| m.weight(i)).sum();
    model::sigmoid(m.bias() + sum * win.norm)
}
