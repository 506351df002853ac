//! What an LLM call costs, exactly.
//!
//! Prices are USD per million tokens, kept as exact decimals (never floating
//! point, which cannot even hold $0.075). A call's cost is
//!
//! ```text
//! ((input - cached) * input_price + cached * cached_price + output * output_price) / 1e6
//! ```
//!
//! where cached input tokens are part of the input tokens (as every provider
//! reports them) and are billed at the cached price (the input price when the
//! model has none). When the input is longer than a model's long-context
//! threshold, the long-context prices apply to the whole call, as Google
//! bills gemini-2.5-pro above 200k tokens and Anthropic bills Sonnet above
//! 200k.
//!
//! A price book holds every price row; `PriceBook::find` picks the row for a
//! model name at an instant: the newest row in effect then, so a price change
//! never rewrites the cost of earlier calls.

use std::collections::HashMap;
use std::fmt;

use regex::{Regex, RegexSet, RegexSetBuilder};

use crate::error::{Error, ErrorKind, Result};

/// Decimal places of prices: exact for every published price (LiteLLM's
/// per-token prices have up to 17 significant digits after scaling).
pub const MAX_PRICE_SCALE: u32 = 20;
/// Cap on compiled match patterns, like the guardrails' cap.
const PATTERN_LIMIT: usize = 1 << 20;

/// An exact decimal: `units / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dec {
    units: i128,
    scale: u32,
}

impl Dec {
    pub const ZERO: Dec = Dec { units: 0, scale: 0 };

    /// Parses PostgreSQL's numeric output (`123`, `-0.075`, `1.250`).
    pub fn parse(s: &str) -> Result<Dec> {
        let bad = || Error::invalid(format!("\"{s}\" is not a decimal number"));
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty() || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > MAX_PRICE_SCALE as usize {
            return Err(Error::invalid(format!("\"{s}\" has more than {MAX_PRICE_SCALE} decimal places")));
        }
        let mut units: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(i128::from(b - b'0')))
                .ok_or_else(|| Error::new(ErrorKind::OutOfRange, format!("\"{s}\" is too large")))?;
        }
        Ok(Dec { units: if negative { -units } else { units }, scale: fraction.len() as u32 })
    }

    pub fn is_negative(&self) -> bool {
        self.units < 0
    }

    /// The decimal as PostgreSQL's numeric keeps it, as numeric_in would
    /// make it from `to_string()`: sign, weight of the first base-10000
    /// digit, display scale, and the digits without leading or trailing
    /// zero digits. `None` when it does not fit the arithmetic here.
    pub fn base10000(self) -> Option<(bool, i32, u32, Vec<i16>)> {
        let (mut units, mut scale) = (self.units, self.scale);
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        // |value| * 10000^groups is a whole number.
        let groups = scale.div_ceil(4);
        let mut n = units.unsigned_abs().checked_mul(10u128.pow(groups * 4 - scale))?;
        let mut digits = Vec::new();
        while n > 0 {
            digits.push((n % 10_000) as i16);
            n /= 10_000;
        }
        if digits.is_empty() {
            return Some((false, 0, scale, digits));
        }
        let weight = digits.len() as i32 - 1 - groups as i32;
        digits.reverse();
        while digits.last() == Some(&0) {
            digits.pop();
        }
        Some((units < 0, weight, scale, digits))
    }

    /// `self * n`, exactly.
    fn times(self, n: i64) -> Option<Dec> {
        Some(Dec { units: self.units.checked_mul(i128::from(n))?, scale: self.scale })
    }

    /// `self + other`, exactly.
    fn plus(self, other: Dec) -> Option<Dec> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other.units.checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(Dec { units: a.checked_add(b)?, scale })
    }

    /// `self / 10^places`, exactly.
    fn shifted(self, places: u32) -> Dec {
        Dec { units: self.units, scale: self.scale + places }
    }
}

impl PartialOrd for Dec {
    /// Exact when both fit one scale (every price and cost does).
    fn partial_cmp(&self, other: &Dec) -> Option<std::cmp::Ordering> {
        let scale = self.scale.max(other.scale);
        let a = self.units.checked_mul(10i128.checked_pow(scale - self.scale)?)?;
        let b = other.units.checked_mul(10i128.checked_pow(scale - other.scale)?)?;
        Some(a.cmp(&b))
    }
}

