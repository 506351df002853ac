//! PII and secret detectors: a pattern to find candidates (repetition
//! bounded, so matching stays linear) and a check the regex crate cannot
//! express — it has no lookaround — run on each candidate: boundaries,
//! checksums (Luhn, IBAN mod-97), number ranges (SSN areas), parsing (IP).
//! Entity names follow Presidio where it has one.

use std::cell::Cell;

use super::normalize::View;
use super::phone;

/// A check on a candidate `text.folded[start..end]` (byte offsets, the
/// whole text given for context). Returns the span to report, possibly
/// narrowed, or `None` to reject the candidate.
pub type Check = fn(&Text, usize, usize, &Options) -> Option<(usize, usize)>;

/// The text a check reads: the folded text the patterns matched in, and
/// the text it was folded from, whose letters keep their diacritics.
pub struct Text<'a> {
    pub folded: &'a str,
    view: &'a View,
    original: &'a str,
    /// The last language identified (`language_regions`): the stretch of
    /// text it was for, and the countries.
    language: Cell<Option<(usize, phone::Local)>>,
}

/// Candidates within one stretch of this many bytes share the language
/// identified for the first of them: a text full of numbers costs one
/// identification per stretch, not one per number.
const LANGUAGE_STRETCH: usize = 256;

impl<'a> Text<'a> {
    /// `view` folded from `original` (`normalize::fold`).
    pub fn new(view: &'a View, original: &'a str) -> Self {
        Text { folded: &view.text, view, original, language: Cell::new(None) }
    }

    /// The countries of the language of the original around folded
    /// `[start, end)` (`phone::language_regions`).
    fn language_regions(&self, start: usize, end: usize) -> phone::Local {
        let stretch = start / LANGUAGE_STRETCH;
        match self.language.get() {
            Some((s, regions)) if s == stretch => regions,
            _ => {
                let regions = phone::language_regions(self.original_around(start, end, 120));
                self.language.set(Some((stretch, regions)));
                regions
            }
        }
    }

    /// The original around folded `[start, end)`, up to `reach` bytes
    /// either side.
    fn original_around(&self, start: usize, end: usize, reach: usize) -> &'a str {
        let (from, to) = self.view.original_range(start, end);
        let byte = |i: usize| self.original.char_indices().nth(i).map_or(self.original.len(), |(b, _)| b);
        around(self.original, byte(from), byte(to), reach)
    }
}

/// What a guardrail's config adds to the checks.
#[derive(Clone, Default)]
pub struct Options {
    /// Where national phone numbers are read as numbers (`config.regions`).
    pub regions: phone::Regions,
}

pub struct Entity {
    pub name: &'static str,
    pub patterns: &'static [&'static str],
    pub check: Check,
}

/// An extension after a phone number: `x078`, ` ext. 12`, `#4`.
macro_rules! ext {
    () => {
        r"(?:[ ,]{0,2}(?i:x|ext\.?|extension|#)[ .:]{0,2}[0-9]{1,6})?"
    };
}

