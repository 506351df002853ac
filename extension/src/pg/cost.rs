//! SQL functions of cost tracking: prompt_cost and the price lookup.
//!
//! Every session keeps the price book (all rows of prompt_model_prices,
//! indexed by model) and reloads it only after the table changed, so a
//! cost costs a hash lookup, not a query.

use std::cell::RefCell;
use std::rc::Rc;

use pgrx::prelude::*;
use pgrx::AnyNumeric;

use super::invalidation::{self, Channel};
use super::raise::{self, OrRaise};
use crate::cost::{self, Dec, Price, PriceBook, Rates, Usage};
use crate::error::Result;

thread_local! {
    static BOOK: invalidation::Slot<PriceBook> = const { RefCell::new(None) };
}

/// This session's prices, reloaded if prompt_model_prices changed.
pub fn book() -> Rc<PriceBook> {
    invalidation::cached(&BOOK, Channel::Prices, || PriceBook::new(load()).or_raise())
}

fn load() -> Vec<Price> {
    Spi::connect(|client| {
        let table = client
            .select(
                "SELECT id, model, match_pattern, effective_from, \
                        input_usd_per_mtok::text, output_usd_per_mtok::text, cached_input_usd_per_mtok::text, \
                        long_context_threshold, long_input_usd_per_mtok::text, long_output_usd_per_mtok::text, \
                        long_cached_input_usd_per_mtok::text, tableoid::int8 \
                 FROM pgprompt.prompt_model_prices",
                None,
                &[],
            )
            .expect("reading prompt_model_prices");
        table
            .map(|row| {
                let text = |i: usize| row.get::<String>(i).ok().flatten();
                let dec = |i: usize| text(i).map(|s| Dec::parse(&s).or_raise());
                let rates = |i: usize| -> Option<Rates> { Some(Rates { input: dec(i)?, output: dec(i + 1)?, cached: dec(i + 2) }) };
                invalidation::watch(Channel::Prices, row.get::<i64>(12).ok().flatten().unwrap_or_default() as u32);
                Price {
                    id: row.get::<i64>(1).ok().flatten().unwrap_or_default(),
                    model: text(2).unwrap_or_default(),
                    pattern: text(3),
                    effective_from: row
                        .get::<TimestampWithTimeZone>(4)
                        .ok()
                        .flatten()
                        .map(pg_sys::TimestampTz::from)
                        .unwrap_or(i64::MAX),
                    rates: rates(5).expect("prices are NOT NULL"),
                    long: row.get::<i64>(8).ok().flatten().zip(rates(9)),
                }
            })
            .collect()
    })
}

/// The exact cost of a call, or `None` when the model has no price then.
pub fn cost_at(model: &str, usage: Usage, at: i64) -> Result<Option<Dec>> {
    let book = book();
    book.find(model, at).map(|p| cost::cost(p, usage)).transpose()
}

/// The decimal as a numeric. Built in place in numeric's short format
/// (what numeric_in makes of the printed decimal, byte for byte) when it
/// fits, since printing and parsing were 1.5% of a logged call.
pub fn numeric(d: Dec) -> AnyNumeric {
    const SHORT: u16 = 0x8000;
    const SHORT_NEGATIVE: u16 = 0x2000;
    const SHORT_WEIGHT_NEGATIVE: u16 = 0x0040;
    const SHORT_WEIGHT: u16 = 0x003F;
    match d.base10000() {
        Some((negative, weight, scale, digits)) if scale <= 63 && (-64..=63).contains(&weight) => {
            let header = SHORT
                | if negative { SHORT_NEGATIVE } else { 0 }
                | (scale as u16) << 7
                | if weight < 0 { SHORT_WEIGHT_NEGATIVE } else { 0 }
                | (weight as u16 & SHORT_WEIGHT);
            let len = pg_sys::VARHDRSZ + 2 + 2 * digits.len();
            // SAFETY: a fresh varlena of `len` bytes, filled completely.
            unsafe {
                let p = pg_sys::palloc(len).cast::<u8>();
                pgrx::set_varsize_4b(p.cast(), len as i32);
                p.add(pg_sys::VARHDRSZ).cast::<u16>().write_unaligned(header);
                for (k, digit) in digits.iter().enumerate() {
                    p.add(pg_sys::VARHDRSZ + 2 + 2 * k).cast::<i16>().write_unaligned(*digit);
                }
                AnyNumeric::from_datum(pg_sys::Datum::from(p), false).expect("a numeric datum")
            }
        }
        _ => AnyNumeric::try_from(d.to_string().as_str()).expect("a decimal prints as a numeric"),
    }
}

pub fn warn_unknown(model: &str) {
    raise::warn(
        format!("no price for model \"{model}\": its cost is NULL"),
        "Add a row to pgprompt.prompt_model_prices, or load LiteLLM's list with pgprompt.prompt_import_prices().",
    );
}

/// Exact cost in USD of a call (see the COMMENT in sql/costs.sql).
#[pg_extern(stable, parallel_safe)]
fn prompt_cost(
    model: &str,
    input_tokens: i64,
    output_tokens: i64,
    cached_input_tokens: default!(i64, 0),
    at: default!(TimestampWithTimeZone, "now()"),
) -> Option<AnyNumeric> {
    let usage = Usage::new(input_tokens, output_tokens, cached_input_tokens).or_raise();
    match cost_at(model, usage, at.into()).or_raise() {
        Some(c) => Some(numeric(c)),
        None => {
            warn_unknown(model);
            None
        }
    }
}

#[pg_extern(stable, parallel_safe)]
fn _model_price_id(model: &str, at: TimestampWithTimeZone) -> Option<i64> {
    book().find(model, at.into()).map(|p| p.id)
}

#[pg_extern(immutable, parallel_safe)]
fn _model_price_check(pattern: Option<&str>, prices: Vec<Option<String>>) {
    if let Some(p) = pattern {
        cost::check_pattern(p).or_raise();
    }
    for price in prices.iter().flatten() {
        Dec::parse(price).or_raise();
    }
}
