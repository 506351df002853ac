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
//!
//! Scores go into their (unpartitioned) table the same way, with ON
//! CONFLICT DO NOTHING as the executor runs it (`insert_unless_conflict`).

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
    /// The defaults' and constraints' expression states, made on first use
    /// in `cxt` and used by every row after (made per row, they cost as
    /// much as the row's index entries); `busy` while a row uses them, so
    /// that a row put while another is (by a function a constraint calls)
    /// makes its own.
    states: std::cell::Cell<Option<States>>,
    busy: std::cell::Cell<bool>,
}

/// Expression states of a `Prepared`'s defaults (in order) and constraints
/// (an array, as ExecConstraints reads it).
#[derive(Clone, Copy)]
struct States {
    defaults: *mut *mut pg_sys::ExprState,
    checks: *mut *mut pg_sys::ExprState,
}

impl Prepared {
    /// Expression states for one row: the kept ones unless a row uses them
    /// already, then new ones in the current memory context. The caller
    /// gives them back with `release` (`true`: they were the kept ones).
    ///
    /// # Safety
    /// Inside a transaction, with the relation locked.
    unsafe fn acquire(&self) -> (States, bool) {
        unsafe {
            if self.busy.replace(true) {
                return (self.make_states(), false);
            }
            let states = match self.states.get() {
                Some(s) => s,
                None => {
                    let old = pg_sys::MemoryContextSwitchTo(self.cxt);
                    let s = self.make_states();
                    pg_sys::MemoryContextSwitchTo(old);
                    self.states.set(Some(s));
                    s
                }
            };
            (states, true)
        }
    }

    fn release(&self, kept: bool) {
        if kept {
            self.busy.set(false);
        }
    }

    /// # Safety
    /// As `acquire`; allocates in the current memory context.
    unsafe fn make_states(&self) -> States {
        unsafe {
            let array = |n: usize| pg_sys::palloc0(n.max(1) * std::mem::size_of::<*mut pg_sys::ExprState>()).cast::<*mut pg_sys::ExprState>();
            let (defaults, checks) = (array(self.defaults.len()), array(self.checks.len()));
            for (i, &(_, expr)) in self.defaults.iter().enumerate() {
                *defaults.add(i) = pg_sys::ExecInitExpr(expr, std::ptr::null_mut());
            }
            for (i, &expr) in self.checks.iter().enumerate() {
                *checks.add(i) = pg_sys::ExecInitExpr(expr, std::ptr::null_mut());
            }
            States { defaults, checks }
        }
    }
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
    /// Per partition (or table) and number of columns given (the library
    /// serves 0.1.0's shorter rows too): `None` when it must go through SPI.
    relations: HashMap<(Oid, usize), Option<Rc<Prepared>>>,
}

thread_local! {
    /// Never dropped: at backend exit there is nothing to free.
    static KEPT: ManuallyDrop<RefCell<Kept>> = ManuallyDrop::new(RefCell::new(Kept { generation: u64::MAX, relations: HashMap::new() }));
}

