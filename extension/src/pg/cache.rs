//! The per-session caches behind rendering. Both are pgrx-free.
//!
//! * Compiled templates, keyed by the immutable version id. A version's body
//!   never changes, so a cached compile can never be stale. A stamp of the
//!   row (its table's OID and its xmin) is kept beside the id, so ids reused
//!   after DROP and CREATE EXTENSION, even twice in one transaction (same
//!   xmin, new table), never match an old entry. Least recently used entries
//!   go once `pgprompt.cache_size` is reached.
//! * Resolutions: which version id a (template, version-or-label) currently
//!   means. They are dropped whenever the invalidation generation moves; the
//!   PostgreSQL layer moves it from a relcache invalidation callback, which
//!   every session runs for every committed change to templates, versions or
//!   labels (see `templates.rs` for why this is exact). There is no TTL.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::error::Result;
use crate::json_schema::Schema;
use crate::render::{Compiled, Engine, Kind, Options};

/// rustc's FxHash. The keys are template names and version ids from the
/// database, not attacker-chosen input, so SipHash's flood resistance buys
/// nothing here, while hashing showed up in the render profile.
#[derive(Default)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct Entry {
    stamp: u64,
    compiled: Compiled,
    /// The version's model configuration as stored (jsonb's binary form,
    /// without the header), which prompt_render_for returns as it is.
    config: Vec<u8>,
    last_used: u64,
}

/// What a version is compiled from, as the resolving queries read it.
pub struct Source {
    pub kind: Kind,
    pub body: String,
    pub options: Options,
    /// model_config's jsonb bytes (see `Entry::config`).
    pub config: Vec<u8>,
    /// The input schema vars must match, if the version has one.
    pub input_schema: Option<serde_json::Value>,
}

/// Hits, misses and size, for `prompt_cache_stats()`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    pub evictions: u64,
    pub entries: usize,
    pub source_bytes: usize,
}

pub struct Cache {
    engine: Engine,
    entries: FxMap<i64, Entry>,
    clock: u64,
    stats: Stats,
}

impl Default for Cache {
    fn default() -> Self {
        Cache { engine: Engine::new(), entries: FxMap::default(), clock: 0, stats: Stats::default() }
    }
}

impl Cache {
    /// Looks up version `id` (whose row has `stamp`), compiling it with the
    /// body `load` returns on a miss, then runs `f` on the engine and result.
    pub fn with_compiled<R>(
        &mut self,
        id: i64,
        stamp: u64,
        capacity: usize,
        load: impl FnOnce() -> Result<Source>,
        f: impl FnOnce(&mut Engine, &Compiled) -> Result<R>,
    ) -> Result<R> {
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(&id).filter(|e| e.stamp == stamp) {
            self.stats.hits += 1;
            entry.last_used = self.clock;
            return f(&mut self.engine, &entry.compiled);
        }
        self.stats.misses += 1;
        if let Some(old) = self.entries.remove(&id) {
            self.engine.remove(&old.compiled);
        }
        while self.entries.len() >= capacity.max(1) {
            self.evict_oldest();
        }
        let Source { kind, body, options, config, input_schema } = load()?;
        let mut compiled = self.engine.compile(&id.to_string(), kind, &body, options)?;
        if let Some(schema) = input_schema {
            match Schema::compile(&schema, "the version's input_schema") {
                Ok(s) => compiled.input_schema = Some(s),
                Err(e) => {
                    self.engine.remove(&compiled);
                    return Err(e);
                }
            }
        }
        let entry = self.entries.entry(id).or_insert(Entry { stamp, compiled, config, last_used: self.clock });
        f(&mut self.engine, &entry.compiled)
    }

    fn evict_oldest(&mut self) {
        let Some(&id) = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(id, _)| id) else {
            return;
        };
        if let Some(old) = self.entries.remove(&id) {
            self.engine.remove(&old.compiled);
            self.stats.evictions += 1;
        }
    }

    /// The model configuration of version `id`, when it is compiled.
    pub fn config(&self, id: i64) -> Option<Vec<u8>> {
        self.entries.get(&id).map(|e| e.config.clone())
    }

    /// Whether version `id` with `stamp` is compiled already.
    pub fn contains(&self, id: i64, stamp: u64) -> bool {
        self.entries.get(&id).is_some_and(|e| e.stamp == stamp)
    }

    /// The engine alone, for renders of bodies that are not stored.
    pub fn engine(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn stats(&self) -> Stats {
        Stats {
            entries: self.entries.len(),
            source_bytes: self.entries.values().map(|e| e.compiled.source_bytes).sum(),
            ..self.stats
        }
    }

    /// Drops every entry and zeroes the counters.
    pub fn reset(&mut self) {
        *self = Cache::default();
    }
}

/// What a call asks to render, as a cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    Active,
    Version(i32),
    Label(String),
    /// The virtual label `latest`: the newest version.
    Latest,
}

/// A resolved version: its immutable id, the row's stamp and its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub id: i64,
    /// prompt_templates.id of the version's template.
    pub template_id: i64,
    /// The row's table OID (high half) and xmin (low half).
    pub stamp: u64,
    pub version: i32,
}

