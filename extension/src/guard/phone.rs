//! Phone numbers: candidates found by the scan's patterns, cheap shape
//! checks that turn away dates, versions and identifiers, then Google's
//! libphonenumber (the `rlibphonenumber` port, with its per-country
//! metadata) decides whether the candidate is a real, valid number: its
//! phone number matcher at leniency `Valid` (a valid number of a region,
//! with its national prefix where that region writes one; grouped as
//! people write it, not only as the region formats it).
//!
//! A number with a country code (`+44 …`, `0044 …`, `(+44) …`) is checked
//! against its own country. A national number (`030/12345678`) is checked
//! against each region the guardrail lists (`config.regions`): the same
//! digits are a valid number in one country and not in another, so the
//! list says where the users live. With no list, the `DEFAULT_REGIONS`,
//! then the country where the script written around the number is most
//! used, as CLDR's likely subtags say (ICU4X): a number among Japanese
//! words is read as Japanese, among Cyrillic ones as Russian, among Hangul
//! as Korean. The Latin script names no country; there the language of
//! the words around the number does (whatlang's identification, then the
//! language's likely country): a number among Polish words is read as
//! Polish, among Danish ones as Danish. The text itself is the best
//! evidence of where its writer lives that a scan has.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use icu_locale::{Locale, LocaleCanonicalizer, LocaleExpander};
use rlibphonenumber::phonenumber_matcher::{FindNumberExt, Leniency};
use rlibphonenumber::{Region, PHONE_NUMBER_UTIL};
use unicode_script::{Script, UnicodeScript};

/// Regions national numbers are read as when a guardrail names none:
/// North America, the British Isles, the larger EU countries, India,
/// Brazil, Mexico and Australia. Each region is tried in turn, and each
/// one's metadata is compiled on its first use in a session, so the list
/// is kept to where most users live rather than all ~245; a text in
/// another script or language adds its country (see above).
pub const DEFAULT_REGIONS: [&str; 17] =
    ["US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "ES", "IT", "PT", "IN", "BR", "MX", "AU"];

/// Regions checked, by the guardrail that lists them.
#[derive(Clone)]
pub struct Regions {
    list: Arc<[Region]>,
    /// No list was given: the text around a number adds its country.
    by_text: bool,
}

impl Default for Regions {
    fn default() -> Self {
        Regions { list: DEFAULT_REGIONS.iter().map(|r| r.parse().expect("a region libphonenumber knows")).collect(), by_text: true }
    }
}

impl Regions {
    /// Whether the text around a number adds its country (no list given).
    pub fn by_text(&self) -> bool {
        self.by_text
    }

    /// Regions from ISO 3166-1 alpha-2 codes (any case), exactly these.
    /// `Err` names the first code libphonenumber has no metadata for.
    pub fn parse(codes: &[String]) -> std::result::Result<Regions, String> {
        codes
            .iter()
            .map(|c| supported(c).ok_or_else(|| c.clone()))
            .collect::<std::result::Result<Vec<Region>, String>>()
            .map(|v| Regions { list: v.into(), by_text: false })
    }
}

/// The region of an ISO 3166-1 alpha-2 code (any case), if libphonenumber
/// has its metadata.
fn supported(code: &str) -> Option<Region> {
    code.trim().to_ascii_uppercase().parse::<Region>().ok().filter(|r| PHONE_NUMBER_UTIL.get_supported_regions().any(|s| s == *r))
}

/// Tries per candidate, a bound on the matcher's work.
const MAX_TRIES: u64 = 64;

thread_local! {
    /// The region of the last national number found: tried first next
    /// time (a session's texts mostly come from one country), instead of
    /// each listed region in turn.
    static LAST: std::cell::Cell<Option<Region>> = const { std::cell::Cell::new(None) };
}

/// Countries the text around a number points to, most likely first
/// (`text_region`).
pub type Local = [Option<Region>; 2];

/// The span of the valid phone number in `candidate` (offsets into it),
/// if libphonenumber finds one. `local`: the countries the text around the
/// candidate says (`text_region`), tried in turn besides the listed regions
/// when no list was given; asked only when they find no whole number. A number of
/// a listed region that leaves digits of the candidate out (`(910)
/// 485-41-06` inside the Russian `8 (910) 485-41-06`) gives way to a whole
/// one of that country.
pub fn validate(candidate: &str, regions: &Regions, local: impl FnOnce() -> Local) -> Option<(usize, usize)> {
    let digits = |(from, to): (usize, usize)| candidate[from..to].bytes().filter(u8::is_ascii_digit).count();
    let all = digits((0, candidate.len()));
    let listed = find(candidate, &regions.list);
    if listed.is_some_and(|m| digits(m) == all) {
        return listed;
    }
    let whole = regions
        .by_text
        .then(local)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|r| !regions.list.contains(r))
        .find_map(|extra| find(candidate, &[extra]).filter(|&m| digits(m) == all));
    whole.or(listed)
}