/// Every entity a `pii` guardrail can detect.
pub const ENTITIES: &[Entity] = &[
    Entity {
        name: "EMAIL_ADDRESS",
        patterns: &[r"(?i)[a-z0-9._%+\-]{1,64}@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.){1,8}[a-z]{2,24}"],
        check: email,
    },
    Entity {
        name: "PHONE_NUMBER",
        // One pattern, so a text is read once for all the forms (each
        // pattern of a detector is a pass over the text).
        patterns: &[concat!(
            // Not inside a word, an identifier (`ORD-2024-000123`) or a
            // number (`10.0.19041`): the character before, if any, is none
            // of these (the check steps over it). Digit groups in prose
            // then rarely get this far, and the pattern's pass over a text
            // without phone numbers is skipped altogether.
            r"(?:^|[^0-9A-Za-z_\-./+])",
            // With a country code: +44 20 7946 0958, +1-415-555-0100,
            // +49 (0)30 1234567, (+44) 20 7946 0958, 0043 1 234 5678.
            r"(?:\(?\+[1-9][0-9]{0,2}\)?(?:[ .\-/]{0,2}\(?[0-9]{1,6}\)?){1,7}",
            r"|00[1-9][0-9]{0,2}(?:\)?[ .\-/]{1,2}\(?[0-9]{1,8}\)?){1,6}",
            // National, four groups or more of two digits or more, perhaps
            // after a trunk digit apart: 01 23 45 67 89, 091 123 45 67,
            // 044 668 18 00, 8 992 722 02 09, 8 (910) 485-41-06.
            r"|\(?[0-9]{1,5}\)?(?:[ .\-/]{1,2}\(?[0-9]{2,8}\)?){3,5}",
            // National, three groups after a trunk `0`, the last of two
            // digits: Sweden's 0906-958 48. The word boundary keeps the
            // group after it whole (030 1234 56789 is the next form's);
            // placed after the four-group form, which would otherwise be
            // cut short (01 23 45 67 89).
            r"|\(?0[0-9]{1,4}\)?[ .\-/]{1,2}[0-9]{2,4}[ .\-/]{1,2}[0-9]{2}(?-u:\b)",
            // National, ending in a group of three digits or more, the area
            // code perhaps in parentheses: (415) 555-0100, (930)372-1636x4110,
            // 06-12345678, 030/12345678, (0161) 496 0914, 98765 43210,
            // (11) 91234-5678, 1-415-555-0100, (351) 936752886. (Not
            // `2024-05-03`, `299.99` or `10.0.19041.1`: most digit groups
            // in prose never get here.)
            r"|\(?[0-9]{1,5}(?:(?:\)[ .\-/]{0,2}|[ .\-/]{1,2})\(?[0-9]{2,8}){0,4}(?:\)[ .\-/]{0,2}|[ .\-/]{1,2})\(?[0-9]{3,9}\)?",
            // One block of digits: 0612345678, 9876543210 after "call".
            r"|[0-9]{9,12})",
            ext!()
        )],
        check: phone,
    },
    Entity {
        name: "CREDIT_CARD",
        patterns: &[
            // One block, or 4-4-4-4, 4-4-4-4-3, 4-6-5 (Amex, JCB-15),
            // 4-6-4 (Diners), 4-4-4 (Maestro).
            r"[0-9]{12,19}|[0-9]{4,6}(?:[ \-][0-9]{3,7}){2,4}",
        ],
        check: credit_card,
    },
    Entity { name: "US_SSN", patterns: &[r"[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}"], check: ssn },
    Entity {
        name: "IBAN_CODE",
        patterns: &[r"(?i)[a-z]{2}[0-9]{2}(?: ?[a-z0-9]{4}){2,7}(?: ?[a-z0-9]{1,4})?"],
        check: iban,
    },
    Entity {
        name: "IP_ADDRESS",
        patterns: &[
            r"(?:[0-9]{1,3}\.){3}[0-9]{1,3}",
            // An embedded IPv4 tail first: `::ffff:8.8.8.8` is one address,
            // not `::ffff:8` and a stray `.8.8.8`.
            r"(?i)(?:[0-9a-f]{0,4}:){2,7}(?:(?:[0-9]{1,3}\.){3}[0-9]{1,3}|[0-9a-f]{1,4})?",
        ],
        check: ip,
    },
    Entity {
        name: "AWS_ACCESS_KEY",
        patterns: &[r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|APKA)[0-9A-Z]{16}"],
        check: token,
    },
    Entity {
        name: "API_KEY",
        patterns: &[
            r"sk-(?:proj-|svcacct-|admin-|ant-[a-z]{3,5}[0-9]{2}-)?[A-Za-z0-9_\-]{20,256}",
            r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20,128}",
            r"gh[pousr]_[A-Za-z0-9]{36,255}",
            r"github_pat_[A-Za-z0-9_]{22,255}",
            r"xox[abposr]-[A-Za-z0-9\-]{10,255}",
            r"AIza[0-9A-Za-z_\-]{35}",
            r"glpat-[0-9A-Za-z_\-]{20,64}",
            r"hf_[A-Za-z0-9]{30,64}",
            r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}",
        ],
        check: api_key,
    },
    Entity {
        name: "BEARER_TOKEN",
        patterns: &[r"(?i:bearer) {1,4}[A-Za-z0-9\-._~+/]{16,512}=*"],
        check: bearer,
    },
    Entity {
        name: "JWT",
        patterns: &[r"eyJ[A-Za-z0-9_\-]{10,512}\.eyJ[A-Za-z0-9_\-]{10,1024}\.[A-Za-z0-9_\-]{10,512}"],
        check: token,
    },
    Entity {
        name: "PRIVATE_KEY",
        patterns: &[r"-----BEGIN (?:[A-Z0-9]{1,10} ){0,3}PRIVATE KEY(?: BLOCK)?-----"],
        check: private_key,
    },
];