/// Drops what was kept when the table, a partition, or a function or type
/// changed since.
fn forget_if_stale() {
    let generation = invalidation::generation(Channel::Executions);
    KEPT.with(|k| {
        let mut k = k.borrow_mut();
        if k.generation != generation {
            k.relations.clear();
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
            || !plain(parent)
            || !plain(part)
        {
            return None;
        }
        // Still a partition of this table.
        let desc = pg_sys::RelationGetPartitionDesc(parent, true);
        if desc.is_null() || !std::slice::from_raw_parts((*desc).oids, (*desc).nparts as usize).contains(&(*part).rd_id) {
            return None;
        }
        // Shaped as its parent, column for column.
        let (pa, ra) = (attrs(parent), attrs(part));
        let same = |a: &pg_sys::FormData_pg_attribute, b: &pg_sys::FormData_pg_attribute| {
            a.attisdropped == b.attisdropped && (a.attisdropped || (a.atttypid == b.atttypid && name_of(a) == name_of(b)))
        };
        if pa.len() != ra.len() || !pa.iter().zip(ra).all(|(a, b)| same(a, b)) {
            return None;
        }
        plan(parent, part, columns)
    }
}

/// Plans what rows of `table` (not partitioned) need, or `None` when they
/// must go through SPI.
///
/// # Safety
/// `table` open and locked.
unsafe fn prepare_table(table: pg_sys::Relation, columns: &[(&str, Oid)]) -> Option<Prepared> {
    unsafe {
        let r = &*(*table).rd_rel;
        if r.relkind != pg_sys::RELKIND_RELATION as c_char || r.relispartition || !plain(table) || fires_on_insert(table) {
            return None;
        }
        let p = plan(table, table, columns)?;
        // Its callers (prompt_score) run as the owner without a pinned
        // search_path (see `spi::pinned`): a function of the owner's that a
        // constraint, a default or an index calls could resolve names the
        // caller planted, so rows of a table with any go through SQL,
        // with the path pinned.
        let indexes = pg_sys::RelationGetIndexList(table);
        let mut exprs: Vec<*mut pg_sys::Node> = p.checks.iter().chain(p.defaults.iter().map(|(_, e)| e)).map(|&e| e.cast()).collect();
        for i in 0..(if indexes.is_null() { 0 } else { (*indexes).length }) {
            let index = pg_sys::index_open(pg_sys::list_nth_oid(indexes, i), pg_sys::RowExclusiveLock as i32);
            exprs.push(pg_sys::RelationGetIndexExpressions(index).cast());
            exprs.push(pg_sys::RelationGetIndexPredicate(index).cast());
            pg_sys::index_close(index, pg_sys::NoLock as i32);
        }
        pg_sys::list_free(indexes);
        exprs.into_iter().all(|e| builtin_only(e)).then_some(p)
    }
}

/// Whether an expression calls built-in functions only (by OID: those of
/// initdb, below FirstNormalObjectId), and no type input or output
/// function (a coercion through text), which could be anyone's.
///
/// # Safety
/// `node` is an expression tree or NULL.
unsafe fn builtin_only(node: *mut pg_sys::Node) -> bool {
    if node.is_null() {
        return true;
    }
    // SAFETY: the tree written out as PostgreSQL writes stored expressions.
    let text = unsafe {
        let s = pg_sys::nodeToString(node.cast());
        let text = CStr::from_ptr(s).to_string_lossy().into_owned();
        pg_sys::pfree(s.cast());
        text
    };
    if text.contains("{COERCEVIAIO") || text.contains("{ARRAYCOERCEEXPR") {
        return false;
    }
    [":funcid ", ":opfuncid "].iter().all(|key| {
        text.match_indices(key).all(|(at, _)| {
            let digits: String = text[at + key.len()..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().is_ok_and(|oid| oid < pg_sys::FirstNormalObjectId)
        })
    })
}

/// Whether `rel` is a table rows can go into the way COPY puts them: no
/// rules, no row security, no BEFORE or INSTEAD OF row trigger on INSERT,
/// no generated column.
///
/// # Safety
/// `rel` open.
unsafe fn plain(rel: pg_sys::Relation) -> bool {
    unsafe {
        let r = &*(*rel).rd_rel;
        let t = (*rel).trigdesc;
        let constr = (*(*rel).rd_att).constr;
        (r.relkind == pg_sys::RELKIND_RELATION as c_char || r.relkind == pg_sys::RELKIND_PARTITIONED_TABLE as c_char)
            && !r.relrowsecurity
            && (*rel).rd_rules.is_null()
            && (t.is_null() || !((*t).trig_insert_before_row || (*t).trig_insert_instead_row))
            && (constr.is_null() || !(*constr).has_generated_stored)
    }
}

/// Plans the CHECK constraints of `rel` and the defaults (those of
/// `defaults_of`, the table an INSERT names) of the columns not given.
///
/// # Safety
/// Both relations open and locked, with the same columns.
unsafe fn plan(defaults_of: pg_sys::Relation, rel: pg_sys::Relation, columns: &[(&str, Oid)]) -> Option<Prepared> {
    unsafe {
        let ra = attrs(rel);
        let find = |name: &str| ra.iter().position(|a| !a.attisdropped && name_of(a).to_bytes() == name.as_bytes());
        // Each given column, of the type its datum has.
        let at: Vec<usize> = columns.iter().map(|&(c, ty)| find(c).filter(|&i| ra[i].atttypid == ty)).collect::<Option<_>>()?;
        // The id is returned as read: an int8, or the row goes through SPI.
        let id = find("id").filter(|&i| ra[i].atttypid == pg_sys::INT8OID)?;
        invalidation::watch_also(Channel::Executions, (*rel).rd_id.to_u32());

        let cxt = pg_sys::AllocSetContextCreateInternal(
            pg_sys::TopMemoryContext,
            c"pgprompt direct insert".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let old = pg_sys::MemoryContextSwitchTo(cxt);
        let mut checks = Vec::new();
        let constr = (*(*rel).rd_att).constr;
        if !constr.is_null() {
            for i in 0..(*constr).num_check as usize {
                let check = &*(*constr).check.add(i);
                checks.push(pg_sys::expression_planner(pg_sys::stringToNode(check.ccbin).cast()));
            }
        }
        let mut defaults = Vec::new();
        for (i, a) in attrs(defaults_of).iter().enumerate() {
            if a.attisdropped || at.contains(&i) {
                continue;
            }
            let expr = pg_sys::build_column_default(defaults_of, i as i32 + 1);
            if !expr.is_null() {
                defaults.push((i, pg_sys::expression_planner(expr.cast())));
            }
        }
        pg_sys::MemoryContextSwitchTo(old);
        Some(Prepared { cxt, checks, defaults, at, id, states: std::cell::Cell::new(None), busy: std::cell::Cell::new(false) })
    }
}

/// What became of a row.
pub enum Outcome {
    /// Inserted, with this id.
    Done(Option<i64>),
    /// Not inserted: the table needs the executor (see above).
    Unsuitable,
    /// Not inserted: the partition is gone or no longer holds the row.
    Moved,
    /// Not inserted: a row with the same key in the arbiter index exists
    /// (`insert_unless_conflict`).
    Conflict,
}

/// The kept plans of `rel` for rows of `columns`, made by `prepare` if
/// not kept yet; `None` when its rows go through SPI.
///
/// # Safety
/// `rel` open and locked (which accepted pending invalidations).
unsafe fn kept(rel: Oid, columns: &[(&str, Oid)], prepare: impl FnOnce() -> Option<Prepared>) -> Option<Rc<Prepared>> {
    forget_if_stale();
    KEPT.with(|k| k.borrow_mut().relations.entry((rel, columns.len())).or_insert_with(|| prepare().map(Rc::new)).clone())
}

/// One row on its way into a table, set up as the executor sets up an
/// INSERT (`root` is the table the INSERT names, `leaf` where the row goes).
struct Putting {
    estate: *mut pg_sys::EState,
    root: *mut pg_sys::ResultRelInfo,
    leaf: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    /// The memory context before `begin`.
    old: pg_sys::MemoryContext,
    capture: *mut pg_sys::TransitionCaptureState,
    /// Whether a trigger (or a foreign key) acts on the INSERT: without,
    /// the trigger machinery is not set up at all.
    triggers: bool,
}

/// Whether `rel` has a trigger that fires on INSERT (foreign keys are such
/// triggers too).
///
/// # Safety
/// `rel` is open.
unsafe fn fires_on_insert(rel: pg_sys::Relation) -> bool {
    unsafe {
        let t = (*rel).trigdesc;
        !t.is_null()
            && ((*t).trig_insert_before_row
                || (*t).trig_insert_after_row
                || (*t).trig_insert_instead_row
                || (*t).trig_insert_before_statement
                || (*t).trig_insert_after_statement
                || (*t).trig_insert_new_table)
    }
}

impl Putting {
    /// The row of `args` (in the order of `p.at`), in a slot of `leaf`.
    ///
    /// # Safety
    /// Relations open and locked; `p` planned for `leaf`.
    unsafe fn begin(root_rel: pg_sys::Relation, leaf_rel: pg_sys::Relation, p: &Prepared, args: &spi::Args) -> Putting {
        unsafe {
            let estate = pg_sys::CreateExecutorState();
            let old = pg_sys::MemoryContextSwitchTo((*estate).es_query_cxt);
            let info = || pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>()).cast::<pg_sys::ResultRelInfo>();
            let leaf = info();
            let root = if root_rel == leaf_rel {
                pg_sys::InitResultRelInfo(leaf, leaf_rel, 0, std::ptr::null_mut(), 0);
                (*estate).es_opened_result_relations = pg_sys::lappend(std::ptr::null_mut(), leaf.cast());
                leaf
            } else {
                let root = info();
                pg_sys::InitResultRelInfo(root, root_rel, 0, std::ptr::null_mut(), 0);
                pg_sys::InitResultRelInfo(leaf, leaf_rel, 0, root, 0);
                (*estate).es_opened_result_relations = pg_sys::lappend(pg_sys::lappend(std::ptr::null_mut(), leaf.cast()), root.cast());
                root
            };
            let desc = (*leaf_rel).rd_att;
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
            Putting { estate, root, leaf, slot, old, capture: std::ptr::null_mut(), triggers: false }
        }
    }

    /// Statement triggers and the row's defaults and constraints, from the
    /// kept plans; the row's id.
    ///
    /// # Safety
    /// As `begin`.
    unsafe fn start(&mut self, p: &Prepared) -> Option<i64> {
        unsafe {
            let (estate, leaf, slot) = (self.estate, self.leaf, self.slot);
            let root_rel = (*self.root).ri_RelationDesc;
            self.triggers = fires_on_insert(root_rel) || fires_on_insert((*leaf).ri_RelationDesc);
            if self.triggers {
                pg_sys::AfterTriggerBeginQuery();
                self.capture = pg_sys::MakeTransitionCaptureState((*root_rel).trigdesc, (*root_rel).rd_id, pg_sys::CmdType::CMD_INSERT);
                pg_sys::ExecBSInsertTriggers(estate, self.root);
            }

            let desc = (*slot).tts_tupleDescriptor;
            let natts = (*desc).natts as usize;
            let values = std::slice::from_raw_parts_mut((*slot).tts_values, natts);
            let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, natts);
            let econtext = pg_sys::MakePerTupleExprContext(estate);
            let (states, kept) = p.acquire();
            // Given back however the row ends (an ERROR unwinds through here).
            let _release = Release(p, kept);
            for (k, &(i, _)) in p.defaults.iter().enumerate() {
                let state = *states.defaults.add(k);
                let outer = pg_sys::MemoryContextSwitchTo((*econtext).ecxt_per_tuple_memory);
                let eval = (*state).evalfunc.expect("an initialised expression");
                values[i] = eval(state, econtext, &raw mut nulls[i]);
                pg_sys::MemoryContextSwitchTo(outer);
            }
            // Set, ExecConstraints uses these instead of parsing the
            // constraints again.
            if !p.checks.is_empty() {
                #[cfg(feature = "pg18")]
                {
                    (*leaf).ri_CheckConstraintExprs = states.checks;
                }
                #[cfg(not(feature = "pg18"))]
                {
                    (*leaf).ri_ConstraintExprs = states.checks;
                }
            }
            if !(*desc).constr.is_null() {
                pg_sys::ExecConstraints(leaf, slot, estate);
            }
            (!nulls[p.id]).then(|| values[p.id].value() as i64)
        }
    }

    /// Inserts the row's index entries and returns the indexes to recheck;
    /// `conflict` is set when the row's key is taken in an `arbiter` index
    /// (inserted with noDupErr: no error).
    ///
    /// # Safety
    /// After `start` and the tuple's insertion.
    unsafe fn index(&self, arbiter: *mut pg_sys::List, conflict: &mut bool) -> *mut pg_sys::List {
        unsafe {
            if (*self.leaf).ri_NumIndices == 0 {
                return std::ptr::null_mut();
            }
            let speculative = !arbiter.is_null();
            // (Since PostgreSQL 16, a last argument: only summarizing
            // indexes, for HOT updates; an insert updates every index.)
            #[cfg(feature = "pg18")]
            let list = pg_sys::ExecInsertIndexTuples(self.leaf, self.slot, self.estate, false, speculative, conflict, arbiter, false);
            #[cfg(not(feature = "pg18"))]
            let list = pg_sys::ExecInsertIndexTuples(self.leaf, self.slot, self.estate, false, speculative, conflict, arbiter);
            list
        }
    }

    /// Row and statement triggers of the inserted row (none when it was
    /// not, `inserted` false), then frees what `begin` made.
    ///
    /// # Safety
    /// After `start`.
    unsafe fn finish(self, inserted: bool, recheck: *mut pg_sys::List) {
        unsafe {
            if self.triggers {
                if inserted {
                    pg_sys::ExecARInsertTriggers(self.estate, self.leaf, self.slot, recheck, self.capture);
                }
                pg_sys::ExecASInsertTriggers(self.estate, self.root, self.capture);
                pg_sys::AfterTriggerEndQuery(self.estate);
            }
            pg_sys::list_free(recheck);
            pg_sys::ExecCloseResultRelations(self.estate);
            self.abandon();
        }
    }

    /// Frees what `begin` made (alone: nothing happened).
    ///
    /// # Safety
    /// After `begin`, and `start` only if `finish` calls it.
    unsafe fn abandon(self) {
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            // Slots the triggers made (ExecGetTriggerNewSlot for AFTER ROW
            // triggers and foreign keys) hold their descriptors pinned, as
            // CopyFrom's end releases them.
            pg_sys::ExecResetTupleTable((*self.estate).es_tupleTable, false);
            pg_sys::MemoryContextSwitchTo(self.old);
            pg_sys::FreeExecutorState(self.estate);
        }
    }
}

/// Gives a `Prepared`'s expression states back when dropped.
struct Release<'a>(&'a Prepared, bool);

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Whether the current user may insert into `table`.
fn insertable(table: Oid) -> bool {
    // SAFETY: a catalog lookup.
    unsafe { pg_sys::pg_class_aclcheck(table, pg_sys::GetUserId(), pg_sys::ACL_INSERT as pg_sys::AclMode) == pg_sys::AclResult::ACLCHECK_OK }
}