/// The span of the valid phone number of `region` in `candidate`.
pub fn validate_in(candidate: &str, region: Region) -> Option<(usize, usize)> {
    find(candidate, &[region])
}

fn find(candidate: &str, regions: &[Region]) -> Option<(usize, usize)> {
    let hint = LAST.get().filter(|r| regions.contains(r));
    let m = candidate
        .phone_number_matcher_builder()
        .leniency(Leniency::Valid)
        .max_tries(MAX_TRIES)
        .regions_with_hint(regions.iter().copied(), hint)
        .build()
        .next()?;
    if let Some(r) = m.number.get_region_code().filter(|r| regions.contains(r)) {
        LAST.set(Some(r));
    }
    Some((m.start, m.start + m.raw_string.len()))
}

/// The country where the script `context` is written in is most used
/// (CLDR's likely subtags: `und-Cyrl` is `ru-Cyrl-RU`). Latin tells no
/// country: the script is the other one with most letters, at least
/// three. The scan reads folded text, where letters with a Latin
/// look-alike have become Latin: about two thirds of Russian prose (`о`,
/// `е`, `н`, `р`) and all of `Москва`, so the Cyrillic letters left are
/// fewer than the Latin ones even in a Russian sentence, and a word of
/// them is evidence enough. Han written with kana is Japanese
/// (`Jpan`), with Hangul Korean (`Kore`), as ISO 15924 names those writing
/// systems; alone it is Chinese.
pub fn script_region(context: &str) -> Option<Region> {
    let mut counts: Vec<(Script, usize)> = Vec::new();
    for c in context.chars().filter(|c| c.is_alphabetic()) {
        let s = c.script();
        match counts.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => counts.push((s, 1)),
        }
    }
    let count = |s: Script| counts.iter().find(|(k, _)| *k == s).map_or(0, |&(_, n)| n);
    let &(best, n) = counts
        .iter()
        .filter(|(s, _)| !matches!(s, Script::Latin | Script::Common | Script::Inherited | Script::Unknown))
        .max_by_key(|&&(_, n)| n)?;
    if n < 3 {
        return None;
    }
    let tag = if count(Script::Hiragana) + count(Script::Katakana) > 0 && matches!(best, Script::Han | Script::Hiragana | Script::Katakana) {
        "Jpan"
    } else if count(Script::Hangul) > 0 && matches!(best, Script::Han | Script::Hangul) {
        "Kore"
    } else {
        best.short_name()
    };
    likely_region(tag)
}

/// The countries of the text around a number: its script's
/// (`script_region`, read in the `folded` text as the scan reads it), or
/// for a text in the Latin script, its language's (`language`: see
/// `language_regions`).
pub fn text_region(folded: &str, language: impl FnOnce() -> Local) -> Local {
    match script_region(folded) {
        Some(r) => [Some(r), None],
        None => language(),
    }
}