/// What every pattern above needs somewhere in its match: an `@`, four
/// digits in a row, a `+` before a digit, two digits set apart by a space,
/// dot, dash, slash or closing parenthesis, two colons close
/// together, a letter pair before two digits, or one of the literal
/// prefixes. Prompts mostly have none of these (a "grade 7" or "200 words"
/// is not enough), so a scan of only PII detectors (what logging runs on
/// every stored text) skips the set when `may_match` says no. The unit test
/// `prefilter_is_implied_by_every_pattern` holds both to that promise; a
/// pattern added above must keep it.
pub const PREFILTER: &str = concat!(
    r"@|[0-9]{4}|\+[1-9]|[0-9](?:\)[ .\-/]{0,2}|[ .\-/]{1,2})\(?[0-9]|:(?i:[0-9a-f]{0,4}):|(?i:[a-z]{2}[0-9]{2})",
    r"|A(?:KIA|SIA|BIA|CCA|GPA|IDA|ROA|IPA|NPA|NVA|PKA)|sk-|[sr]k_|gh[pousr]_|github_pat_|xox[abposr]-|AIza|glpat-|hf_|SG\.",
    r"|(?i:bearer)|eyJ|-----BEGIN",
);

/// The bytes a match of PREFILTER can be found from: digits and
/// `@ : _ - . A J b B`. Prose has few of them.
const ANCHOR: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = matches!(b as u8, b'0'..=b'9' | b'@' | b':' | b'_' | b'-' | b'.' | b'A' | b'J' | b'b' | b'B');
        b += 1;
    }
    t
};