/// Inserts a row of `columns` (names and types; `args` in that order) into
/// `part`, a partition of `parent`.
pub fn insert(parent: Oid, part: Oid, columns: &[(&str, Oid)], args: &spi::Args) -> Outcome {
    use pg_sys::{NoLock, RowExclusiveLock};
    if !insertable(parent) {
        return Outcome::Unsuitable;
    }
    // SAFETY: the executor's own sequence for one inserted row, as COPY runs
    // it; relations stay locked until the transaction ends, as an INSERT's.
    // An ERROR (a constraint, a unique key) aborts the (sub)transaction,
    // which releases all of it.
    unsafe {
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
        let Some(p) = kept(part, columns, || prepare(parent_rel, part_rel, columns)) else {
            close();
            return Outcome::Unsuitable;
        };
        let mut row = Putting::begin(parent_rel, part_rel, &p, args);
        // Nothing happened yet: a row this partition does not hold (its
        // bounds changed) goes through SPI, which routes it.
        if !pg_sys::ExecPartitionCheck(row.leaf, row.slot, row.estate, false) {
            row.abandon();
            close();
            return Outcome::Moved;
        }
        let id = row.start(&p);
        pg_sys::ExecOpenIndices(row.leaf, false);
        let am = &*(*part_rel).rd_tableam;
        am.tuple_insert.expect("a table access method inserts")(part_rel, row.slot, pg_sys::GetCurrentCommandId(true), 0, std::ptr::null_mut());
        let recheck = row.index(std::ptr::null_mut(), &mut false);
        row.finish(true, recheck);
        close();
        // What the next command of this transaction runs sees the row, as
        // after any INSERT.
        pg_sys::CommandCounterIncrement();
        Outcome::Done(id)
    }
}

