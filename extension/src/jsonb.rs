//! A reader for PostgreSQL's binary `jsonb` format, without PostgreSQL.
//!
//! Rendering needs a handful of top-level values from `vars`. Going through
//! `jsonb_out` and a JSON parser costs more than the render itself (measured:
//! about 0.6 µs for 150 bytes of vars against 0.9 µs for the render), so the
//! binary form is read in place: a key lookup is a binary search over the
//! sorted keys and strings are borrowed, not copied.
//!
//! The layout (src/include/utils/jsonb.h, stable since 9.4):
//! a container is a `u32` header (count and flags) followed by one `u32`
//! JEntry per child (objects: all keys, then all values) and the children's
//! data. A JEntry holds the child's type and either its length or, every 32nd
//! entry, its end offset. Numerics are `numeric` varlenas, containers nested
//! containers, both aligned to 4 bytes from the start of the data area.
//! Object keys are sorted by length, then bytes. A top-level scalar is stored
//! as a one-element array flagged as scalar.

use std::fmt::Write as _;

use crate::error::{Error, ErrorKind, Result};
use crate::render::Printed;

const JB_CMASK: u32 = 0x0FFF_FFFF;
const JB_FSCALAR: u32 = 0x1000_0000;
const JB_FOBJECT: u32 = 0x2000_0000;
const JB_FARRAY: u32 = 0x4000_0000;

const JENTRY_OFFLENMASK: u32 = 0x0FFF_FFFF;
const JENTRY_TYPEMASK: u32 = 0x7000_0000;
const JENTRY_HAS_OFF: u32 = 0x8000_0000;
const JENTRY_ISSTRING: u32 = 0x0000_0000;
const JENTRY_ISNUMERIC: u32 = 0x1000_0000;
const JENTRY_ISBOOL_FALSE: u32 = 0x2000_0000;
const JENTRY_ISBOOL_TRUE: u32 = 0x3000_0000;
const JENTRY_ISNULL: u32 = 0x4000_0000;
const JENTRY_ISCONTAINER: u32 = 0x5000_0000;

/// Deepest nesting converted; deeper documents are refused, so conversion
/// (recursive) cannot exhaust the stack.
pub const MAX_DEPTH: usize = 128;

fn corrupt() -> Error {
    Error::new(ErrorKind::InvalidArgument, "vars is not a valid jsonb value")
}

/// A container (object or array) inside a jsonb document.
#[derive(Clone, Copy)]
pub struct Container<'a> {
    bytes: &'a [u8],
    count: usize,
    flags: u32,
}