impl fmt::Display for Dec {
    /// Without trailing zeros: `0.375`, `12`, `-0.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (mut units, mut scale) = (self.units, self.scale);
        while scale > 0 && units % 10 == 0 {
            units /= 10;
            scale -= 1;
        }
        let digits = units.unsigned_abs().to_string();
        let sign = if units < 0 { "-" } else { "" };
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let scale = scale as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// Prices per million tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rates {
    pub input: Dec,
    pub output: Dec,
    /// Cached input tokens; `None`: billed as input.
    pub cached: Option<Dec>,
}

/// One row of prompt_model_prices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub id: i64,
    /// Lower-case model name, possibly with a provider prefix (`vertex_ai/gemini-2.5-pro`).
    pub model: String,
    /// Regex the model names it prices must match, instead of the default
    /// rule (the name, then the name with version suffixes removed).
    pub pattern: Option<String>,
    /// PostgreSQL timestamp (microseconds since 2000-01-01 UTC).
    pub effective_from: i64,
    pub rates: Rates,
    /// Input token count above which `long` applies to the whole call.
    pub long: Option<(i64, Rates)>,
}

/// Tokens of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub input: i64,
    pub output: i64,
    /// Part of `input` served from the provider's cache.
    pub cached: i64,
}

impl Usage {
    /// Checks the counts: none negative, cached within input.
    pub fn new(input: i64, output: i64, cached: i64) -> Result<Usage> {
        for (name, n) in [("input_tokens", input), ("output_tokens", output), ("cached_input_tokens", cached)] {
            if n < 0 {
                return Err(Error::invalid(format!("{name} must not be negative (got {n})")));
            }
        }
        if cached > input {
            return Err(Error::invalid(format!(
                "cached_input_tokens ({cached}) cannot exceed input_tokens ({input}): cached tokens are part of the input"
            )));
        }
        Ok(Usage { input, output, cached })
    }
}

/// The exact cost in USD of `usage` at `price`.
pub fn cost(price: &Price, usage: Usage) -> Result<Dec> {
    let rates = match &price.long {
        Some((threshold, long)) if usage.input > *threshold => long,
        _ => &price.rates,
    };
    let cached_rate = rates.cached.unwrap_or(rates.input);
    let total = rates
        .input
        .times(usage.input - usage.cached)
        .zip(cached_rate.times(usage.cached))
        .and_then(|(a, b)| a.plus(b))
        .zip(rates.output.times(usage.output))
        .and_then(|(a, b)| a.plus(b));
    total.map(|t| t.shifted(6)).ok_or_else(|| {
        Error::new(ErrorKind::OutOfRange, format!("the cost of {usage:?} at the prices of {} is too large to compute", price.model))
    })
}

/// A model name as prices are looked up: trimmed and lower case.
pub fn normalize(model: &str) -> String {
    model.trim().to_lowercase()
}

/// `vertex_ai/gemini-2.5-pro` → `gemini-2.5-pro`; `models/gemini-2.5-pro` too.
fn without_provider(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(_, model)| model).filter(|m| !m.is_empty())
}

/// The name without its last version suffix: a release number (`-001`,
/// `-0125`), a date (`-2024-08-06`, `-20241022`, `@20240620`, `-preview-05-20`,
/// `-09-2025`), `-latest`, `-preview`, `-exp`, or a Bedrock revision (`-v1:0`).
fn without_version(name: &str) -> Option<&str> {
    thread_local! {
        static SUFFIX: Regex = Regex::new(
            r"[-@](?:\d{3,4}|\d{8}|\d{4}-\d{2}-\d{2}|\d{2}-\d{2}|\d{2}-\d{4}|latest|preview|exp|v\d{1,2}(?::\d{1,2})?)$",
        )
        .expect("the suffix pattern compiles");
    }
    SUFFIX.with(|re| re.find(name).map(|m| &name[..m.start()])).filter(|rest| !rest.is_empty())
}

/// Checks a match pattern: it must compile, within the size cap.
pub fn check_pattern(pattern: &str) -> Result<()> {
    compile(&[pattern]).map(|_| ())
}

fn compile(patterns: &[&str]) -> Result<RegexSet> {
    RegexSetBuilder::new(patterns).size_limit(PATTERN_LIMIT).dfa_size_limit(PATTERN_LIMIT).build().map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => Error::new(ErrorKind::LimitExceeded, format!("match pattern compiles to more than {PATTERN_LIMIT} bytes")),
        e => Error::invalid(format!("match pattern does not compile: {e}")),
    })
}

/// Every price, indexed for lookups by model name.
#[derive(Debug)]
pub struct PriceBook {
    prices: Vec<Price>,
    /// Row indexes by model name.
    by_model: HashMap<String, Vec<usize>>,
    /// Rows with a match pattern, and the set of their patterns.
    patterned: Vec<usize>,
    patterns: Option<RegexSet>,
}