/// Whether PREFILTER may match `text`: true wherever it does (and seldom
/// elsewhere). PREFILTER says what; this says it about three times faster
/// than the compiled pattern (its many first bytes leave the regex engine
/// no literal to skip ahead to), since it looks closer only at anchor
/// bytes. Every stored prompt and answer goes through it.
pub fn may_match(text: &str) -> bool {
    let b = text.as_bytes();
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let digit = |i: usize| at(i).is_ascii_digit();
    // Any non-ASCII byte may be part of a letter (`(?i:[a-z])` takes the
    // Kelvin sign and the long s).
    let letter = |i: usize| at(i).is_ascii_alphabetic() || at(i) >= 0x80;
    let before = |i: usize, s: &[u8]| b[..i].ends_with(s);
    let after = |i: usize, s: &[u8]| b[i + 1..].starts_with(s);
    // A digit, then `)` or one of ` .-/` (up to two of them), perhaps `(`,
    // a digit.
    let apart = |i: usize| {
        let closed = at(i + 1) == b')';
        let mut j = i + 1 + usize::from(closed);
        let seps = j;
        while j < seps + 2 && matches!(at(j), b' ' | b'.' | b'-' | b'/') {
            j += 1;
        }
        (closed || j > seps) && digit(j + usize::from(at(j) == b'('))
    };
    (0..b.len()).filter(|&i| ANCHOR[b[i] as usize]).any(|i| match b[i] {
        b'@' => true,
        c @ b'0'..=b'9' => {
            (digit(i + 1) && digit(i + 2) && digit(i + 3))
                || (c != b'0' && i > 0 && b[i - 1] == b'+')
                || apart(i)
                || (i >= 2 && letter(i - 1) && letter(i - 2) && digit(i + 1))
        }
        b':' => {
            let mut j = i + 1;
            while j < i + 5 && at(j).is_ascii_hexdigit() {
                j += 1;
            }
            at(j) == b':'
        }
        b'A' => b.get(i + 1..i + 4).is_some_and(|x| {
            [b"KIA", b"SIA", b"BIA", b"CCA", b"GPA", b"IDA", b"ROA", b"IPA", b"NPA", b"NVA", b"PKA", b"Iza"].contains(&x.try_into().unwrap_or(b"   "))
        }),
        b'_' => {
            before(i, b"sk") || before(i, b"rk") || before(i, b"hf") || before(i, b"github")
                || (i >= 3 && &b[i - 3..i - 1] == b"gh" && b"pousr".contains(&b[i - 1]))
        }
        b'-' => {
            before(i, b"sk") || before(i, b"glpat") || after(i, b"----BEGIN")
                || (i >= 4 && &b[i - 4..i - 1] == b"xox" && b"abposr".contains(&b[i - 1]))
        }
        b'.' => before(i, b"SG"),
        b'J' => before(i, b"ey"),
        _ => b.get(i + 1..i + 6).is_some_and(|x| x.eq_ignore_ascii_case(b"earer")),
    })
}

pub fn entity(name: &str) -> Option<&'static Entity> {
    ENTITIES.iter().find(|e| e.name == name)
}

fn before(text: &str, start: usize) -> Option<char> {
    text[..start].chars().next_back()
}

fn after(text: &str, end: usize) -> Option<char> {
    text[end..].chars().next()
}

/// The candidate is not glued to more of the same kind of characters.
fn isolated(text: &str, start: usize, end: usize, part: impl Fn(char) -> bool) -> bool {
    !before(text, start).is_some_and(&part) && !after(text, end).is_some_and(&part)
}

fn count_digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

