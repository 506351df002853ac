//! Appending a logged call to its month partition without planning an INSERT.
//!
//! An INSERT through SPI has a kept plan, yet every execution still sets up
//! an executor: it routes the row to its partition and re-reads every CHECK
//! constraint of the partition from its catalog text, parsing and planning
//! each one again (PostgreSQL does that once per statement; with one row per
//! statement it was 7% of the logging benchmark's time, and the executor
//! set-up another 6%). Here a session keeps, per partition, the planned
//! constraints and column defaults, and puts the row in the way COPY does:
//! PostgreSQL's own constraint checks and messages, index insertions and
//! triggers. The statistics triggers fire as for any INSERT, from the same
//! transition table.
//!
//! What this path does not handle sends the call through SPI instead: rules
//! or row security on the table, BEFORE ROW triggers, generated columns, a
//! partition shaped unlike its parent, one that no longer holds the month,
//! and the first call of each month, whose row tells which partition holds
//! the month (`learn`). Whatever changes the table, its partitions, or a
//! function or type a constraint uses drops what was kept (`invalidation`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{c_char, CStr};
use std::mem::ManuallyDrop;
use std::rc::Rc;

use pgrx::pg_sys::{self, Oid};

use super::invalidation::{self, Channel};
use super::spi;

/// What a session keeps for one partition. Shared, because a trigger
/// fired by one insert may log a call too, and find the entry stale.
struct Prepared {
    /// Holds the planned expressions; deleted with the entry.
    cxt: pg_sys::MemoryContext,
    /// Planned CHECK constraints, in the order of the relation's `constr->check`.
    checks: Vec<*mut pg_sys::Expr>,
    /// Planned defaults of the columns the caller does not give.
    defaults: Vec<(usize, *mut pg_sys::Expr)>,
    /// Attribute index of each given column.
    at: Vec<usize>,
    /// Attribute index of `id`.
    id: usize,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        // SAFETY: the context was made for this entry alone, and no one
        // holds the entry any more.
        unsafe { pg_sys::MemoryContextDelete(self.cxt) };
    }
}

struct Kept {
    generation: u64,
    /// Per partition and number of columns given (the library serves 0.1.0's
    /// shorter rows too): `None` when it must go through SPI.
    partitions: HashMap<(Oid, usize), Option<Rc<Prepared>>>,
}

thread_local! {
    /// Never dropped: at backend exit there is nothing to free.
    static KEPT: ManuallyDrop<RefCell<Kept>> = ManuallyDrop::new(RefCell::new(Kept { generation: u64::MAX, partitions: HashMap::new() }));
}

/// Drops what was kept when the table, a partition, or a function or type
/// changed since.
fn forget_if_stale() {
    let generation = invalidation::generation(Channel::Executions);
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        if k.generation != generation {
            k.partitions.clear();
            k.generation = generation;
        }
    });
}

fn name_of(attr: &pg_sys::FormData_pg_attribute) -> &CStr {
    // SAFETY: attname is a NUL-terminated NameData.
    unsafe { CStr::from_ptr(attr.attname.data.as_ptr()) }
}

fn attrs<'a>(rel: pg_sys::Relation) -> &'a [pg_sys::FormData_pg_attribute] {
    // SAFETY: an open relation's descriptor.
    unsafe { desc_attrs((*rel).rd_att) }
}

/// The attributes of a tuple descriptor, in order.
///
/// # Safety
/// `desc` is a valid tuple descriptor that outlives the slice.
pub unsafe fn desc_attrs<'a>(desc: pg_sys::TupleDesc) -> &'a [pg_sys::FormData_pg_attribute] {
    unsafe {
        let natts = (*desc).natts as usize;
        // PostgreSQL 18 keeps them after an array of compact attributes,
        // where TupleDescAttr finds them (still one array).
        #[cfg(feature = "pg18")]
        return std::slice::from_raw_parts(pg_sys::TupleDescAttr(desc, 0), natts);
        #[cfg(not(feature = "pg18"))]
        return (*desc).attrs.as_slice(natts);
    }
}

