//! Per-session caches kept coherent by PostgreSQL's own invalidation messages.
//!
//! Reading a table on every call costs more than rendering or scanning, so
//! sessions cache what they read (which version a template name means, the
//! compiled guardrails). Statement triggers on the tables behind a cache call
//! `_invalidate_caches(channel)`, which queues a relcache invalidation of the
//! channel's table. PostgreSQL delivers it to every session at commit (to
//! the own session at the end of each command, and again on abort), exactly
//! as it keeps its catalog caches coherent; hot standbys receive it from the
//! WAL. A callback bumps the channel's generation; caches built under an
//! older generation are dropped.
//!
//! Readers call `accept()` first, then read with `fresh_snapshot()` on a
//! miss. A committer becomes visible before it sends its invalidation, never
//! after, so a cache filled after `accept()` is at least as new as every
//! change whose invalidation was seen, and can never be poisoned by an older
//! snapshot. A statement that starts after a change committed sees it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::LocalKey;

use pgrx::prelude::*;

/// What a cache follows: each is one table's relcache entry.
#[derive(Debug, Clone, Copy)]
pub enum Channel {
    /// prompt_templates (with prompt_versions and prompt_labels).
    Templates = 0,
    /// prompt_guardrails.
    Guardrails = 1,
    /// prompt_model_prices.
    Prices = 2,
    /// prompt_executions: its relcache entry changes when a partition is
    /// attached or dropped.
    Executions = 3,
    /// ab_test_experiments.
    Experiments = 4,
    /// prompt_score_definitions.
    ScoreDefinitions = 5,
}

const CHANNELS: usize = 6;

static GENERATION: [AtomicU64; CHANNELS] = [const { AtomicU64::new(0) }; CHANNELS];
/// OID of each channel's table as last seen (0: not yet known, so any
/// invalidation counts).
static WATCHED: [AtomicU32; CHANNELS] = [const { AtomicU32::new(0) }; CHANNELS];

thread_local! {
    /// More tables a channel follows besides its own (the partitions of
    /// prompt_executions).
    static ALSO: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // Unable to look (the list is being updated): count it as a match.
    let also = |ch: usize| ALSO.with(|a| a.try_borrow().map_or(true, |a| a.contains(&(ch, relid.to_u32()))));
    for ch in 0..CHANNELS {
        let watched = WATCHED[ch].load(Ordering::Relaxed);
        if relid == pg_sys::Oid::INVALID || watched == 0 || relid.to_u32() == watched || also(ch) {
            GENERATION[ch].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A function or a type changed: what `direct` planned from the
/// constraints and defaults of prompt_executions may use it.
#[pg_guard]
unsafe extern "C-unwind" fn on_syscache_invalidation(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    GENERATION[Channel::Executions as usize].fetch_add(1, Ordering::Relaxed);
}

/// Registers the invalidation callbacks (from _PG_init).
pub fn init() {
    // SAFETY: registering callbacks is what _PG_init is for; they live as long as the library.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), pg_sys::Datum::from(0));
        for cache in [pg_sys::SysCacheIdentifier::PROCOID, pg_sys::SysCacheIdentifier::TYPEOID] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_syscache_invalidation), pg_sys::Datum::from(0));
        }
    }
}

/// Processes pending invalidation messages (cheap when there are none).
pub fn accept() {
    // SAFETY: what every lock acquisition does.
    unsafe { pg_sys::AcceptInvalidationMessages() };
}

/// The channel's current generation.
pub fn generation(ch: Channel) -> u64 {
    GENERATION[ch as usize].load(Ordering::Relaxed)
}

/// Records the OID of the channel's table (read alongside the data).
pub fn watch(ch: Channel, oid: u32) {
    WATCHED[ch as usize].store(oid, Ordering::Relaxed);
}

/// Makes a change of one more table move the channel on too.
pub fn watch_also(ch: Channel, oid: u32) {
    ALSO.with(|a| {
        let mut a = a.borrow_mut();
        if !a.contains(&(ch as usize, oid)) {
            a.push((ch as usize, oid));
        }
    });
}

/// Runs `f` with a snapshot taken now as the active one, so what it reads is
/// at least as new as every invalidation accepted before. Not in parallel
/// mode, where snapshots cannot be taken: callers must not cache then.
pub fn fresh_snapshot<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: pushed and popped around `f`; an ERROR inside unwinds the
    // active snapshot stack at transaction abort.
    unsafe {
        if pg_sys::IsInParallelMode() {
            return f();
        }
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
    }
    let r = f();
    // SAFETY: pops what was pushed above.
    unsafe { pg_sys::PopActiveSnapshot() };
    r
}

/// Whether results read now may be cached (not in a parallel worker).
pub fn may_cache() -> bool {
    // SAFETY: plain status query.
    !unsafe { pg_sys::IsInParallelMode() }
}

/// A session's copy of something built from a channel's table, with the
/// generation it was built under.
pub type Slot<T> = RefCell<Option<(u64, Rc<T>)>>;

/// The value in `slot`, rebuilt with `build` (under a fresh snapshot) when
/// the channel moved on since it was built. `build` should `watch` the
/// channel's table.
pub fn cached<T>(slot: &'static LocalKey<Slot<T>>, ch: Channel, build: impl FnOnce() -> T) -> Rc<T> {
    accept();
    let generation = generation(ch);
    let current = slot.with(|s| s.borrow().as_ref().filter(|(g, _)| *g == generation).map(|(_, v)| v.clone()));
    if let Some(v) = current {
        return v;
    }
    let cacheable = may_cache();
    let v = Rc::new(fresh_snapshot(build));
    if cacheable {
        slot.with(|s| *s.borrow_mut() = Some((generation, v.clone())));
    }
    v
}

/// Tells every session, at commit, that the caches following `channel`
/// (a table: prompt_templates or prompt_guardrails) are out of date. Called
/// by statement triggers.
#[pg_extern(volatile, parallel_unsafe)]
fn _invalidate_caches(channel: pg_sys::Oid) {
    // SAFETY: queues an invalidation message for the current transaction.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(channel) };
}