/// Inserts a row of `columns` into `table` (not partitioned) unless the
/// unique index `arbiter` has its key already: INSERT ... ON CONFLICT DO
/// NOTHING, as the executor runs it (a speculative insertion, which waits
/// for a concurrent inserter of the same key to commit or abort). Only in
/// READ COMMITTED, where a conflict needs no visibility check.
pub fn insert_unless_conflict(table: Oid, arbiter: Oid, columns: &[(&str, Oid)], args: &spi::Args) -> Outcome {
    use pg_sys::{NoLock, RowExclusiveLock};
    if super::probe::snapshot_per_transaction() || !insertable(table) {
        return Outcome::Unsuitable;
    }
    // SAFETY: as `insert`, with ExecInsert's speculative insertion.
    unsafe {
        let rel = pg_sys::table_open(table, RowExclusiveLock as i32);
        let Some(p) = kept(table, columns, || prepare_table(rel, columns)) else {
            pg_sys::table_close(rel, NoLock as i32);
            return Outcome::Unsuitable;
        };
        let mut row = Putting::begin(rel, rel, &p, args);
        let id = row.start(&p);
        // What a uniqueness check needs, for the arbiter only (opening the
        // indexes for speculative insertion builds it for every unique one).
        pg_sys::ExecOpenIndices(row.leaf, false);
        let n = (*row.leaf).ri_NumIndices.max(0) as usize;
        let descs = std::slice::from_raw_parts((*row.leaf).ri_IndexRelationDescs, n);
        let Some(k) = descs.iter().position(|&i| (*i).rd_id == arbiter && (*(*i).rd_index).indisunique) else {
            row.finish(false, std::ptr::null_mut());
            pg_sys::table_close(rel, NoLock as i32);
            return Outcome::Unsuitable;
        };
        pg_sys::BuildSpeculativeIndexInfo(descs[k], *(*row.leaf).ri_IndexRelationInfo.add(k));
        let arbiters = pg_sys::lappend_oid(std::ptr::null_mut(), arbiter);
        // Scorers rarely race, so the row goes in at once; only when its
        // key turned out to be taken does the check below run, which waits
        // for the other inserter's transaction (or finds it aborted, and
        // the row goes in again). PostgreSQL checks first, for upserts
        // that mostly find their key.
        let inserted = loop {
            pgrx::check_for_interrupts!();
            // Others wait on this lock for our decision rather than for
            // our whole transaction.
            let xid = pg_sys::GetCurrentTransactionId();
            let token = pg_sys::SpeculativeInsertionLockAcquire(xid);
            let am = &*(*rel).rd_tableam;
            am.tuple_insert_speculative.expect("a table access method inserts speculatively")(
                rel,
                row.slot,
                pg_sys::GetCurrentCommandId(true),
                0,
                std::ptr::null_mut(),
                token,
            );
            let mut conflict = false;
            let recheck = row.index(arbiters, &mut conflict);
            am.tuple_complete_speculative.expect("a table access method completes speculative insertions")(rel, row.slot, token, !conflict);
            pg_sys::SpeculativeInsertionLockRelease(xid);
            if !conflict {
                break Some(recheck);
            }
            pg_sys::list_free(recheck);
            // A row of the key, committed, or in progress until its
            // transaction ends.
            let mut conflict_tid = std::mem::zeroed::<pg_sys::ItemPointerData>();
            #[cfg(feature = "pg18")]
            let free = pg_sys::ExecCheckIndexConstraints(row.leaf, row.slot, row.estate, &mut conflict_tid, std::ptr::null_mut(), arbiters);
            #[cfg(not(feature = "pg18"))]
            let free = pg_sys::ExecCheckIndexConstraints(row.leaf, row.slot, row.estate, &mut conflict_tid, arbiters);
            if !free {
                break None;
            }
        };
        let outcome = match inserted {
            Some(recheck) => {
                row.finish(true, recheck);
                Outcome::Done(id)
            }
            None => {
                row.finish(false, std::ptr::null_mut());
                Outcome::Conflict
            }
        };
        pg_sys::table_close(rel, NoLock as i32);
        pg_sys::CommandCounterIncrement();
        outcome
    }
}