/// One value of a jsonb document, borrowed from its bytes.
#[derive(Clone, Copy)]
pub enum Jsonb<'a> {
    Null,
    Bool(bool),
    /// A `numeric` varlena (header included).
    Number(&'a [u8]),
    String(&'a str),
    Array(Container<'a>),
    Object(Container<'a>),
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32> {
    let b = bytes.get(at..at + 4).ok_or_else(corrupt)?;
    Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

const fn int_align(n: usize) -> usize {
    (n + 3) & !3
}

impl<'a> Container<'a> {
    /// A container from the bytes of a jsonb datum after its varlena header.
    pub fn root(bytes: &'a [u8]) -> Result<Container<'a>> {
        let header = read_u32(bytes, 0)?;
        let count = (header & JB_CMASK) as usize;
        let c = Container { bytes, count, flags: header };
        let entries = if c.is_object() { count * 2 } else { count };
        if header & (JB_FOBJECT | JB_FARRAY) == 0 || 4 + entries * 4 > bytes.len() {
            return Err(corrupt());
        }
        Ok(c)
    }

    pub fn is_object(&self) -> bool {
        self.flags & JB_FOBJECT != 0
    }

    /// Number of elements (arrays) or pairs (objects).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn entry(&self, i: usize) -> u32 {
        // Bounds were checked in `root`.
        u32::from_ne_bytes(self.bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes"))
    }

    fn entries(&self) -> usize {
        if self.is_object() {
            self.count * 2
        } else {
            self.count
        }
    }

    fn data_start(&self) -> usize {
        4 + 4 * self.entries()
    }

    /// Start offset of child `i` in the data area.
    fn offset(&self, i: usize) -> usize {
        let mut offset = 0usize;
        for j in (0..i).rev() {
            let e = self.entry(j);
            offset += (e & JENTRY_OFFLENMASK) as usize;
            if e & JENTRY_HAS_OFF != 0 {
                break;
            }
        }
        offset
    }

    fn length(&self, i: usize, offset: usize) -> usize {
        let e = self.entry(i);
        let v = (e & JENTRY_OFFLENMASK) as usize;
        if e & JENTRY_HAS_OFF != 0 {
            v.saturating_sub(offset)
        } else {
            v
        }
    }

    /// Type bits and raw bytes of child `i` (objects: 0..count are keys,
    /// count..2*count values), alignment padding removed.
    fn raw(&self, i: usize) -> Result<(u32, &'a [u8])> {
        if i >= self.entries() {
            return Err(corrupt());
        }
        let e = self.entry(i);
        let offset = self.offset(i);
        let len = self.length(i, offset);
        let kind = e & JENTRY_TYPEMASK;
        let start = match kind {
            JENTRY_ISNUMERIC | JENTRY_ISCONTAINER => int_align(offset),
            _ => offset,
        };
        let base = self.data_start();
        let bytes = self.bytes.get(base + start..base + offset + len).ok_or_else(corrupt)?;
        Ok((kind, bytes))
    }

    fn child(&self, i: usize) -> Result<Jsonb<'a>> {
        let (kind, bytes) = self.raw(i)?;
        Jsonb::from_raw(kind, bytes)
    }

    fn key(&self, i: usize) -> Result<&'a str> {
        match self.child(i)? {
            Jsonb::String(s) => Ok(s),
            _ => Err(corrupt()),
        }
    }
}

impl<'a> Jsonb<'a> {
    fn from_raw(kind: u32, bytes: &'a [u8]) -> Result<Jsonb<'a>> {
        Ok(match kind {
            JENTRY_ISNULL => Jsonb::Null,
            JENTRY_ISBOOL_FALSE => Jsonb::Bool(false),
            JENTRY_ISBOOL_TRUE => Jsonb::Bool(true),
            JENTRY_ISSTRING => Jsonb::String(std::str::from_utf8(bytes).map_err(|_| {
                Error::new(ErrorKind::InvalidArgument, "vars contains text that is not UTF-8")
                    .with_hint("pgprompt needs a UTF8 database.")
            })?),
            JENTRY_ISNUMERIC => Jsonb::Number(bytes),
            JENTRY_ISCONTAINER => {
                let inner = Container::root(bytes)?;
                if inner.is_object() {
                    Jsonb::Object(inner)
                } else {
                    Jsonb::Array(inner)
                }
            }
            _ => return Err(corrupt()),
        })
    }
}

impl<'a> Container<'a> {
    /// Calls `f` with the type bits and bytes of every child, offsets
    /// computed in one pass (looking children up one by one walks back over
    /// their neighbours); returns the number of children.
    fn each_raw(&self, mut f: impl FnMut(usize, (u32, &'a [u8]))) -> Result<usize> {
        let base = self.data_start();
        let mut offset = 0usize;
        for i in 0..self.entries() {
            let e = self.entry(i);
            let v = (e & JENTRY_OFFLENMASK) as usize;
            let end = if e & JENTRY_HAS_OFF != 0 { v } else { offset + v };
            let kind = e & JENTRY_TYPEMASK;
            let start = match kind {
                JENTRY_ISNUMERIC | JENTRY_ISCONTAINER => int_align(offset),
                _ => offset,
            };
            let bytes = self.bytes.get(base + start..base + end.max(start)).ok_or_else(corrupt)?;
            f(i, (kind, bytes));
            offset = end;
        }
        Ok(self.entries())
    }

    /// The value under `key` (objects only): a binary search, as PostgreSQL does.
    pub fn get(&self, key: &str) -> Result<Option<Jsonb<'a>>> {
        if !self.is_object() {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0usize, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            // Keys are compared as bytes, like PostgreSQL; no need to decode them.
            let (_, k) = self.raw(mid)?;
            let ord = k.len().cmp(&key.len()).then_with(|| k.cmp(key.as_bytes()));
            match ord {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.child(mid + self.count).map(Some),
            }
        }
        Ok(None)
    }

    /// The pairs of an object, in storage order.
    pub fn pairs(&self) -> impl Iterator<Item = Result<(&'a str, Jsonb<'a>)>> + '_ {
        let n = if self.is_object() { self.count } else { 0 };
        (0..n).map(move |i| Ok((self.key(i)?, self.child(i + self.count)?)))
    }

    /// The elements of an array.
    pub fn elements(&self) -> impl Iterator<Item = Result<Jsonb<'a>>> + '_ {
        let n = if self.is_object() { 0 } else { self.count };
        (0..n).map(move |i| self.child(i))
    }
}

impl<'a> Jsonb<'a> {
    /// The document stored in `bytes` (a jsonb datum without its varlena header).
    pub fn parse(bytes: &'a [u8]) -> Result<Jsonb<'a>> {
        let root = Container::root(bytes)?;
        if root.flags & JB_FSCALAR != 0 {
            return root.child(0);
        }
        Ok(if root.is_object() { Jsonb::Object(root) } else { Jsonb::Array(root) })
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Jsonb::Null => "null",
            Jsonb::Bool(_) => "a boolean",
            Jsonb::Number(_) => "a number",
            Jsonb::String(_) => "a string",
            Jsonb::Array(_) => "an array",
            Jsonb::Object(_) => "an object",
        }
    }

    /// The value as serde_json, numbers converted as a JSON parser would
    /// (integers beyond 64 bits, which serde_json cannot hold, as doubles).
    pub fn to_json(&self) -> Result<serde_json::Value> {
        self.to_json_at(0)
    }

    fn to_json_at(&self, depth: usize) -> Result<serde_json::Value> {
        use serde_json::Value as J;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(match *self {
            Jsonb::Null => J::Null,
            Jsonb::Bool(b) => J::Bool(b),
            Jsonb::String(s) => J::from(s),
            Jsonb::Number(n) => match Number::decode(n)? {
                Number::I64(i) => J::from(i),
                Number::U64(u) => J::from(u),
                Number::I128(i) => J::from(i as f64),
                Number::F64(f) => J::from(f),
            },
            Jsonb::Array(c) => J::Array(c.elements().map(|e| e?.to_json_at(depth + 1)).collect::<Result<Vec<_>>>()?),
            Jsonb::Object(c) => {
                // Alphabetical, as `to_value` orders them.
                let mut pairs = c
                    .pairs()
                    .map(|p| {
                        let (k, v) = p?;
                        Ok((k.to_owned(), v.to_json_at(depth + 1)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
                J::Object(pairs.into_iter().collect())
            }
        })
    }

    /// The value for minijinja: integers that fit as integers, other numbers as doubles.
    pub fn to_value(&self) -> Result<minijinja::Value> {
        self.to_value_at(0)
    }

    fn to_value_at(&self, depth: usize) -> Result<minijinja::Value> {
        use minijinja::Value as V;
        if depth > MAX_DEPTH {
            return Err(too_deep());
        }
        Ok(match *self {
            Jsonb::Null => V::from(()),
            Jsonb::Bool(b) => V::from(b),
            Jsonb::String(s) => V::from(s),
            Jsonb::Number(n) => match Number::decode(n)? {
                Number::I64(i) => V::from(i),
                Number::U64(u) => V::from(u),
                Number::I128(i) => V::from(i),
                Number::F64(f) => V::from(f),
            },
            Jsonb::Array(c) => V::from(c.elements().map(|e| e?.to_value_at(depth + 1)).collect::<Result<Vec<_>>>()?),
            Jsonb::Object(c) => {
                // jsonb keeps keys shortest first; maps iterate in the order
                // they are built, so give them the alphabetical order jsonb
                // vars have always rendered in (the caller's own order is
                // gone by the time a value is jsonb).
                let mut pairs = c
                    .pairs()
                    .map(|p| {
                        let (k, v) = p?;
                        Ok((k, v.to_value_at(depth + 1)?))
                    })
                    .collect::<Result<Vec<_>>>()?;
                pairs.sort_by(|a, b| a.0.cmp(b.0));
                V::from_pairs(pairs)
            }
        })
    }
}

/// A vars document prepared for many lookups: the top-level object's
/// children located once, then found by binary search.
pub struct Doc<'a> {
    root: Jsonb<'a>,
    /// Keys, then values (objects only).
    children: Children<'a>,
}

/// Up to 16 children in place (no allocation for the usual handful of
/// vars), more on the heap.
enum Children<'a> {
    Inline(usize, [(u32, &'a [u8]); INLINE]),
    Heap(Vec<(u32, &'a [u8])>),
}

const INLINE: usize = 16;

impl<'a> Children<'a> {
    fn as_slice(&self) -> &[(u32, &'a [u8])] {
        match self {
            Children::Inline(n, items) => &items[..*n],
            Children::Heap(v) => v,
        }
    }
}

impl<'a> Doc<'a> {
    pub fn new(root: Jsonb<'a>) -> Result<Doc<'a>> {
        let children = match root {
            Jsonb::Object(c) if c.entries() <= INLINE => {
                let mut items = [(0u32, &[][..]); INLINE];
                let n = c.each_raw(|i, raw| items[i] = raw)?;
                Children::Inline(n, items)
            }
            Jsonb::Object(c) => {
                let mut v = Vec::with_capacity(c.entries());
                c.each_raw(|_, raw| v.push(raw))?;
                Children::Heap(v)
            }
            _ => Children::Inline(0, [(0u32, &[][..]); INLINE]),
        };
        Ok(Doc { root, children })
    }

    fn get(&self, key: &str) -> Result<Option<Jsonb<'a>>> {
        let children = self.children.as_slice();
        let count = children.len() / 2;
        let keys = &children[..count];
        let key = key.as_bytes();
        // Few keys (the usual vars): a scan comparing lengths first touches
        // one key's bytes at most. Many keys: PostgreSQL's own order allows a
        // binary search.
        let found = if count <= 16 {
            keys.iter().position(|(_, k)| k.len() == key.len() && *k == key).ok_or(0)
        } else {
            keys.binary_search_by(|(_, k)| k.len().cmp(&key.len()).then_with(|| (*k).cmp(key)))
        };
        match found {
            Ok(i) => {
                let (kind, bytes) = children[count + i];
                Jsonb::from_raw(kind, bytes).map(Some)
            }
            Err(_) => Ok(None),
        }
    }
}

impl crate::render::Vars for Doc<'_> {
    // (`Printed` borrows jsonb strings in place.)
    fn non_object(&self) -> Option<&'static str> {
        match self.root {
            Jsonb::Object(_) => None,
            other => Some(other.type_name()),
        }
    }

    fn printed(&self, name: &str) -> Result<Option<Printed<'_>>> {
        Ok(match self.get(name)? {
            None => None,
            Some(Jsonb::String(s)) => Some(Printed::Str(s)),
            Some(Jsonb::Number(n)) => {
                // Integers print as their digits; anything else as minijinja prints a double.
                let text = numeric_text(n)?;
                if !text.contains('.') && text.parse::<i128>().is_ok() {
                    Some(Printed::Owned(text))
                } else {
                    Some(Printed::Owned(Jsonb::Number(n).to_value()?.to_string()))
                }
            }
            Some(v) => Some(Printed::Owned(v.to_value()?.to_string())),
        })
    }

    fn get_json(&self, name: &str) -> Result<Option<serde_json::Value>> {
        self.get(name)?.map(|v| v.to_json()).transpose()
    }

    fn to_value(&self) -> Result<minijinja::Value> {
        self.root.to_value()
    }

    fn to_json(&self) -> Result<serde_json::Value> {
        self.root.to_json()
    }
}

fn too_deep() -> Error {
    Error::new(ErrorKind::LimitExceeded, format!("vars nest deeper than {MAX_DEPTH} levels"))
}

/// A jsonb number as Python's json module reads it: an integer when it has
/// no fractional digits (up to 128 bits, where Python's are unbounded), a
/// double otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    I64(i64),
    U64(u64),
    I128(i128),
    F64(f64),
}

impl Number {
    /// Decodes a `numeric` varlena (src/backend/utils/adt/numeric.c).
    pub fn decode(varlena: &[u8]) -> Result<Number> {
        let text = numeric_text(varlena)?;
        if !text.contains('.') {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Number::I64(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Number::U64(u));
            }
            if let Ok(i) = text.parse::<i128>() {
                return Ok(Number::I128(i));
            }
        }
        text.parse::<f64>().map(Number::F64).map_err(|_| corrupt())
    }
}

/// The decimal text of a `numeric` varlena, exactly as `numeric_out` prints it.
pub fn numeric_text(varlena: &[u8]) -> Result<String> {
    // A 1-byte header (short varlena, low bit set on little-endian) or 4 bytes.
    let (header_len, total) = match varlena.first() {
        Some(&b) if b & 0x01 == 0x01 && cfg!(target_endian = "little") => (1, (b >> 1) as usize),
        Some(_) => (4, (read_u32(varlena, 0)? >> 2) as usize),
        None => return Err(corrupt()),
    };
    let data = varlena.get(header_len..total).ok_or_else(corrupt)?;
    let n_header = u16::from_ne_bytes([*data.first().ok_or_else(corrupt)?, *data.get(1).ok_or_else(corrupt)?]);
    let (negative, dscale, weight, digits_at) = match n_header & 0xC000 {
        0x8000 => {
            // Short format: sign, display scale and a 7-bit weight in one word.
            let weight_bits = (n_header & 0x003F) as i32;
            let weight = if n_header & 0x0040 != 0 { weight_bits - 64 } else { weight_bits };
            (n_header & 0x2000 != 0, ((n_header & 0x1F80) >> 7) as usize, weight, 2)
        }
        0xC000 => return Err(Error::invalid("vars contains NaN or Infinity, which JSON cannot hold")),
        sign => {
            let w = data.get(2..4).ok_or_else(corrupt)?;
            (sign == 0x4000, (n_header & 0x3FFF) as usize, i16::from_ne_bytes([w[0], w[1]]) as i32, 4)
        }
    };
    let digits = &data[digits_at.min(data.len())..];
    let ndigits = digits.len() / 2;
    let digit = |i: i32| -> u16 {
        if i >= 0 && (i as usize) < ndigits {
            u16::from_ne_bytes([digits[2 * i as usize], digits[2 * i as usize + 1]])
        } else {
            0
        }
    };

    let mut out = String::with_capacity(8);
    if negative && ndigits > 0 {
        out.push('-');
    }
    // Integer part: base-10000 groups 0..=weight.
    if weight < 0 {
        out.push('0');
    } else {
        for d in 0..=weight {
            if d == 0 {
                write!(out, "{}", digit(d)).expect("write to String");
            } else {
                write!(out, "{:04}", digit(d)).expect("write to String");
            }
        }
    }
    // Fraction: `dscale` decimal digits, from the groups after the point.
    if dscale > 0 {
        out.push('.');
        let mut frac = String::with_capacity(dscale + 4);
        let mut d = weight + 1;
        while frac.len() < dscale {
            write!(frac, "{:04}", digit(d)).expect("write to String");
            d += 1;
        }
        frac.truncate(dscale);
        out.push_str(&frac);
    }
    if out == "-0" {
        out = "0".into();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a 4-byte-header numeric varlena in long format.
    fn numeric_long(negative: bool, dscale: u16, weight: i16, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        let len = 4 + 4 + 2 * digits.len();
        v.extend_from_slice(&((len as u32) << 2).to_ne_bytes());
        v.extend_from_slice(&((if negative { 0x4000 } else { 0 }) | dscale).to_ne_bytes());
        v.extend_from_slice(&weight.to_ne_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_ne_bytes());
        }
        v
    }

    /// Builds a 1-byte-header numeric varlena in short format.
    fn numeric_short(negative: bool, dscale: u16, weight: i8, digits: &[u16]) -> Vec<u8> {
        let mut v = Vec::new();
        let len = 1 + 2 + 2 * digits.len();
        v.push(((len as u8) << 1) | 1);
        let w = (weight as i16 as u16) & 0x007F;
        let header = 0x8000 | if negative { 0x2000 } else { 0 } | (dscale << 7) | w;
        v.extend_from_slice(&header.to_ne_bytes());
        for d in digits {
            v.extend_from_slice(&d.to_ne_bytes());
        }
        v
    }

    #[test]
    fn numerics_print_like_numeric_out() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (numeric_short(false, 0, 0, &[7]), "7"),
            (numeric_short(true, 0, 0, &[7]), "-7"),
            (numeric_short(false, 0, 1, &[12, 3456]), "123456"),
            (numeric_short(false, 2, 0, &[0, 2000]), "0.20"),
            (numeric_short(false, 1, 0, &[3, 1400]), "3.1"),
            (numeric_short(false, 3, -1, &[50]), "0.005"),
            (numeric_short(false, 0, 0, &[]), "0"),
            (numeric_long(false, 0, 4, &[9, 2233, 7203, 6854, 7758]), "92233720368547758"),
            (numeric_long(true, 5, 0, &[1, 2345, 6000]), "-1.23456"),
            (numeric_long(false, 0, 5, &[1]), "100000000000000000000"),
        ];
        for (bytes, want) in cases {
            assert_eq!(numeric_text(&bytes).unwrap(), want);
        }
    }

    #[test]
    fn numbers_become_ints_or_doubles_like_a_json_parser() {
        assert_eq!(Number::decode(&numeric_short(false, 0, 0, &[7])).unwrap(), Number::I64(7));
        assert_eq!(Number::decode(&numeric_short(false, 2, 0, &[0, 2000])).unwrap(), Number::F64(0.2));
        assert_eq!(
            Number::decode(&numeric_long(false, 0, 4, &[1844, 6744, 737, 955, 1615])).unwrap(),
            Number::U64(18446744073709551615)
        );
        assert_eq!(Number::decode(&numeric_long(false, 0, 5, &[1])).unwrap(), Number::I128(100000000000000000000));
        assert_eq!(Number::decode(&numeric_long(false, 0, 10, &[1])).unwrap(), Number::F64(1e40));
    }

    #[test]
    fn specials_and_garbage_are_errors_not_panics() {
        assert!(numeric_text(&[]).is_err());
        assert!(numeric_text(&[0x09, 0x00]).is_err());
        let mut nan = Vec::new();
        nan.extend_from_slice(&(6u32 << 2).to_ne_bytes());
        nan.extend_from_slice(&0xC000u16.to_ne_bytes());
        assert!(numeric_text(&nan).is_err());
        assert!(Jsonb::parse(&[]).is_err());
        assert!(Jsonb::parse(&[1, 2, 3]).is_err());
        // An object header claiming more entries than there are bytes.
        assert!(Jsonb::parse(&(JB_FOBJECT | 1000).to_ne_bytes()).is_err());
    }
}
