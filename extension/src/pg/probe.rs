//! Reading one row through a btree index without planning a query.
//!
//! A kept plan still starts an executor on every run: for prompt_score's
//! two lookups (the scored call among the month partitions, the score in
//! force at the end of its chain) that start-up cost more than the index
//! descents themselves. Here a lookup is the descent alone, with the
//! access checks the executor would make: the caller's SELECT privilege,
//! and no lookup at all (the caller goes through SQL) when row security
//! applies.

use std::cell::RefCell;
use std::ffi::CStr;
use std::rc::Rc;

use pgrx::pg_sys::{self, Oid};
use pgrx::FromDatum;

use super::invalidation::{self, Channel};

/// An equality condition on one column of an index.
pub struct Key {
    /// The index column, from 1.
    pub column: i16,
    /// The equality function (`pg_sys::F_INT8EQ`, `F_TEXTEQ` ...).
    pub function: u32,
    pub value: pg_sys::Datum,
}

/// The row found, readable while the index scan that found it is open.
pub struct Found {
    slot: *mut pg_sys::TupleTableSlot,
}

impl Found {
    /// Column `attno` as the datum it is; `None` when NULL.
    pub fn datum(&self, attno: i16) -> Option<pg_sys::Datum> {
        let mut null = false;
        // SAFETY: the slot holds the found tuple.
        let d = unsafe { pg_sys::slot_getattr(self.slot, attno as i32, &mut null) };
        (!null).then_some(d)
    }

    /// Column `attno` (the heap's attribute number) as a Rust value; `None`
    /// when NULL.
    ///
    /// # Safety
    /// `T` is the column's type.
    pub unsafe fn get<T: FromDatum>(&self, attno: i16) -> Option<T> {
        let mut null = false;
        // SAFETY: the slot holds the found tuple; the value is copied out
        // (by-reference types into the current memory context).
        unsafe {
            let d = pg_sys::slot_getattr(self.slot, attno as i32, &mut null);
            if null { None } else { T::from_datum(d, false) }
        }
    }
}

/// Where a relation's columns are: each, and all (when all are there).
#[derive(Clone)]
struct Layout {
    each: Rc<[Option<i16>]>,
    all: Option<Rc<[i16]>>,
}

thread_local! {
    /// Where each relation's columns are, by relation and list of columns
    /// asked for, found under the generation kept.
    static COLUMNS: RefCell<(u64, Vec<(Oid, usize, Layout)>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// The attribute numbers of `columns` (names and types) in `rel`; `None`
/// when one is missing or of another type.
pub fn columns(rel: pg_sys::Relation, columns: &'static [(&'static str, Oid)]) -> Option<Rc<[i16]>> {
    layout(rel, columns).all
}

/// The attribute number of each of `columns` (names and types) in `rel`,
/// `None` for one that is missing or of another type.
pub fn columns_if_any(rel: pg_sys::Relation, columns: &'static [(&'static str, Oid)]) -> Rc<[Option<i16>]> {
    layout(rel, columns).each
}

/// Kept per session until `rel` (or any relation pgprompt watches) changes.
fn layout(rel: pg_sys::Relation, columns: &'static [(&'static str, Oid)]) -> Layout {
    let generation = invalidation::generation(Channel::Executions);
    // SAFETY: an open relation.
    let oid = unsafe { (*rel).rd_id };
    let list = columns.as_ptr() as usize;
    COLUMNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != generation {
            *c = (generation, Vec::new());
        }
        if let Some((.., layout)) = c.1.iter().find(|(o, l, _)| *o == oid && *l == list) {
            return layout.clone();
        }
        let each: Rc<[Option<i16>]> = columns.iter().map(|&(name, ty)| column(rel, name, ty)).collect();
        let all = each.iter().copied().collect::<Option<Rc<[i16]>>>();
        let layout = Layout { each, all };
        invalidation::watch_also(Channel::Executions, oid.to_u32());
        c.1.push((oid, list, layout.clone()));
        layout
    })
}