/// A plain table of pgprompt's schema opened for appending heap tuples
/// without the executor: for delta tables with no index, trigger, rule or
/// policy to maintain, where planning and running an INSERT would cost more
/// than the rest of the caller. Closed (its lock kept until the transaction
/// ends, as an INSERT's would be) when dropped.
pub struct Plain {
    rel: pg_sys::Relation,
    /// The columns given at `open`, required then optional.
    required: &'static [(&'static str, Oid)],
    optional: &'static [(&'static str, Oid)],
    /// Where each is in the table (`None`: an optional one it lacks).
    at: Vec<Option<usize>>,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl Plain {
    /// Opens `table` when it is that plain: `required` columns exist with
    /// their types, `optional` ones (added by a later version) may be
    /// missing but not retyped. `None`: the caller goes through SQL.
    pub fn open(
        table: &'static std::ffi::CStr,
        required: &'static [(&'static str, Oid)],
        optional: &'static [(&'static str, Oid)],
    ) -> Option<Plain> {
        let oid = super::probe::relation(table)?;
        // SAFETY: a relation opened and locked inside the caller's
        // transaction.
        unsafe {
            let rel = pg_sys::table_open(oid, pg_sys::RowExclusiveLock as i32);
            let mut plain = Plain { rel, required, optional, at: Vec::with_capacity(required.len() + optional.len()), values: Vec::new(), nulls: Vec::new() };
            let form = &*(*rel).rd_rel;
            if form.relhasindex
                || !(*rel).trigdesc.is_null()
                || form.relrowsecurity
                || form.relkind != pg_sys::RELKIND_RELATION as c_char
                || !(*rel).rd_rules.is_null()
            {
                return None;
            }
            let position = |a: i16| a as usize - 1;
            plain.at.extend(super::probe::columns(rel, required)?.iter().map(|&a| Some(position(a))));
            for (k, &a) in super::probe::columns_if_any(rel, optional).iter().enumerate() {
                // Missing, it is not written; there with another type, the
                // table is not as this version made it.
                if a.is_none() && super::probe::has_column(rel, optional[k].0) {
                    return None;
                }
                plain.at.push(a.map(position));
            }
            Some(plain)
        }
    }

    /// Appends one row of (column, value) pairs, the columns as given at
    /// `open`; other columns are NULL.
    ///
    /// # Safety
    /// Each value is a datum of its column's type.
    pub unsafe fn append(&mut self, row: &[(&str, Option<pg_sys::Datum>)]) {
        let n = attrs(self.rel).len();
        self.values.clear();
        self.values.resize(n, pg_sys::Datum::from(0));
        self.nulls.clear();
        self.nulls.resize(n, true);
        let given = |k: usize| self.required.get(k).or_else(|| self.optional.get(k - self.required.len())).map(|c| c.0);
        for (k, (name, value)) in row.iter().enumerate() {
            // Rows come in the order given at `open`; else looked up.
            let at = if given(k) == Some(name) {
                self.at[k]
            } else {
                (0..self.at.len()).find(|&i| given(i) == Some(name)).and_then(|i| self.at[i])
            };
            if let (Some(at), Some(v)) = (at, value) {
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
