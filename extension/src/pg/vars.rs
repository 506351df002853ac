//! The `vars` arguments of the render functions: `jsonb`, or JSON text
//! (`text` or `json`) whose keys keep the order the caller wrote.
//!
//! pgrx's own `JsonB` converts through `jsonb_out` and serde_json, costs more
//! than a render, and panics on documents serde_json refuses. These types keep
//! the datum and read it in place (binary jsonb through `crate::jsonb`, text
//! through `render::json_text`): size checked before detoasting, every
//! failure a documented SQLSTATE.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::{pg_sys, FromDatum};

use crate::error::{Error, ErrorKind, Result};
use crate::jsonb::{Doc, Jsonb};
use crate::render::json_text::TextVars;

/// Declares a varlena argument type kept as its datum.
macro_rules! varlena_arg {
    ($(#[$doc:meta])* $name:ident, $sql:literal) => {
        $(#[$doc])*
        pub struct $name(pg_sys::Datum);

        impl FromDatum for $name {
            unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
                (!is_null).then_some($name(datum))
            }
        }

        // SAFETY: declared in SQL as this type, and only ever built from its datum.
        unsafe impl<'fcx> ArgAbi<'fcx> for $name {
            unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
                unsafe { arg.unbox_arg_using_from_datum().expect(concat!("a NULL ", $sql, " reached a non-null argument")) }
            }

            unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }

        pgrx::impl_sql_translatable!($name, arg_only = $sql);
    };
}

varlena_arg!(
    /// A `jsonb` argument, not yet converted.
    JsonbArg,
    "jsonb"
);
varlena_arg!(
    /// A `json` argument: JSON text as the caller wrote it.
    JsonArg,
    "json"
);
varlena_arg!(
    /// A `text` argument holding JSON (what an untyped literal becomes).
    TextArg,
    "text"
);

impl JsonbArg {
    /// Size of the stored jsonb, without detoasting it.
    pub fn size(&self) -> usize {
        size(self.0)
    }

    /// The datum as the executor passed it.
    pub fn datum(&self) -> pg_sys::Datum {
        self.0
    }

    /// The document, read in place (see `jsonb`), refusing documents over
    /// `max_bytes` before detoasting them.
    pub fn doc(&self, max_bytes: usize) -> Result<Doc<'_>> {
        Doc::new(Jsonb::parse(bytes(self.0, max_bytes, "vars", "pgprompt.max_vars_bytes")?)?)
    }

    /// The document as serde_json's value, `what` naming it in errors: a
    /// document nested deeper than `jsonb::MAX_DEPTH` is 54000, where
    /// pgrx's `JsonB` would fail with an internal error.
    pub fn to_json(&self, what: &str) -> Result<serde_json::Value> {
        Jsonb::parse(bytes(self.0, usize::MAX, what, "")?)?.to_json().map_err(|e| match e.kind {
            ErrorKind::LimitExceeded => Error::new(
                ErrorKind::LimitExceeded,
                format!("{what} nests deeper than {} levels", crate::jsonb::MAX_DEPTH),
            ),
            _ => e,
        })
    }

    /// What kind of JSON value the argument is ("an object", "an array", ...).
    pub fn type_name(&self) -> Result<&'static str> {
        Ok(Jsonb::parse(bytes(self.0, usize::MAX, "jsonb", "")?)?.type_name())
    }
}

/// Vars as JSON text, keys in written order (22P02 bad JSON, 22030 a
/// repeated key, 54000 over `max_bytes`).
pub trait JsonTextArg {
    fn datum(&self) -> pg_sys::Datum;

    /// The vars, checked and indexed where they are (see `TextVars`).
    fn vars(&self, max_bytes: usize) -> Result<TextVars<'_>> {
        let text = std::str::from_utf8(bytes(self.datum(), max_bytes, "vars", "pgprompt.max_vars_bytes")?)
            .map_err(|_| Error::new(ErrorKind::InvalidOutput, "vars are not valid UTF-8"))?;
        TextVars::new(text)
    }
}

impl JsonTextArg for JsonArg {
    fn datum(&self) -> pg_sys::Datum {
        self.0
    }
}

impl JsonTextArg for TextArg {
    fn datum(&self) -> pg_sys::Datum {
        self.0
    }
}

/// Size of a varlena datum, without detoasting it.
fn size(datum: pg_sys::Datum) -> usize {
    // SAFETY: the datum is a varlena handed to us by the executor.
    unsafe { pg_sys::toast_raw_datum_size(datum) }
}

/// The bytes of a varlena argument, refusing values over `max_bytes`
/// before detoasting them.
fn bytes<'a>(datum: pg_sys::Datum, max_bytes: usize, what: &str, setting: &str) -> Result<&'a [u8]> {
    // SAFETY: the datum points at a varlena for the duration of the call; a
    // detoasted copy (if any) is palloc'd in the function's memory context,
    // which outlives this argument.
    unsafe {
        let ptr = datum.cast_mut_ptr::<u8>();
        // Plain in-line values (almost all vars: a 1-byte header, or an
        // uncompressed 4-byte one) are read where they are. Only TOAST
        // pointers (0x01) and compressed values (low bits 10) are detoasted,
        // after checking their size.
        let first = *ptr;
        let extended = first == 0x01 || first & 0x03 == 0x02;
        let ptr = if extended {
            let size = size(datum);
            if size > max_bytes {
                return Err(Error::limit(what, size, max_bytes, setting));
            }
            pg_sys::pg_detoast_datum_packed(ptr.cast()).cast::<u8>()
        } else {
            ptr
        };
        let (header, len) = if *ptr & 0x01 == 0x01 {
            (1usize, (*ptr >> 1) as usize)
        } else {
            (4usize, (u32::from_ne_bytes([*ptr, *ptr.add(1), *ptr.add(2), *ptr.add(3)]) >> 2) as usize)
        };
        let data = len.saturating_sub(header);
        if data > max_bytes {
            return Err(Error::limit(what, data, max_bytes, setting));
        }
        Ok(std::slice::from_raw_parts(ptr.add(header), data))
    }
}
