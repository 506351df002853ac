//! The `vars jsonb` argument of the render functions.
//!
//! pgrx's own `JsonB` converts through `jsonb_out` and serde_json, costs more
//! than a render, and panics on documents serde_json refuses. This type keeps
//! the datum and reads the binary jsonb in place (`crate::jsonb`): size
//! checked first, every failure a documented SQLSTATE.

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::{pg_sys, FromDatum};

use crate::error::{Error, Result};
use crate::jsonb::{Doc, Jsonb};

/// A `jsonb` argument, not yet converted.
pub struct JsonbArg(pg_sys::Datum);

impl FromDatum for JsonbArg {
    unsafe fn from_polymorphic_datum(datum: pg_sys::Datum, is_null: bool, _: pg_sys::Oid) -> Option<Self> {
        (!is_null).then_some(JsonbArg(datum))
    }
}

// SAFETY: declared in SQL as jsonb, and only ever built from a jsonb datum.
unsafe impl<'fcx> ArgAbi<'fcx> for JsonbArg {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        unsafe { arg.unbox_arg_using_from_datum().expect("a NULL jsonb reached a non-null argument") }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

pgrx::impl_sql_translatable!(JsonbArg, arg_only = "jsonb");

impl JsonbArg {
    /// Size of the stored jsonb, without detoasting it.
    pub fn size(&self) -> usize {
        // SAFETY: the datum is a jsonb varlena handed to us by the executor.
        unsafe { pg_sys::toast_raw_datum_size(self.0) }
    }

    /// The datum as the executor passed it.
    pub fn datum(&self) -> pg_sys::Datum {
        self.0
    }

    /// The document, read in place (see `jsonb`), refusing documents over
    /// `max_bytes` before detoasting them.
    pub fn doc(&self, max_bytes: usize) -> Result<Doc<'_>> {
        Doc::new(self.parse(max_bytes, "vars", "pgprompt.max_vars_bytes")?)
    }

    /// What kind of JSON value the argument is ("an object", "an array", ...).
    pub fn type_name(&self) -> Result<&'static str> {
        Ok(self.parse(usize::MAX, "jsonb", "")?.type_name())
    }

    fn parse(&self, max_bytes: usize, what: &str, setting: &str) -> Result<Jsonb<'_>> {
        // SAFETY: the datum points at a jsonb varlena for the duration of the
        // call; a detoasted copy (if any) is palloc'd in the function's memory
        // context, which outlives this argument.
        let bytes = unsafe {
            let ptr = self.0.cast_mut_ptr::<u8>();
            // Plain in-line values (almost all vars: a 1-byte header, or an
            // uncompressed 4-byte one) are read where they are. Only TOAST
            // pointers (0x01) and compressed values (low bits 10) are detoasted,
            // after checking their size.
            let first = *ptr;
            let extended = first == 0x01 || first & 0x03 == 0x02;
            let ptr = if extended {
                let size = self.size();
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
            std::slice::from_raw_parts(ptr.add(header), data)
        };
        Jsonb::parse(bytes)
    }
}