/// Resolutions valid for one invalidation generation.
#[derive(Default)]
pub struct Resolutions {
    generation: u64,
    by_name: FxMap<String, Vec<(Selector, Resolved)>>,
    entries: usize,
}

impl Resolutions {
    /// The cached resolution, if the generation has not moved since it was made.
    pub fn get(&mut self, generation: u64, name: &str, sel: &Selector) -> Option<Resolved> {
        if generation != self.generation {
            self.clear(generation);
            return None;
        }
        self.by_name.get(name)?.iter().find(|(s, _)| s == sel).map(|(_, r)| *r)
    }

    /// Remembers a resolution made at `generation` (ignored if that is already old).
    pub fn put(&mut self, generation: u64, name: &str, sel: Selector, r: Resolved, capacity: usize) {
        if generation != self.generation {
            return;
        }
        if self.entries >= capacity.max(1) {
            self.clear(generation);
        }
        self.by_name.entry(name.to_string()).or_default().push((sel, r));
        self.entries += 1;
    }

    fn clear(&mut self, generation: u64) {
        self.by_name.clear();
        self.entries = 0;
        self.generation = generation;
    }

    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    static RESOLUTIONS: RefCell<Resolutions> = RefCell::new(Resolutions::default());
}

/// Runs `f` with this backend's resolution cache. Never call into PostgreSQL
/// from `f`: invalidation callbacks may run there.
pub fn with_resolutions<R>(f: impl FnOnce(&mut Resolutions) -> R) -> R {
    RESOLUTIONS.with(|c| f(&mut c.borrow_mut()))
}

/// Runs `f` with this backend's cache.
pub fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> R {
    CACHE.with(|c| f(&mut c.borrow_mut()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Limits;
    use serde_json::json;

    fn text_source(body: &str) -> Source {
        Source { kind: Kind::Text, body: body.to_string(), options: Options::default(), config: Vec::new(), input_schema: None }
    }

    fn render(cache: &mut Cache, id: i64, stamp: u64, body: &str, cap: usize) -> String {
        cache
            .with_compiled(id, stamp, cap, || Ok(text_source(body)), |e, c| {
                e.render_text(c, &json!({}), &Limits::default())
            })
            .unwrap()
    }

    #[test]
    fn hits_reuse_the_compile_and_misses_load() {
        let mut c = Cache::default();
        assert_eq!(render(&mut c, 1, 10, "one", 10), "one");
        // Same id and stamp: the stored compile is used, the new body ignored.
        assert_eq!(render(&mut c, 1, 10, "ignored", 10), "one");
        assert_eq!((c.stats().hits, c.stats().misses, c.stats().entries), (1, 1, 1));
    }

    #[test]
    fn a_reused_id_with_another_stamp_recompiles() {
        let mut c = Cache::default();
        render(&mut c, 1, 10, "old", 10);
        assert_eq!(render(&mut c, 1, 11, "new", 10), "new");
        assert_eq!(c.stats().entries, 1);
    }

    #[test]
    fn least_recently_used_entries_are_evicted() {
        let mut c = Cache::default();
        render(&mut c, 1, 1, "a", 2);
        render(&mut c, 2, 1, "b", 2);
        render(&mut c, 1, 1, "a", 2); // 1 is now more recent than 2
        render(&mut c, 3, 1, "c", 2); // evicts 2
        let s = c.stats();
        assert_eq!((s.entries, s.evictions), (2, 1));
        assert_eq!(render(&mut c, 1, 1, "changed", 2), "a", "1 must still be cached");
        assert_eq!(render(&mut c, 2, 1, "b2", 2), "b2", "2 must have been evicted");
    }

    #[test]
    fn resolutions_last_one_generation() {
        let mut r = Resolutions::default();
        let a = Resolved { id: 1, template_id: 1, stamp: 1, version: 1 };
        r.put(0, "t", Selector::Active, a, 10);
        assert_eq!(r.get(0, "t", &Selector::Active), Some(a));
        assert_eq!(r.get(0, "t", &Selector::Latest), None);
        assert_eq!(r.get(0, "u", &Selector::Active), None);
        // An invalidation moved the generation: everything is forgotten.
        assert_eq!(r.get(1, "t", &Selector::Active), None);
        assert!(r.is_empty());
        // A resolution made before the move is not stored after it.
        r.put(0, "t", Selector::Active, a, 10);
        assert!(r.is_empty());
        r.put(1, "t", Selector::Label("prod".into()), a, 10);
        assert_eq!(r.get(1, "t", &Selector::Label("prod".into())), Some(a));
    }

    #[test]
    fn resolutions_are_bounded() {
        let mut r = Resolutions::default();
        for v in 1..=5 {
            r.put(0, "t", Selector::Version(v), Resolved { id: v as i64, template_id: 1, stamp: 1, version: v }, 3);
        }
        assert!(r.len() <= 3);
    }

    #[test]
    fn failed_compiles_are_not_cached() {
        let mut c = Cache::default();
        let err = c.with_compiled(1, 1, 10, || Ok(text_source("{{")), |_, _| Ok(()));
        assert!(err.is_err());
        assert_eq!(c.stats().entries, 0);
    }
}