fn digits(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

fn email(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let local_part = |c: char| c.is_ascii_alphanumeric() || "._%+-".contains(c);
    let s = &text[start..end];
    let (local, domain) = s.split_once('@')?;
    let ok = isolated(text, start, end, |c| local_part(c) && c != '.' || c == '@')
        && !after(text, end).is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !domain.contains("..");
    ok.then_some((start, end))
}

fn phone(t: &Text, start: usize, end: usize, o: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    // The character before the number the pattern reads, if any.
    let start = match text[start..end].chars().next() {
        Some(c) if !c.is_ascii_digit() && c != '(' && c != '+' => start + c.len_utf8(),
        _ => start,
    };
    if count_digits(&text[start..end]) < 7 {
        return None;
    }
    // Separators and an opening parenthesis may trail the candidate;
    // parentheses not closed (or not opened) within it do not belong to it.
    let mut s = text[start..end].trim_end_matches([' ', '.', '-', '/', '(']);
    let mut start = start;
    if s.starts_with('(') && s.matches('(').count() > s.matches(')').count() {
        (s, start) = (&s[1..], start + 1);
    }
    if s.ends_with(')') && s.matches(')').count() > s.matches('(').count() {
        s = &s[..s.len() - 1];
    }
    // A number written in parentheses: `(06-12345678)`, `((020)74960870)`.
    if s.len() > 2 && s.starts_with('(') && s.ends_with(')') && nests(&s[1..s.len() - 1]) {
        (s, start) = (&s[1..s.len() - 1], start + 1);
    }
    let end = start + s.len();
    let main = s.find(|c: char| c.is_ascii_alphabetic() || c == '#' || c == ',').map_or(s, |i| &s[..i]).trim_end();
    let n = count_digits(main);
    let international = main.trim_start_matches('(').starts_with(['+']) || main.starts_with("00");
    let block = main.bytes().all(|b| b.is_ascii_digit());
    // E.164 numbers have at most 15 digits (17 with a `00` and a trunk
    // `(0)`); national ones 8 to 13 (Austria's longest: `(04260) 72263
    // 586`). One block of digits is read as a number when it starts with a
    // trunk prefix (`0612345678`) or follows a word for a phone (otherwise
    // it is as likely an identifier, a timestamp or an amount), or among
    // the words of another script, as a number of that script's country
    // alone (see `phone`): Chinese and Russian mobile numbers are written
    // in one block.
    let context = around(text, start, end, 120);
    let block_marked = block && (main.starts_with('0') || phone_word_before(text, start));
    let block_region = (block && !block_marked && o.regions.by_text()).then(|| phone::script_region(context)).flatten();
    let plausible = if international {
        (7..=17).contains(&n)
    } else if block {
        (9..=12).contains(&n) && (block_marked || block_region.is_some())
    } else {
        (8..=13).contains(&n)
    };
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '_' || c == '/' || c == '#' || c == '$' || c == '\u{20ac}';
    let balanced = s.matches('(').count() == s.matches(')').count();
    let ok = plausible
        && balanced
        && isolated(text, start, end, glued)
        && !joined(text, start, end)
        && !phone::other_shape(main)
        && !identifier_word_before(text, start);
    if !ok {
        return None;
    }
    // The number libphonenumber finds must hold every digit of the
    // candidate: a valid short number inside `80.350810` is no finding.
    let valid = match block_region {
        Some(region) => phone::validate_in(s, region),
        None => phone::validate(s, &o.regions, || phone::text_region(context, || t.language_regions(start, end))),
    };
    let (from, to) = valid.filter(|&(from, to)| count_digits(&s[from..to]) >= n)?;
    Some((start + from, start + to))
}

/// `text[start..end]` with up to `reach` bytes either side (whole characters).
fn around(text: &str, start: usize, end: usize, reach: usize) -> &str {
    let mut from = start.saturating_sub(reach);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let mut to = (end + reach).min(text.len());
    while !text.is_char_boundary(to) {
        to -= 1;
    }
    &text[from..to]
}

/// Whether the parentheses in `s` close in order, each after it opens.
fn nests(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        depth += match c {
            '(' => 1,
            ')' => -1,
            _ => 0,
        };
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Whether the word just before `at` names an identifier the number is:
/// "Order 348-6068740", "invoice no. 0221 456789", "ticket #", "ISBN".
/// The digits may well be a valid phone number somewhere; the word says
/// what they are.
fn identifier_word_before(text: &str, at: usize) -> bool {
    const WORDS: [&str; 23] = [
        "order", "invoice", "ticket", "ref", "reference", "account", "acct", "id", "tracking", "serial", "case", "isbn", "sku", "po",
        "customer", "booking", "batch", "lot", "item", "part", "build", "record", "transaction",
    ];
    let head = text[..at].trim_end_matches(|c: char| c == ' ' || c == ':' || c == '#' || c == '(');
    let head = head.strip_suffix("no.").or_else(|| head.strip_suffix("No.")).or_else(|| head.strip_suffix("nr.")).unwrap_or(head).trim_end();
    let word_at = head.rfind(|c: char| !c.is_alphanumeric()).map_or(0, |i| i + head[i..].chars().next().map_or(1, char::len_utf8));
    let word = head[word_at..].to_lowercase();
    WORDS.contains(&word.as_str()) || WORDS.iter().any(|w| word.len() == w.len() + 1 && word.starts_with(w) && word.ends_with('s'))
}

/// Whether a word for a phone number ends shortly before `at`: "call",
/// "phone", "Tel.", "mobile", "WhatsApp", "Handy", "téléphone", "celular"...
/// (each at the start of a word: "label" has no "bel").
fn phone_word_before(text: &str, at: usize) -> bool {
    const WORDS: [&str; 24] = [
        "phone", "tel", "call", "mobile", "cell", "fax", "whatsapp", "sms", "text me", "ring", "handy", "anruf", "ruf", "portable",
        "appel", "mobiel", "bel", "móvil", "movil", "llam", "celular", "cellulare", "téléf", "contact",
    ];
    let mut from = at.saturating_sub(32);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let near = text[from..at].to_lowercase();
    WORDS.iter().any(|w| near.match_indices(w).any(|(i, _)| !near[..i].ends_with(char::is_alphabetic)))
}

/// The Luhn checksum of a digit string.
pub fn luhn(number: &str) -> bool {
    let mut sum = 0;
    for (i, d) in number.bytes().rev().map(|b| (b - b'0') as u32).enumerate() {
        sum += if i % 2 == 1 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d };
    }
    sum % 10 == 0
}

/// Whether a number's first digit (ISO/IEC 7812's major industry
/// identifier) and length are those of a payment card. Issuer ranges are
/// not checked: networks add ranges every year (RuPay, Mir, Troy and Elo
/// within the last decade; JCB's 15 digits, Maestro's 12 to 19) and the
/// scan's job is to find a card number, not to name its network; Luhn
/// turns away nine in ten other numbers.
fn payment_card(n: &str) -> bool {
    match n.as_bytes().first() {
        Some(b'2'..=b'6') => (12..=19).contains(&n.len()),
        // UATP (airline) cards and JCB's 1800 range: 15 digits; RuPay's 8x
        // and Troy's 9792 ranges: 16.
        Some(b'1') => n.len() == 15,
        Some(b'8' | b'9') => n.len() == 16,
        _ => false,
    }
}

/// Digit groups joined by dots, dashes, slashes or colons beyond the
/// candidate, on either side: part of a longer identifier (an order number
/// `ORD-2024-000123`, a serial `SN-4411-2290-3381`, a date, a time).
fn joined(text: &str, start: usize, end: usize) -> bool {
    let joiner = ['.', '-', '/', ':'];
    let alnum = |c: char| c.is_ascii_alphanumeric();
    (text[end..].starts_with(joiner) && text[end + 1..].starts_with(alnum))
        || (text[..start].ends_with(joiner) && text[..start - 1].ends_with(alnum))
}

fn credit_card(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let s = text[start..end].trim_end_matches([' ', '-']);
    let end = start + s.len();
    let n = digits(s);
    let seps: Vec<char> = s.chars().filter(|c| !c.is_ascii_digit()).collect();
    let consistent = seps.windows(2).all(|w| w[0] == w[1]);
    // Twelve digits in one block are too often something else; written
    // apart (Maestro's 4-4-4) they are read.
    let long_enough = n.len() >= 13 || !seps.is_empty();
    let ok = long_enough
        && consistent
        && luhn(&n)
        && payment_card(&n)
        && isolated(text, start, end, |c| c.is_ascii_alphanumeric() || c == '_')
        && !joined(text, start, end);
    ok.then_some((start, end))
}

fn ssn(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let s = &text[start..end];
    let b = s.as_bytes();
    let (area, group, serial) = (&s[0..3], &s[4..6], &s[7..11]);
    let ok = b[3] == b[6]
        && area != "000"
        && area != "666"
        && !area.starts_with('9')
        && group != "00"
        && serial != "0000"
        && isolated(text, start, end, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    ok.then_some((start, end))
}

/// An IBAN: the longest start of the candidate that is a valid IBAN of
/// its country in the SWIFT registry (length, the BBAN's structure, the
/// mod-97 check digits; the `iban_validate` crate), not glued to more
/// letters or digits. The pattern may run into a following word, hence
/// the longest start rather than the whole candidate.
fn iban(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    // Byte offsets in the original of each character kept (spaces dropped).
    let kept: Vec<(usize, char)> = text[start..end].char_indices().filter(|(_, c)| *c != ' ').collect();
    let compact: String = kept.iter().map(|(_, c)| c.to_ascii_uppercase()).collect();
    // The pattern's `(?i)` also takes the Kelvin sign and the long s, which
    // no IBAN has (folding maps both to ASCII before the scan; this keeps
    // the byte slicing below on character boundaries whatever the text).
    if !compact.is_ascii() {
        return None;
    }
    (15..=compact.len().min(34)).rev().find_map(|len| {
        let (at, c) = kept[len - 1];
        let cut = start + at + c.len_utf8();
        let ok = compact[..len].parse::<iban::Iban>().is_ok() && isolated(text, start, cut, |c| c.is_ascii_alphanumeric());
        ok.then_some((start, cut))
    })
}

fn ip(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let s = &text[start..end];
    if s.contains(':') {
        let s = s.trim_end_matches(':');
        let end = start + s.len();
        // Loopback and unspecified addresses identify no one.
        let ok = s.parse::<std::net::Ipv6Addr>().is_ok_and(|a| !a.is_loopback() && !a.is_unspecified())
            && s.matches(':').count() >= 2
            && isolated(text, start, end, |c| c.is_ascii_hexdigit() || c == ':');
        return ok.then_some((start, end));
    }
    let version = text[..start].trim_end().to_ascii_lowercase();
    // A full stop after the address ends the sentence, not the address.
    let full_stop = text[end..].starts_with('.') && text[end + 1..].chars().next().is_none_or(char::is_whitespace);
    let glued = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_';
    let ok = s.parse::<std::net::Ipv4Addr>().is_ok_and(|a| !a.is_loopback() && !a.is_unspecified())
        && !before(text, start).is_some_and(glued)
        && (full_stop || !after(text, end).is_some_and(glued))
        && !version.ends_with("version")
        && !version.ends_with(" v")
        && !before(text, start).is_some_and(|c| c == 'v' || c == 'V');
    ok.then_some((start, end))
}

/// A key's random part has digits or capitals (base64 and hex do); names
/// made of lowercase words joined by hyphens (`sk-button-primary-large-rounded`,
/// a CSS class; `sk-learn-tutorial-notes`) are not keys.
fn api_key(t: &Text, start: usize, end: usize, o: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let s = &text[start..end];
    if !s.contains(|c: char| c.is_ascii_digit() || c.is_ascii_uppercase()) {
        return None;
    }
    token(t, start, end, o)
}

fn token(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    isolated(text, start, end, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-').then_some((start, end))
}

fn bearer(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    // Report the token, not the word "Bearer".
    let s = &text[start..end];
    let space = s.find(' ')?;
    let token_at = space + (s[space..].len() - s[space..].trim_start().len());
    let ok = isolated(text, start, end, |c| c.is_ascii_alphanumeric() || "-._~+/".contains(c));
    ok.then_some((start + token_at, end))
}

/// The whole key block when its END line follows within 16 KB, else the header.
fn private_key(t: &Text, start: usize, end: usize, _: &Options) -> Option<(usize, usize)> {
    let text = t.folded;
    let rest = &text[end..];
    let window = &rest[..floor_char_boundary(rest, 16 * 1024)];
    match window.find("-----END ") {
        Some(at) => {
            let tail = &window[at..];
            let close = tail[9..].find("-----").map(|i| at + 9 + i + 5);
            Some((start, end + close.unwrap_or(at)))
        }
        None => Some((start, end)),
    }
}

fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn("4111111111111111"));
        assert!(!luhn("4111111111111112"));
        assert!(luhn("378282246310005"));
        assert!(payment_card("4111111111111111"));
        assert!(payment_card("378282246310005"));
        assert!(payment_card("2200000000000004"));
        assert!(!payment_card("1234567812345670"));
        assert!(!payment_card("0412345678901234"));
    }
}
