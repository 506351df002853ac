//! pgprompt: what an embedding program needs to run templates inside a
//! server process (not part of upstream minijinja; see PATCHES.md).
//!
//! * A tick: a function called every `TICK_UNITS` units of fuel, that is
//!   every thousand or so instructions and as filters do their work, so the
//!   host can answer a cancel request (it may panic to abort the render).
//! * Bounded nesting: every value a template builds (literals, operators,
//!   filters, functions) and every value set on a namespace may nest at
//!   most `MAX_NESTING` lists, maps and namespaces deep, and a namespace
//!   may hold no namespace. Printing, serializing, comparing and dropping
//!   values recurse into them; a namespace updated in a loop nested a list
//!   99,000 deep and overflowed the stack.

use std::sync::atomic::{AtomicPtr, Ordering::Relaxed};

use crate::error::{Error, ErrorKind};
use crate::value::namespace_object::Namespace;
use crate::value::{Tuple, Value, ValueMap, ValueRepr};

/// Fuel units between two ticks (one instruction is 64 units).
pub const TICK_UNITS: i64 = 64 * 1024;

/// How deep a value built while rendering may nest.
pub const MAX_NESTING: usize = 500;

static TICK: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());
static STACK: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

/// Sets the function the parser asks, as it recurses, whether the stack
/// is nearly used up (PostgreSQL: `stack_is_too_deep`); it must not panic.
pub fn set_stack_check(f: fn() -> bool) {
    STACK.store(f as *mut (), Relaxed);
}

#[inline]
pub(crate) fn stack_too_deep() -> bool {
    let f = STACK.load(Relaxed);
    // SAFETY: only `set_stack_check` stores here, always a `fn() -> bool`.
    !f.is_null() && unsafe { std::mem::transmute::<*mut (), fn() -> bool>(f) }()
}

/// Sets the function called every `TICK_UNITS` of fuel.
pub fn set_tick(f: fn()) {
    TICK.store(f as *mut (), Relaxed);
}

#[cold]
pub(crate) fn tick() {
    let f = TICK.load(Relaxed);
    if !f.is_null() {
        // SAFETY: only `set_tick` stores here, always a `fn()`.
        let f: fn() = unsafe { std::mem::transmute::<*mut (), fn()>(f) };
        f();
    }
}

fn too_deep() -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("value nests deeper than {MAX_NESTING} levels"),
    )
}

/// Checks that `value` nests at most `MAX_NESTING` deep and holds no
/// namespace inside a namespace. `in_namespace`: the value is being set
/// on a namespace. Walks with a stack of its own, never recursing.
pub(crate) fn check_nesting(value: &Value, in_namespace: bool) -> Result<(), Error> {
    let mut stack: Vec<(Value, usize, bool)> = Vec::new();
    let start = usize::from(in_namespace);
    push_if_container(&mut stack, value, start, in_namespace);
    while let Some((v, depth, in_ns)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err(too_deep());
        }
        let ValueRepr::Object(ref obj) = v.0 else { continue };
        if let Some(seq) = obj.downcast_ref::<Vec<Value>>() {
            for item in seq {
                push_if_container(&mut stack, item, depth + 1, in_ns);
            }
        } else if let Some(map) = obj.downcast_ref::<ValueMap>() {
            for (k, item) in map {
                push_if_container(&mut stack, k, depth + 1, in_ns);
                push_if_container(&mut stack, item, depth + 1, in_ns);
            }
        } else if let Some(tuple) = obj.downcast_ref::<Tuple>() {
            for item in tuple.iter() {
                push_if_container(&mut stack, item, depth + 1, in_ns);
            }
        } else if let Some(ns) = obj.downcast_ref::<Namespace>() {
            if in_ns {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "a namespace cannot hold another namespace",
                ));
            }
            for item in ns.values() {
                push_if_container(&mut stack, &item, depth + 1, true);
            }
        }
    }
    Ok(())
}

fn push_if_container(stack: &mut Vec<(Value, usize, bool)>, v: &Value, depth: usize, in_ns: bool) {
    if matches!(v.0, ValueRepr::Object(_)) {
        stack.push((v.clone(), depth, in_ns));
    }
}

/// pgprompt: a float as Python's `repr` and `str` write it: the shortest
/// digits that read back the same, positional from 1e-4 up to 1e16 and with
/// an exponent of at least two digits beyond, `.0` on integral values,
/// `nan`, `inf` and `-inf`.
pub fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: d.ddde[-]x.
    let sci = format!("{:e}", f);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{s}")
    } else {
        let m = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        format!("{sign}{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    }
}

/// pgprompt: whether a map is data — a dict from the vars, a literal or a
/// filter — rather than an engine object (a namespace, a macro, a loop) that
/// Python's `json.dumps` refuses.
pub fn is_data_map(v: &Value) -> bool {
    v.downcast_object_ref::<ValueMap>().is_some()
        || v.downcast_object_ref::<crate::value::merge_object::MergeDict>().is_some()
}

/// pgprompt: the Python class name of an engine object, for error messages
/// that read as Jinja2's.
pub fn python_type_name(v: &Value) -> &'static str {
    if v.downcast_object_ref::<Namespace>().is_some() {
        "Namespace"
    } else if v.downcast_object_ref::<crate::vm::macro_object::Macro>().is_some() {
        "Macro"
    } else if v.downcast_object_ref::<crate::vm::loop_object::Loop>().is_some() {
        "LoopContext"
    } else {
        "object"
    }
}

/// pgprompt: charges the fuel of visiting `n` items, for host code that
/// builds values outside the engine's filters (Python's `str.split`).
pub fn charge_items(state: &crate::State, n: usize) -> Result<(), Error> {
    state.charge_items(n)
}