/// The country where the language of a Latin-script `context` is most
/// spoken: whatlang names the language (ISO 639-3, `pol`), CLDR's aliases
/// make it BCP 47 (`pl`) and its likely subtags give the country
/// (`pl-Latn-PL`). It reads the original text: without its diacritics
/// (the folded `zadzwonic` for `zadzwonić`), a short Polish sentence was
/// taken for Portuguese, and Faker's Czech sentences mostly for Croatian.
/// A wrong guess costs nothing but a try, since the number must be a whole
/// valid number of the country. Latin itself is left out: it is what
/// placeholder text is written in (lorem ipsum), no country's everyday
/// language (CLDR gives it the Vatican).
///
/// A text in ASCII letters alone is not identified: naming a language
/// costs about 90 µs (whatlang compares the text's trigrams with the
/// profiles of some forty languages), twenty times what checking a number
/// costs, and such a text is mostly English, of a default region, around a
/// number no default region has (`07700 900123`, reserved for fiction).
/// The languages of Latin letters outside the default regions' mostly
/// write letters beyond ASCII (Polish `ą ł ś`, Czech `č ř`, Danish `æ ø
/// å`, Swedish `ä ö`, Turkish `ş ğ ı`); a sentence in one of them without
/// any is read as before.
///
/// When whatlang is not sure of its language (`is_reliable`: close
/// languages such as Danish and Norwegian Bokmål, or a short text), the
/// runner-up's country comes second: the language named once the first is
/// ruled out. A short Danish sentence is as often taken for Norwegian.
pub fn language_regions(context: &str) -> Local {
    let latin = |info: &whatlang::Info| info.script() == whatlang::Script::Latin && info.lang() != whatlang::Lang::Lat;
    let Some(first) = (!context.is_ascii()).then(|| whatlang::detect(context)).flatten().filter(latin) else {
        return [None, None];
    };
    let second = (!first.is_reliable())
        .then(|| whatlang::Detector::with_denylist(vec![first.lang(), whatlang::Lang::Lat]).detect(context))
        .flatten()
        .filter(latin)
        .and_then(|info| likely_region(info.lang().code()));
    [likely_region(first.lang().code()), second]
}

thread_local! {
    /// Each script's or language's country, as looked up.
    static LIKELY_REGION: RefCell<HashMap<&'static str, Option<Region>>> = RefCell::new(HashMap::new());
}

/// The country where a script (ISO 15924, four letters: `Cyrl`) or a
/// language (ISO 639, two or three letters: `pol`) is most used: CLDR's
/// aliases make the tag canonical (`pol` is `pl`), its likely subtags give
/// the country (`und-Cyrl` is `ru-Cyrl-RU`, `pl` is `pl-Latn-PL`, `nb` is
/// `nb-Latn-NO`).
fn likely_region(subtag: &'static str) -> Option<Region> {
    LIKELY_REGION.with(|cache| {
        *cache.borrow_mut().entry(subtag).or_insert_with(|| {
            let tag = if subtag.len() == 4 { format!("und-{subtag}") } else { subtag.to_string() };
            let mut locale: Locale = tag.parse().ok()?;
            LocaleCanonicalizer::new_common().canonicalize(&mut locale);
            // The extended data: the common set lacks languages as spoken
            // as Norwegian Bokmål (`nb` stays `nb`, no country).
            LocaleExpander::new_extended().maximize(&mut locale.id);
            supported(locale.id.region?.as_str())
        })
    })
}

/// Compiles libphonenumber's metadata of the default regions (what a
/// session's first national number otherwise pays for; see `warm`),
/// leaving no region to try first.
pub fn warm() {
    for region in Regions::default().list.iter() {
        find("0301234567", &[*region]);
    }
    LAST.set(None);
}