impl PriceBook {
    pub fn new(prices: Vec<Price>) -> Result<PriceBook> {
        let mut by_model: HashMap<String, Vec<usize>> = HashMap::new();
        let mut patterned = Vec::new();
        for (i, p) in prices.iter().enumerate() {
            by_model.entry(p.model.clone()).or_default().push(i);
            if p.pattern.is_some() {
                patterned.push(i);
            }
        }
        let patterns = if patterned.is_empty() {
            None
        } else {
            let list: Vec<&str> = patterned.iter().map(|&i| prices[i].pattern.as_deref().unwrap_or_default()).collect();
            Some(compile(&list)?)
        };
        Ok(PriceBook { prices, by_model, patterned, patterns })
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }

    /// The price of `model` at `at` (PostgreSQL timestamp), or `None`.
    ///
    /// The name is lower-cased; it is tried as given, then without its
    /// provider prefix. For each: a row for exactly that model wins;
    /// otherwise, among rows whose match pattern matches the name and rows
    /// whose model is the name without version suffixes (rows without a
    /// pattern), the longest, i.e. most specific, model name wins. Of that
    /// model's rows, the newest with `effective_from <= at` is used.
    pub fn find(&self, model: &str, at: i64) -> Option<&Price> {
        let name = normalize(model);
        let mut names = vec![name.as_str()];
        names.extend(without_provider(&name));
        names.into_iter().find_map(|n| self.find_name(n, at)).map(|i| &self.prices[i])
    }

    fn find_name(&self, name: &str, at: i64) -> Option<usize> {
        if let Some(i) = self.by_model.get(name).and_then(|rows| self.newest(rows.iter().copied(), at)) {
            return Some(i);
        }
        // (model length, has a pattern, effective_from): the greatest wins.
        let mut best: Option<((usize, bool, i64), usize)> = None;
        let mut consider = |i: usize| {
            let p = &self.prices[i];
            let key = (p.model.len(), p.pattern.is_some(), p.effective_from);
            if p.effective_from <= at && best.is_none_or(|(b, _)| key > b) {
                best = Some((key, i));
            }
        };
        if let Some(set) = &self.patterns {
            for k in set.matches(name).iter() {
                consider(self.patterned[k]);
            }
        }
        let mut stem = name;
        while let Some(shorter) = without_version(stem) {
            stem = shorter;
            for &i in self.by_model.get(stem).into_iter().flatten() {
                if self.prices[i].pattern.is_none() {
                    consider(i);
                }
            }
        }
        best.map(|(_, i)| i)
    }