/// Whether `rel` has a column `name` (of any type).
pub fn has_column(rel: pg_sys::Relation, name: &str) -> bool {
    // SAFETY: an open relation's descriptor.
    let attrs = unsafe { super::direct::desc_attrs((*rel).rd_att) };
    attrs.iter().any(|a| {
        // SAFETY: attname is a NUL-terminated NameData.
        !a.attisdropped && unsafe { CStr::from_ptr(a.attname.data.as_ptr()) }.to_bytes() == name.as_bytes()
    })
}

/// The attribute number of column `name` of `rel`, if it has that type.
fn column(rel: pg_sys::Relation, name: &str, ty: Oid) -> Option<i16> {
    // SAFETY: an open relation's descriptor.
    let attrs = unsafe { super::direct::desc_attrs((*rel).rd_att) };
    attrs
        .iter()
        .position(|a| {
            // SAFETY: attname is a NUL-terminated NameData.
            let n = unsafe { CStr::from_ptr(a.attname.data.as_ptr()) };
            !a.attisdropped && n.to_bytes() == name.as_bytes() && a.atttypid == ty
        })
        .map(|i| i as i16 + 1)
}

/// The primary key index of `table`, if it has one.
///
/// # Safety
/// `table` is open.
pub unsafe fn primary_key(table: pg_sys::Relation) -> Option<Oid> {
    unsafe {
        // Reading the index list fills in rd_pkindex.
        pg_sys::list_free(pg_sys::RelationGetIndexList(table));
        let pk = (*table).rd_pkindex;
        (pk != Oid::INVALID).then_some(pk)
    }
}