/// Plans what `part` needs, or `None` when calls must go through SPI.
///
/// # Safety
/// Both relations open and locked.
unsafe fn prepare(parent: pg_sys::Relation, part: pg_sys::Relation, columns: &[(&str, Oid)]) -> Option<Prepared> {
    unsafe {
        let (p, r) = (&*(*parent).rd_rel, &*(*part).rd_rel);
        if p.relkind != pg_sys::RELKIND_PARTITIONED_TABLE as c_char
            || r.relkind != pg_sys::RELKIND_RELATION as c_char
            || !r.relispartition
            || p.relrowsecurity
            || !(*parent).rd_rules.is_null()
            || !(*part).rd_rules.is_null()
        {
            return None;
        }
        for rel in [parent, part] {
            let t = (*rel).trigdesc;
            if !t.is_null() && ((*t).trig_insert_before_row || (*t).trig_insert_instead_row) {
                return None;
            }
        }
        // Still a partition of this table.
        let desc = pg_sys::RelationGetPartitionDesc(parent, true);
        if desc.is_null() || !std::slice::from_raw_parts((*desc).oids, (*desc).nparts as usize).contains(&(*part).rd_id) {
            return None;
        }
        // Shaped as its parent, column for column, nothing generated.
        let (pa, ra) = (attrs(parent), attrs(part));
        let same = |a: &pg_sys::FormData_pg_attribute, b: &pg_sys::FormData_pg_attribute| {
            a.attisdropped == b.attisdropped && (a.attisdropped || (a.atttypid == b.atttypid && name_of(a) == name_of(b)))
        };
        if pa.len() != ra.len() || !pa.iter().zip(ra).all(|(a, b)| same(a, b)) {
            return None;
        }
        let constr = (*(*part).rd_att).constr;
        if !constr.is_null() && (*constr).has_generated_stored {
            return None;
        }
        let find = |name: &str| ra.iter().position(|a| !a.attisdropped && name_of(a).to_bytes() == name.as_bytes());
        // Each given column, of the type its datum has.
        let at: Vec<usize> = columns.iter().map(|&(c, ty)| find(c).filter(|&i| ra[i].atttypid == ty)).collect::<Option<_>>()?;
        // The id is returned as read: an int8, or the call goes through SPI.
        let id = find("id").filter(|&i| ra[i].atttypid == pg_sys::INT8OID)?;
        invalidation::watch_also(Channel::Executions, (*part).rd_id.to_u32());

        let cxt = pg_sys::AllocSetContextCreateInternal(
            pg_sys::TopMemoryContext,
            c"pgprompt direct insert".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let old = pg_sys::MemoryContextSwitchTo(cxt);
        let mut checks = Vec::new();
        if !constr.is_null() {
            for i in 0..(*constr).num_check as usize {
                let check = &*(*constr).check.add(i);
                checks.push(pg_sys::expression_planner(pg_sys::stringToNode(check.ccbin).cast()));
            }
        }
        // Defaults are the parent's: they are what an INSERT through it uses.
        let mut defaults = Vec::new();
        for (i, a) in pa.iter().enumerate() {
            if a.attisdropped || at.contains(&i) {
                continue;
            }
            let expr = pg_sys::build_column_default(parent, i as i32 + 1);
            if !expr.is_null() {
                defaults.push((i, pg_sys::expression_planner(expr.cast())));
            }
        }
        pg_sys::MemoryContextSwitchTo(old);
        Some(Prepared { cxt, checks, defaults, at, id })
    }
}

/// What became of a row.
pub enum Outcome {
    /// Inserted, with this id.
    Done(Option<i64>),
    /// Not inserted: the partition needs the executor (see above).
    Unsuitable,
    /// Not inserted: the partition is gone or no longer holds the row.
    Moved,
}

/// Inserts a row of `columns` (names and types; `args` in that order) into
/// `part`, a partition of `parent`.
pub fn insert(parent: Oid, part: Oid, columns: &[(&str, Oid)], args: &spi::Args) -> Outcome {
    use pg_sys::{NoLock, RowExclusiveLock};
    // SAFETY: the executor's own sequence for one inserted row, as COPY runs
    // it; relations stay locked until the transaction ends, as an INSERT's.
    // An ERROR (a constraint, a unique key) aborts the (sub)transaction,
    // which releases all of it.
    unsafe {
        if pg_sys::pg_class_aclcheck(parent, pg_sys::GetUserId(), pg_sys::ACL_INSERT as pg_sys::AclMode) != pg_sys::AclResult::ACLCHECK_OK {
            return Outcome::Unsuitable;
        }
        let parent_rel = pg_sys::table_open(parent, RowExclusiveLock as i32);
        let part_rel = pg_sys::try_table_open(part, RowExclusiveLock as i32);
        if part_rel.is_null() {
            pg_sys::table_close(parent_rel, NoLock as i32);
            return Outcome::Moved;
        }
        let close = || {
            pg_sys::table_close(part_rel, NoLock as i32);
            pg_sys::table_close(parent_rel, NoLock as i32);
        };
        // Locking accepted any pending invalidation: check only now.
        forget_if_stale();
        let kept = KEPT.with(|k| k.borrow_mut().partitions.entry((part, columns.len())).or_insert_with(|| prepare(parent_rel, part_rel, columns).map(Rc::new)).clone());
        let Some(p) = kept else {
            close();
            return Outcome::Unsuitable;
        };
        let estate = pg_sys::CreateExecutorState();
        let old = pg_sys::MemoryContextSwitchTo((*estate).es_query_cxt);
        let root = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
        let leaf = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
        pg_sys::InitResultRelInfo(root, parent_rel, 0, std::ptr::null_mut(), 0);
        pg_sys::InitResultRelInfo(leaf, part_rel, 0, root, 0);
        (*estate).es_opened_result_relations = pg_sys::lappend(pg_sys::lappend(std::ptr::null_mut(), leaf.cast()), root.cast());

        let desc = (*part_rel).rd_att;
        let natts = (*desc).natts as usize;
        let slot = pg_sys::MakeSingleTupleTableSlot(desc, &raw const pg_sys::TTSOpsVirtual);
        let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
        let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
        nulls.fill(true);
        for (k, &i) in p.at.iter().enumerate() {
            values[i] = args.values[k];
            nulls[i] = args.nulls[k] == b'n' as c_char;
        }
        pg_sys::ExecStoreVirtualTuple(slot);

        // Nothing happened yet: a row this partition does not hold (its
        // bounds changed) goes through SPI, which routes it.
        if !pg_sys::ExecPartitionCheck(leaf, slot, estate, false) {
            pg_sys::ExecDropSingleTupleTableSlot(slot);
            pg_sys::MemoryContextSwitchTo(old);
            pg_sys::FreeExecutorState(estate);
            close();
            return Outcome::Moved;
        }

        pg_sys::AfterTriggerBeginQuery();
        let capture = pg_sys::MakeTransitionCaptureState((*parent_rel).trigdesc, parent, pg_sys::CmdType::CMD_INSERT);
        pg_sys::ExecBSInsertTriggers(estate, root);

        // Defaults and constraints, from the kept plans.
        let econtext = pg_sys::MakePerTupleExprContext(estate);
        for &(i, expr) in &p.defaults {
            let state = pg_sys::ExecInitExpr(expr, std::ptr::null_mut());
            let outer = pg_sys::MemoryContextSwitchTo((*econtext).ecxt_per_tuple_memory);
            let eval = (*state).evalfunc.expect("an initialised expression");
            values[i] = eval(state, econtext, &raw mut nulls[i]);
            pg_sys::MemoryContextSwitchTo(outer);
        }
        // Set, ExecConstraints uses these instead of parsing the constraints
        // again.
        if !p.checks.is_empty() {
            let states = pg_sys::palloc(p.checks.len() * std::mem::size_of::<*mut pg_sys::ExprState>()).cast::<*mut pg_sys::ExprState>();
            for (i, &expr) in p.checks.iter().enumerate() {
                *states.add(i) = pg_sys::ExecInitExpr(expr, std::ptr::null_mut());
            }
            #[cfg(feature = "pg18")]
            {
                (*leaf).ri_CheckConstraintExprs = states;
            }
            #[cfg(not(feature = "pg18"))]
            {
                (*leaf).ri_ConstraintExprs = states;
            }
        }
        if !(*desc).constr.is_null() {
            pg_sys::ExecConstraints(leaf, slot, estate);
        }
        let id = (!nulls[p.id]).then(|| values[p.id].value() as i64);

        pg_sys::ExecOpenIndices(leaf, false);
        let am = &*(*part_rel).rd_tableam;
        am.tuple_insert.expect("a table access method inserts")(part_rel, slot, pg_sys::GetCurrentCommandId(true), 0, std::ptr::null_mut());
        let recheck = if (*leaf).ri_NumIndices > 0 {
            // (Since PostgreSQL 16, a last argument: only summarizing
            // indexes, for HOT updates; an insert updates every index.)
            #[cfg(feature = "pg18")]
            let list = pg_sys::ExecInsertIndexTuples(leaf, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut(), false);
            #[cfg(not(feature = "pg18"))]
            let list = pg_sys::ExecInsertIndexTuples(leaf, slot, estate, false, false, std::ptr::null_mut(), std::ptr::null_mut());
            list
        } else {
            std::ptr::null_mut()
        };
        pg_sys::ExecARInsertTriggers(estate, leaf, slot, recheck, capture);
        pg_sys::list_free(recheck);
        pg_sys::ExecASInsertTriggers(estate, root, capture);
        pg_sys::AfterTriggerEndQuery(estate);

        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::ExecCloseResultRelations(estate);
        // Slots the triggers made (ExecGetTriggerNewSlot for AFTER ROW
        // triggers and foreign keys) hold their descriptors pinned, as
        // CopyFrom's end releases them.
        pg_sys::ExecResetTupleTable((*estate).es_tupleTable, false);
        pg_sys::MemoryContextSwitchTo(old);
        pg_sys::FreeExecutorState(estate);
        close();
        // What the next command of this transaction runs sees the row, as
        // after any INSERT.
        pg_sys::CommandCounterIncrement();
        Outcome::Done(id)
    }
}

/// A plain table of pgprompt's schema opened for appending heap tuples
/// without the executor: for delta tables with no index, trigger, rule or
/// policy to maintain, where planning and running an INSERT would cost more
/// than the rest of the caller. Closed (its lock kept until the transaction
/// ends, as an INSERT's would be) when dropped.
pub struct Plain {
    rel: pg_sys::Relation,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Plain {
    /// Opens `table` when it is that plain: `required` columns exist with
    /// their types, `optional` ones (added by a later version) may be
    /// missing but not retyped. `None`: the caller goes through SQL.
    pub fn open(table: &std::ffi::CStr, required: &[(&str, Oid)], optional: &[(&str, Oid)]) -> Option<Plain> {
        // SAFETY: catalog lookups and a relation opened and locked inside
        // the caller's transaction.
        unsafe {
            let schema = pg_sys::get_namespace_oid(c"pgprompt".as_ptr(), false);
            let oid = pg_sys::get_relname_relid(table.as_ptr(), schema);
            if oid == Oid::INVALID {
                return None;
            }
            let rel = pg_sys::table_open(oid, pg_sys::RowExclusiveLock as i32);
            let plain = Plain { rel, values: Vec::new(), nulls: Vec::new() };
            let form = &*(*rel).rd_rel;
            if form.relhasindex
                || !(*rel).trigdesc.is_null()
                || form.relrowsecurity
                || form.relkind != pg_sys::RELKIND_RELATION as c_char
                || !(*rel).rd_rules.is_null()
            {
                return None;
            }
            let typed = required.iter().all(|(name, ty)| plain.column(name).is_some_and(|i| attrs(rel)[i].atttypid == *ty))
                && optional.iter().all(|(name, ty)| plain.column(name).is_none_or(|i| attrs(rel)[i].atttypid == *ty));
            typed.then_some(plain)
        }
    }

    fn column(&self, name: &str) -> Option<usize> {
        attrs(self.rel).iter().position(|a| !a.attisdropped && name_of(a).to_bytes() == name.as_bytes())
    }

    /// Appends one row of (column, value) pairs; other columns are NULL.
    ///
    /// # Safety
    /// Each value is a datum of its column's type.
    pub unsafe fn append(&mut self, row: &[(&str, Option<pg_sys::Datum>)]) {
        let n = attrs(self.rel).len();
        self.values.clear();
        self.values.resize(n, pg_sys::Datum::from(0));
        self.nulls.clear();
        self.nulls.resize(n, true);
        for (name, value) in row {
            if let (Some(at), Some(v)) = (self.column(name), value) {
                self.values[at] = *v;
                self.nulls[at] = false;
            }
        }
        // SAFETY: values and nulls as the descriptor wants them.
        unsafe {
            let tuple = pg_sys::heap_form_tuple((*self.rel).rd_att, self.values.as_mut_ptr(), self.nulls.as_mut_ptr());
            pg_sys::simple_heap_insert(self.rel, tuple);
            pg_sys::heap_freetuple(tuple);
        }
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        // SAFETY: opened in `open`; the lock stays until the transaction ends.
        unsafe { pg_sys::table_close(self.rel, pg_sys::NoLock as i32) };
    }
}