/// Whether a candidate is shaped like something other than a phone
/// number: a date (`2024-05-03`, `03/05/2024`, `05.03.2024`), a version
/// (`10.0.19041.1`), an IPv4 address, a decimal (`36.6773535`), an ISBN
/// (`0-7163-1524-6`) or a US social security number (`666-12-3456`).
/// Checked before libphonenumber, which would take some of them for
/// numbers (`05.03.2024` is a valid Austrian number), and which costs
/// microseconds a candidate where this costs nanoseconds.
pub fn other_shape(s: &str) -> bool {
    let s = s.trim_start_matches('(').trim_end_matches(')');
    // Lengths of the digit groups (the first 8) and the separators between
    // them, spaces left out; no allocation, as every candidate comes here.
    let (mut lens, mut groups, mut run) = ([0usize; 8], 0usize, 0usize);
    let (mut seps, mut first_sep, mut mixed) = (0usize, None, false);
    for b in s.bytes().chain(std::iter::once(b' ')) {
        if b.is_ascii_digit() {
            run += 1;
            continue;
        }
        if run > 0 {
            if groups < lens.len() {
                lens[groups] = run;
            }
            groups += 1;
            run = 0;
        }
        if b != b' ' {
            seps += 1;
            mixed |= first_sep.is_some_and(|f| f != b);
            first_sep.get_or_insert(b);
        }
    }
    let lens = &lens[..groups.min(lens.len())];
    let only = |k: u8| seps > 0 && !mixed && first_sep == Some(k);
    let dated = seps == 2 && !mixed && matches!(lens, [4, 1 | 2, 1 | 2] | [1 | 2, 1 | 2, 4] | [1 | 2, 1 | 2, 2]);
    // Dotted groups with a single digit somewhere: a version, not a number
    // written with dots (`415.555.0100`); four of at most three: an address.
    let versioned = only(b'.') && groups >= 3 && lens.contains(&1);
    let address = only(b'.') && groups == 4 && lens.iter().all(|&n| n <= 3);
    let decimal = only(b'.') && groups == 2;
    // ISBN-10 and -13 written with hyphens end in a one-character check group.
    let isbn = only(b'-') && (4..=5).contains(&groups) && lens.last() == Some(&1) && matches!(lens.iter().sum::<usize>(), 10 | 13);
    let ssn = lens == [3, 2, 4] && (seps == 0 || (seps == 2 && only(b'-')));
    dated || versioned || address || decimal || isbn || ssn
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The country the text around a number says, as the scan asks it.
    fn local(context: &str) -> impl FnOnce() -> Local + '_ {
        move || text_region(&super::super::normalize::fold(context).text, || language_regions(context))
    }

    #[test]
    fn national_formats_are_valid_in_their_regions() {
        let all = Regions::default();
        for n in ["06-12345678", "030/12345678", "(0161) 496 0914", "98765 43210", "(11) 91234-5678", "704-687-7519x078", "020 7946 0958", "612 345 678"] {
            assert_eq!(validate(n, &all, || [None, None]), Some((0, n.len())), "{n}");
        }
        for n in ["+44 20 7946 0958", "+49 (0)30 1234567", "0043 1 234 5678", "+81 3-1234-5678"] {
            assert!(validate(n, &all, || [None, None]).is_some(), "{n}");
        }
        // A German area code read as a Dutch number is not one, and the
        // other way around: the regions listed decide.
        let nl = Regions::parse(&["nl".into()]).unwrap();
        assert!(validate("06-12345678", &nl, || [None, None]).is_some());
        assert!(validate("030/12345678", &nl, || [None, None]).is_none());
        let de = Regions::parse(&["DE".into()]).unwrap();
        assert!(validate("030/12345678", &de, || [None, None]).is_some());
        assert!(validate("98765 43210", &de, || [None, None]).is_none());
    }

    #[test]
    fn the_script_around_a_national_number_adds_its_country() {
        // CLDR's likely subtags name the country of each script, read in
        // the folded text the scan reads.
        let region = |context: &str| script_region(&super::super::normalize::fold(context).text).map(|r| r.to_string());
        assert_eq!(region("電話番号は090-1234-5678です。"), Some("JP".into()));
        assert_eq!(region("我的电话号码是13812345678，请联系。"), Some("CN".into()));
        assert_eq!(region("전화번호는 010-1234-5678입니다."), Some("KR".into()));
        assert_eq!(region("Позвоните мне по номеру 8 (912) 345-67-89."), Some("RU".into()));
        assert_eq!(region("Call me on 020 7946 0958, thanks."), None);
        assert_eq!(region("0123 4567"), None);
        assert_eq!(region("Our office in Москва (Russia): 8 (495) 123-45-67."), None);
        // A Chinese mobile number is valid in China, and a listed region
        // set reads only its own countries.
        let all = Regions::default();
        let cn = "13812345678";
        assert_eq!(validate_in(cn, "CN".parse().unwrap()), Some((0, cn.len())));
        assert_eq!(validate(cn, &all, local("我的手机号码是13812345678，请联系。")), Some((0, cn.len())));
        let gb = Regions::parse(&["GB".into()]).unwrap();
        assert!(!gb.by_text() && all.by_text());
        assert_eq!(validate(cn, &gb, local("我的手机号码是13812345678，请联系。")), None);
    }

    #[test]
    fn the_language_around_a_national_number_adds_its_country() {
        let region = |context: &str| local(context)()[0].map(|r| r.to_string());
        assert_eq!(region("Proszę zadzwonić do mnie jutro rano, numer telefonu podam w wiadomości: 795 043 429."), Some("PL".into()));
        // Read in the original: folded (`Prosze zadzwonic do mnie jutro
        // rano, moj numer to`), this one was taken for Portuguese.
        assert_eq!(region("Proszę zadzwonić do mnie jutro rano, mój numer to 795 043 429."), Some("PL".into()));
        assert_eq!(region("Hvis du har spørgsmål, er du velkommen til at ringe til mig på 81 56 92 89."), Some("DK".into()));
        assert_eq!(region("Zavolejte mi prosím zítra ráno na číslo 772 416 948, děkuji."), Some("CZ".into()));
        assert_eq!(region("Ring mig gärna i morgon förmiddag på mitt nummer 08-123 456 78, tack så mycket."), Some("SE".into()));
        assert_eq!(region("Chiamami domani mattina in ufficio, perché ho bisogno di parlarti: 347 722 7508."), Some("IT".into()));
        assert_eq!(region("Mes coordonnées : appelez-moi au bureau demain matin, s'il vous plaît."), Some("FR".into()));
        // Text in ASCII letters alone is not identified (mostly English),
        // nor placeholder text.
        assert_eq!(region("Please call the office tomorrow morning if you have any questions: 020 7946 0958."), None);
        assert_eq!(region("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor — 795 043 429."), None);
        // Danish taken for Norwegian Bokmål, without certainty: Denmark
        // comes second. Certain, whatlang names no runner-up.
        let both = |context: &str| local(context)().map(|r| r.map(|r| r.to_string()));
        assert_eq!(both("Ring til mig på 28 44 96 95 i morgen."), [Some("NO".into()), Some("DK".into())]);
        assert_eq!(both("Ring meg i morgen tidlig på mobilen, så snakker vi om møtet på fredag."), [Some("DK".into()), Some("NO".into())]);
        assert_eq!(both("Proszę zadzwonić do mnie jutro rano, numer telefonu podam w wiadomości."), [Some("PL".into()), None]);
        let dk = "28 44 96 95";
        assert_eq!(validate(dk, &Regions::default(), local("Ring til mig på 28 44 96 95 i morgen.")), Some((0, dk.len())));
        // A Polish mobile number among Polish words, not among English ones.
        let all = Regions::default();
        let pl = "795 043 429";
        assert_eq!(validate(pl, &all, local("Proszę zadzwonić do mnie jutro rano, numer telefonu podam w wiadomości")), Some((0, pl.len())));
        assert_eq!(validate(pl, &all, local("Please call the office tomorrow morning if you have any questions")), None);
        let gb = Regions::parse(&["GB".into()]).unwrap();
        assert_eq!(validate(pl, &gb, local("Proszę zadzwonić do mnie jutro rano, numer telefonu podam w wiadomości")), None);
    }

    #[test]
    fn unknown_regions_are_named() {
        assert_eq!(Regions::parse(&["GB".into(), "UK".into()]).err(), Some("UK".to_string()));
        assert_eq!(Regions::parse(&["ZZ".into()]).err(), Some("ZZ".to_string()));
        assert!(Regions::parse(&["gb".into(), "in".into()]).is_ok());
    }

    #[test]
    fn dates_versions_and_ssns_are_not_numbers() {
        for s in [
            "2024-05-03", "03/05/2024", "05.03.2024", "(09.02.1993)", "10.0.19041.1", "1.2.3.4", "3/5/24", "666-12-3456", "078 05 1120",
            "192.168.16.72", "(172.25.30.166)", "36.6773535", "0-7163-1524-6", "978-3-16-148410-0",
        ] {
            assert!(other_shape(s), "{s}");
        }
        for s in ["415.555.0100", "06-12345678", "030/12345678", "(0161) 496 0914", "01 23 45 67 89", "415-555-0100"] {
            assert!(!other_shape(s), "{s}");
        }
    }
}