thread_local! {
    /// Relations looked up by name, with the generation they were found
    /// under: a session's lookups cost two catalog searches each otherwise.
    static RELATIONS: RefCell<(u64, Vec<(&'static CStr, Option<Oid>)>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// The relation `name` of pgprompt's schema, if it exists.
pub fn relation(name: &'static CStr) -> Option<Oid> {
    invalidation::accept();
    let generation = invalidation::generation(Channel::Executions);
    RELATIONS.with(|r| {
        let mut r = r.borrow_mut();
        if r.0 != generation {
            *r = (generation, Vec::new());
        }
        if let Some((_, oid)) = r.1.iter().find(|(n, _)| *n == name) {
            return *oid;
        }
        // SAFETY: catalog lookups.
        let oid = unsafe {
            let schema = pg_sys::get_namespace_oid(c"pgprompt".as_ptr(), false);
            let oid = pg_sys::get_relname_relid(name.as_ptr(), schema);
            (oid != Oid::INVALID).then_some(oid)
        };
        // Found, a drop or rename of it moves the generation on; not found,
        // the schema's creation of anything does (a new relation's first
        // relcache entry is built, not invalidated, so none is kept).
        if let Some(o) = oid {
            invalidation::watch_also(Channel::Executions, o.to_u32());
            r.1.push((name, oid));
        }
        oid
    })
}

/// Whether the current user may read `table` and no row security applies
/// to it: then an index lookup sees what a query would.
///
/// # Safety
/// `table` is open.
pub unsafe fn readable(table: pg_sys::Relation) -> bool {
    unsafe {
        let form = &*(*table).rd_rel;
        !form.relrowsecurity
            && pg_sys::pg_class_aclcheck((*table).rd_id, pg_sys::GetUserId(), pg_sys::ACL_SELECT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// Whether `index` is a btree index of `table` whose leading columns are
/// `columns` (heap attribute numbers), in that order.
///
/// # Safety
/// Both relations are open.
pub unsafe fn leads_with(index: pg_sys::Relation, table: pg_sys::Relation, columns: &[i16]) -> bool {
    unsafe {
        let form = &*(*index).rd_index;
        (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
            && form.indrelid == (*table).rd_id
            && form.indisvalid
            && form.indnkeyatts as usize >= columns.len()
            && form.indkey.values.as_slice(columns.len()) == columns
    }
}

/// The first row of `table` that `index` finds for `keys` (the last with
/// `backward`) and `snapshot` sees, read by `read`.
///
/// # Safety
/// Both relations are open and locked, `index` is a btree index of `table`
/// (`leads_with`), each key's function is the equality of its column's
/// type and `value` a datum of that type; `snapshot` is registered.
pub unsafe fn first<R>(
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    keys: &[Key],
    backward: bool,
    snapshot: pg_sys::Snapshot,
    read: impl FnOnce(&Found) -> R,
) -> Option<R> {
    unsafe {
        let mut scankeys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(keys.len());
        for key in keys {
            let mut sk = std::mem::zeroed::<pg_sys::ScanKeyData>();
            // Compared as the index compares: with its column's collation.
            let collation = *(*index).rd_indcollation.add(key.column as usize - 1);
            pg_sys::ScanKeyEntryInitialize(
                &mut sk,
                0,
                key.column,
                pg_sys::BTEqualStrategyNumber as u16,
                Oid::INVALID,
                collation,
                Oid::from(key.function),
                key.value,
            );
            scankeys.push(sk);
        }
        let n = keys.len() as i32;
        #[cfg(feature = "pg18")]
        let scan = pg_sys::index_beginscan(table, index, snapshot, std::ptr::null_mut(), n, 0);
        #[cfg(not(feature = "pg18"))]
        let scan = pg_sys::index_beginscan(table, index, snapshot, n, 0);
        pg_sys::index_rescan(scan, scankeys.as_mut_ptr(), n, std::ptr::null_mut(), 0);
        let slot = pg_sys::table_slot_create(table, std::ptr::null_mut());
        let direction = if backward { pg_sys::ScanDirection::BackwardScanDirection } else { pg_sys::ScanDirection::ForwardScanDirection };
        let found = pg_sys::index_getnext_slot(scan, direction, slot).then(|| read(&Found { slot }));
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        found
    }
}

/// A snapshot for lookups as a volatile function's statement takes one:
/// after the command counter moved on, so that what the calling statement
/// wrote so far is seen. Unregistered when dropped.
pub struct Snapshot(pg_sys::Snapshot);

impl Snapshot {
    pub fn take() -> Snapshot {
        // SAFETY: what SPI does before each statement that is not read-only.
        unsafe {
            pg_sys::CommandCounterIncrement();
            Snapshot(pg_sys::RegisterSnapshot(pg_sys::GetTransactionSnapshot()))
        }
    }

    pub fn get(&self) -> pg_sys::Snapshot {
        self.0
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: registered in `take`.
        unsafe { pg_sys::UnregisterSnapshot(self.0) };
    }
}

/// Whether the transaction reads from one snapshot (REPEATABLE READ or
/// SERIALIZABLE): lookups and conflicts then follow rules (predicate locks,
/// serialization failures) only the executor applies.
pub fn snapshot_per_transaction() -> bool {
    // SAFETY: reading a global of this backend.
    unsafe { pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 }
}

/// A table or index opened and locked for this transaction; closed (the
/// lock kept until the transaction ends, as a query's) when dropped.
pub struct Opened(pub pg_sys::Relation);

impl Opened {
    /// Opens a table with AccessShareLock, as a query reading it does.
    pub fn table(oid: Oid) -> Opened {
        Opened::table_locked(oid, pg_sys::AccessShareLock)
    }

    /// Opens a table with `lock` (RowExclusiveLock for one about to be
    /// written too: one lock rather than two).
    pub fn table_locked(oid: Oid, lock: u32) -> Opened {
        // SAFETY: locks and opens by OID (ERROR if it is gone).
        Opened(unsafe { pg_sys::table_open(oid, lock as i32) })
    }

    /// Opens an index with AccessShareLock, as an index scan does.
    pub fn index(oid: Oid) -> Opened {
        Opened::index_locked(oid, pg_sys::AccessShareLock)
    }

    /// Opens an index with `lock` (see `table_locked`).
    pub fn index_locked(oid: Oid, lock: u32) -> Opened {
        // SAFETY: as `table`.
        Opened(unsafe { pg_sys::index_open(oid, lock as i32) })
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        // SAFETY: opened above; closing keeps the lock.
        unsafe { pg_sys::relation_close(self.0, pg_sys::NoLock as i32) };
    }
}