    /// The newest of `rows` in effect at `at`.
    fn newest(&self, rows: impl Iterator<Item = usize>, at: i64) -> Option<usize> {
        rows.filter(|&i| self.prices[i].effective_from <= at).max_by_key(|&i| self.prices[i].effective_from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading the parts back gives the decimal as it prints.
    #[test]
    fn base10000_digits_read_back_as_printed() {
        for text in ["0", "0.375", "12", "-0.5", "12345.6", "0.00000001", "10000", "100000000.0001", "0.000012345", "-7.50"] {
            let d = Dec::parse(text).unwrap();
            let (negative, weight, scale, digits) = d.base10000().unwrap();
            assert!(digits.first() != Some(&0) && digits.last() != Some(&0), "{text}: {digits:?}");
            // The digits as a whole number of 10^-(4 * places): the value.
            let places = (scale.div_ceil(4) as i32).max(digits.len() as i32 - 1 - weight);
            let units: i128 = digits.iter().enumerate().map(|(k, &g)| i128::from(g) * 10i128.pow((weight - k as i32 + places) as u32 * 4)).sum();
            let read = Dec { units: if negative { -units } else { units }, scale: places as u32 * 4 };
            assert_eq!(read.to_string(), d.to_string(), "{text}");
            let printed_scale = d.to_string().split_once('.').map_or(0, |(_, f)| f.len());
            assert_eq!(scale as usize, printed_scale, "{text}: display scale");
        }
    }

    fn dec(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    fn rates(input: &str, output: &str, cached: Option<&str>) -> Rates {
        Rates { input: dec(input), output: dec(output), cached: cached.map(dec) }
    }

    fn price(id: i64, model: &str, from: i64, input: &str, output: &str) -> Price {
        Price { id, model: model.into(), pattern: None, effective_from: from, rates: rates(input, output, None), long: None }
    }

    fn usage(i: i64, o: i64, c: i64) -> Usage {
        Usage::new(i, o, c).unwrap()
    }

    #[test]
    fn decimals_parse_and_print_exactly() {
        for (s, out) in [("0.075", "0.075"), ("1.250", "1.25"), ("12", "12"), ("-0.5", "-0.5"), ("0", "0"), ("0.000", "0"), (".5", "0.5"), ("007.10", "7.1")] {
            assert_eq!(dec(s).to_string(), out, "{s}");
        }
        for bad in ["", "-", ".", "1e-6", "abc", "1.2.3", "NaN", "Infinity", " 1"] {
            assert!(Dec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(dec("0.1").shifted(6).to_string(), "0.0000001");
        assert!(Dec::parse(&format!("0.{}1", "0".repeat(20))).is_err(), "over the scale cap");
        assert_eq!(Dec::parse(&"9".repeat(50)).unwrap_err().kind, ErrorKind::OutOfRange);
    }

    #[test]
    fn the_seeds_check_is_exact() {
        // 1M input and 1M output tokens at $0.075/M and $0.30/M: exactly 0.375.
        let p = price(1, "seed-flash", 0, "0.075", "0.30");
        assert_eq!(cost(&p, usage(1_000_000, 1_000_000, 0)).unwrap().to_string(), "0.375");
        // Sums that floating point gets wrong stay exact.
        let p = price(1, "m", 0, "0.1", "0.2");
        assert_eq!(cost(&p, usage(1, 2, 0)).unwrap().to_string(), "0.0000005");
        assert_eq!(cost(&p, usage(0, 0, 0)).unwrap().to_string(), "0");
    }

    #[test]
    fn cached_tokens_are_part_of_the_input() {
        let mut p = price(1, "gpt-4o", 0, "2.50", "10");
        p.rates.cached = Some(dec("1.25"));
        // 1000 input of which 400 cached: 600 * 2.5 + 400 * 1.25 + 100 * 10 = 3000 per M.
        assert_eq!(cost(&p, usage(1000, 100, 400)).unwrap().to_string(), "0.003");
        // Without a cached price, cached tokens cost as input.
        p.rates.cached = None;
        assert_eq!(cost(&p, usage(1000, 100, 400)).unwrap().to_string(), "0.0035");
    }

    #[test]
    fn long_context_prices_apply_to_the_whole_call_above_the_threshold() {
        let mut p = price(1, "gemini-2.5-pro", 0, "1.25", "10");
        p.long = Some((200_000, rates("2.50", "15", Some("0.625"))));
        assert_eq!(cost(&p, usage(200_000, 1_000, 0)).unwrap().to_string(), "0.26");
        assert_eq!(cost(&p, usage(200_001, 1_000, 0)).unwrap().to_string(), "0.5150025");
        assert_eq!(cost(&p, usage(300_000, 0, 100_000)).unwrap().to_string(), "0.5625");
    }

    #[test]
    fn usage_is_checked() {
        assert_eq!(Usage::new(-1, 0, 0).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(Usage::new(0, -1, 0).unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(Usage::new(0, 0, -1).unwrap_err().kind, ErrorKind::InvalidArgument);
        let e = Usage::new(10, 0, 11).unwrap_err();
        assert!(e.message.contains("cannot exceed"), "{}", e.message);
        assert!(Usage::new(10, 0, 10).is_ok());
    }

    #[test]
    fn absurd_costs_fail_instead_of_overflowing() {
        let p = price(1, "m", 0, &format!("1.{}", "1".repeat(20)), "1");
        assert_eq!(cost(&p, usage(i64::MAX, i64::MAX, 0)).unwrap_err().kind, ErrorKind::OutOfRange);
    }

    #[test]
    fn cost_never_decreases_when_tokens_grow() {
        let mut p = price(1, "m", 0, "1.25", "10");
        p.rates.cached = Some(dec("0.3125"));
        p.long = Some((1000, rates("2.5", "15", Some("0.625"))));
        let mut last = (0, 0);
        for input in (0..3000).step_by(97) {
            for output in [0, 1, 500] {
                let c = cost(&p, usage(input, output, input / 3)).unwrap();
                let units = c.units * 10i128.pow(30 - c.scale);
                if output == 0 {
                    assert!(units >= last.0, "input {input}");
                    last = (units, last.1);
                }
                assert!(units >= last.0);
            }
        }
    }

    fn book(rows: Vec<Price>) -> PriceBook {
        PriceBook::new(rows).unwrap()
    }

    #[test]
    fn names_find_their_model_through_versions_and_providers() {
        let b = book(vec![
            price(1, "gemini-2.5-flash", 0, "0.30", "2.50"),
            price(2, "gemini-2.5-flash-lite", 0, "0.10", "0.40"),
            price(3, "gpt-4o", 0, "2.50", "10"),
            price(4, "gpt-4o-mini", 0, "0.15", "0.60"),
            price(5, "gpt-4o-2024-05-13", 0, "5", "15"),
            price(6, "claude-3-5-sonnet", 0, "3", "15"),
            price(7, "vertex_ai/gemini-2.5-flash", 0, "0.31", "2.51"),
            price(8, "gpt-3.5-turbo", 0, "0.5", "1.5"),
        ]);
        let id = |m: &str| b.find(m, 10).map(|p| p.id);
        assert_eq!(id("gemini-2.5-flash"), Some(1));
        assert_eq!(id("  Gemini-2.5-FLASH "), Some(1));
        assert_eq!(id("gemini-2.5-flash-001"), Some(1));
        assert_eq!(id("gemini-2.5-flash-preview-05-20"), Some(1));
        assert_eq!(id("gemini-2.5-flash-lite-001"), Some(2));
        assert_eq!(id("gemini-2.5-flash-lite-preview-06-17"), Some(2));
        assert_eq!(id("models/gemini-2.5-flash"), Some(1));
        assert_eq!(id("google/gemini-2.5-flash-001"), Some(1));
        assert_eq!(id("vertex_ai/gemini-2.5-flash-001"), Some(7), "a provider's own price wins");
        assert_eq!(id("gpt-4o-2024-08-06"), Some(3));
        assert_eq!(id("gpt-4o-2024-05-13"), Some(5), "an exact row beats the version rule");
        assert_eq!(id("gpt-4o-mini-2024-07-18"), Some(4));
        assert_eq!(id("claude-3-5-sonnet-20241022"), Some(6));
        assert_eq!(id("claude-3-5-sonnet@20240620"), Some(6));
        assert_eq!(id("claude-3-5-sonnet-20241022-v2:0"), Some(6));
        assert_eq!(id("gpt-3.5-turbo-0125"), Some(8));
        assert_eq!(id("gpt-4o-latest"), Some(3));
        for unknown in ["gpt-4", "gpt-4o-audio-preview-x", "gemini", "", "-001", "gpt-4omini", "my-gpt-4o"] {
            assert_eq!(id(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn match_patterns_extend_and_override_the_default_rule() {
        let mut flash = price(1, "gemini-2.5-flash", 0, "0.30", "2.50");
        flash.pattern = Some(r"^gemini-2\.5-flash".into()); // sloppy: also matches flash-lite
        let lite = price(2, "gemini-2.5-flash-lite", 0, "0.10", "0.40");
        let mut may = price(3, "gpt-4o-may", 0, "5", "15");
        may.pattern = Some(r"^gpt-4o-2024-05-13$".into());
        let gpt = price(4, "gpt-4o", 0, "2.5", "10");
        let b = book(vec![flash, lite, may, gpt]);
        let id = |m: &str| b.find(m, 10).map(|p| p.id);
        assert_eq!(id("gemini-2.5-flash-experimental-build"), Some(1), "the pattern reaches what the rule does not");
        assert_eq!(id("gemini-2.5-flash-lite-001"), Some(2), "the more specific model wins");
        assert_eq!(id("gpt-4o-2024-05-13"), Some(3));
        assert_eq!(id("gpt-4o-2024-08-06"), Some(4));
        assert_eq!(id("gpt-4o-may"), Some(3), "a row's own name always matches");
    }

    #[test]
    fn the_price_in_effect_at_the_time_is_used() {
        let b = book(vec![price(1, "o3", 100, "10", "40"), price(2, "o3", 200, "2", "8"), price(3, "o3", 300, "1", "4")]);
        assert_eq!(b.find("o3", 99).map(|p| p.id), None, "before the first price");
        assert_eq!(b.find("o3", 100).map(|p| p.id), Some(1));
        assert_eq!(b.find("o3", 199).map(|p| p.id), Some(1));
        assert_eq!(b.find("o3-2025-04-16", 250).map(|p| p.id), Some(2));
        assert_eq!(b.find("o3", i64::MAX).map(|p| p.id), Some(3));
    }

    #[test]
    fn bad_patterns_are_refused() {
        assert_eq!(check_pattern("(").unwrap_err().kind, ErrorKind::InvalidArgument);
        assert_eq!(check_pattern(r"\w{1000}\w{1000}").unwrap_err().kind, ErrorKind::LimitExceeded);
        assert!(check_pattern(r"^gpt-4o(-\d+)?$").is_ok());
        let mut p = price(1, "m", 0, "1", "1");
        p.pattern = Some("[".into());
        assert!(PriceBook::new(vec![p]).is_err());
    }
}
