//! SQL functions that render and inspect templates.
//!
//! Managing templates (save, activate, rollback, labels) is plain SQL in
//! `sql/templates_api.sql`; what needs the template engine lives here.


use pgrx::prelude::*;
use pgrx::JsonB;

use super::cache::{self, Resolved, Selector};
use super::gucs;
use super::invalidation::{self, Channel};
use super::raise::{required, OrRaise};
use super::spi;
use super::vars::{JsonArg, JsonTextArg, JsonbArg, TextArg};
use crate::alloc_guard;
use crate::error::{Error, ErrorKind, Result};
use crate::jsonb::Doc;
use crate::render::json_text::TextVars;
use crate::render::{self, include, Include, Kind, Options};

fn selector(version: Option<i32>, label: Option<&str>) -> Result<Selector> {
    match (version, label) {
        (Some(_), Some(_)) => Err(Error::invalid("pass either a version or a label, not both")),
        (Some(v), None) => Ok(Selector::Version(v)),
        (None, Some("latest")) => Ok(Selector::Latest),
        (None, Some("active")) | (None, None) => Ok(Selector::Active),
        (None, Some(l)) => Ok(Selector::Label(l.to_string())),
    }
}

fn describe(sel: &Selector, name: &str) -> String {
    match sel {
        Selector::Active | Selector::Latest => format!("template \"{name}\" has no versions"),
        Selector::Version(v) => format!("version {v} of template \"{name}\" does not exist"),
        Selector::Label(l) => format!("label \"{l}\" of template \"{name}\" does not exist"),
    }
}

// Resolution: which version id a call means. Resolving through SPI costs
// more than the whole render, so resolutions are cached per session and
// dropped on invalidation (see `invalidation`): a session that starts a
// statement after an activation committed renders the new version, the
// activating transaction sees its own change, and a rollback restores the
// old one. Inside REPEATABLE READ, rendering follows the latest activation,
// like a catalog lookup, not the transaction's snapshot.
//
// The body comes from the same row the resolution read (or, when the
// resolution was cached, under a snapshot as recent as the one it came
// from): a version the statement's own snapshot cannot see yet (a new
// version in a REPEATABLE READ transaction, `latest` during saves) renders
// like any other.

/// The resolving query's columns and tables; `{settings}` is the version's
/// render options and input schema (see `settings_columns`).
const SELECT: &str = "SELECT v.id, v.xmin, v.version, t.tableoid, v.template_id, v.tableoid, v.kind, v.body, {settings}, v.model_config \
                      FROM pgprompt.prompt_templates t JOIN pgprompt.prompt_versions v ON v.template_id = t.id";

/// `v.options, v.input_schema`, with NULL for a column the schema lacks:
/// 0.1.0's (the library updated, `ALTER EXTENSION pgprompt UPDATE` not yet
/// run) has neither, and its versions render with the default options and
/// no input schema, as 0.1.0 rendered them.
fn settings_columns() -> &'static str {
    let present = |column: &str| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'pgprompt.prompt_versions'::regclass \
                     AND attname = $1 AND NOT attisdropped)",
                    Some(1),
                    &[column.into()],
                )
                .ok()
                .and_then(|t| t.first().get_one::<bool>().ok().flatten())
        })
        .unwrap_or(false)
    };
    match (present("options"), present("input_schema")) {
        (true, true) => "v.options, v.input_schema",
        (true, false) => "v.options, NULL::jsonb",
        _ => "NULL::jsonb, NULL::jsonb",
    }
}

thread_local! {
    /// What the resolving queries read as a version's options and input
    /// schema, decided when they are planned (see `settings_columns`).
    static SETTINGS: std::cell::OnceCell<&'static str> = const { std::cell::OnceCell::new() };
    /// The resolving queries: active, version, label, latest; and the body by id.
    static PLANS: [spi::Kept; 5] = const { [spi::Kept::new(), spi::Kept::new(), spi::Kept::new(), spi::Kept::new(), spi::Kept::new()] };
}

/// A version's kind, body, render options and model configuration.
type Body = cache::Source;

/// Finds the version `sel` names, or an error naming what does not exist.
pub fn resolve(name: &str, sel: &Selector) -> Result<Resolved> {
    resolve_with_body(name, sel).map(|(r, _)| r)
}

/// `resolve`, with the body when the query read it and the compiled cache
/// does not hold the version yet.
fn resolve_with_body(name: &str, sel: &Selector) -> Result<(Resolved, Option<Body>)> {
    invalidation::accept();
    let generation = invalidation::generation(Channel::Templates);
    if let Some(r) = cache::with_resolutions(|c| c.get(generation, name, sel)) {
        return Ok((r, None));
    }
    let cacheable = invalidation::may_cache();
    let (found, body) = lookup(name, sel, cacheable).ok_or_else(|| not_found(name, sel))?;
    if cacheable {
        let capacity = gucs::CACHE_SIZE.get() as usize;
        cache::with_resolutions(|c| c.put(generation, name, sel.clone(), found, capacity));
    }
    Ok((found, body))
}

/// The row's table OID and xmin as one stamp (see `cache`).
fn stamp(table: pg_sys::Datum, xmin: pg_sys::Datum) -> u64 {
    ((table.value() as u32 as u64) << 32) | xmin.value() as u32 as u64
}

/// Runs the resolving query. With `latest`, under a snapshot taken now
/// rather than the statement's (see above).
fn lookup(name: &str, sel: &Selector, latest: bool) -> Option<(Resolved, Option<Body>)> {
    let select = SELECT.replace("{settings}", SETTINGS.with(|o| *o.get_or_init(settings_columns)));
    let (slot, sql, second) = match sel {
        Selector::Active => (0, format!("{select} AND v.version = t.active_version WHERE t.name = $1"), None),
        Selector::Version(v) => (
            1,
            format!("{select} AND v.version = $2 WHERE t.name = $1"),
            Some((v.into_datum().expect("int4 datum"), pg_sys::INT4OID)),
        ),
        // production is the active version. (A stored production label is
        // 0.1.0's, before ALTER EXTENSION UPDATE merges it: it still wins.)
        Selector::Label(l) => (
            2,
            format!(
                "{select} AND v.version = coalesce((SELECT l.version FROM pgprompt.prompt_labels l \
                                                    WHERE l.template_id = t.id AND l.label = $2), \
                                                   CASE WHEN $2 = 'production' THEN t.active_version END) \
                 WHERE t.name = $1"
            ),
            Some((l.as_str().into_datum().expect("text datum"), pg_sys::TEXTOID)),
        ),
        Selector::Latest => (3, format!("{select} WHERE t.name = $1 ORDER BY v.version DESC LIMIT 1"), None),
    };
    Spi::connect(|_| {
        let types: &[pg_sys::Oid] = match &second {
            Some((_, oid)) => &[pg_sys::TEXTOID, *oid],
            None => &[pg_sys::TEXTOID],
        };
        let plan = PLANS.with(|plans| plans[slot].plan(&sql, types));
        let mut args = spi::Args::with_capacity(2);
        args.push(Some(name));
        if let Some((d, _)) = second {
            args.push_datum(Some(d));
        }
        // SAFETY: the plan was prepared for these argument types; SPI is connected.
        unsafe {
            let rc = spi::run(plan, &mut args, true, latest, 1);
            assert_eq!(rc, pg_sys::SPI_OK_SELECT as i32, "resolving query failed");
            if pg_sys::SPI_processed == 0 {
                return None;
            }
            invalidation::watch(Channel::Templates, column(4).value() as u32);
            let found = Resolved {
                id: column(1).value() as i64,
                template_id: column(5).value() as i64,
                stamp: stamp(column(6), column(2)),
                version: column(3).value() as i32,
            };
            // The body only when it will be compiled: detoasting and copying
            // it is wasted on a cache hit.
            let body = (!cache::with(|c| c.contains(found.id, found.stamp))).then(|| body_at(7));
            Some((found, body))
        }
    })
}

/// Column `n` of the first row SPI returned; NULL is a bug (the columns
/// read are NOT NULL).
///
/// # Safety
/// SPI connected, with a row in SPI_tuptable.
unsafe fn column(n: i32) -> pg_sys::Datum {
    unsafe {
        let table = &*pg_sys::SPI_tuptable;
        let mut null = false;
        let d = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, n, &mut null);
        assert!(!null, "resolving query returned NULL");
        d
    }
}

/// Kind, body, options, input schema and model configuration from columns
/// `n` to `n + 4` of the first row (options NULL: the defaults).
///
/// # Safety
/// As `column`.
unsafe fn body_at(n: i32) -> Body {
    unsafe {
        let kind = String::from_datum(column(n), false).expect("kind is NOT NULL");
        let body = String::from_datum(column(n + 1), false).expect("body is NOT NULL");
        let table = &*pg_sys::SPI_tuptable;
        let mut null = false;
        let options = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, n + 2, &mut null);
        let options = if null {
            Options::default()
        } else {
            let json = JsonB::from_datum(options, false).expect("options are jsonb").0;
            Options::from_json(&json).expect("options are checked when saved")
        };
        let schema = pg_sys::SPI_getbinval(*table.vals, table.tupdesc, n + 3, &mut null);
        let input_schema = if null { None } else { JsonB::from_datum(schema, false).map(|j| j.0) };
        // model_config's bytes, kept as stored: returning them costs a copy,
        // not a conversion through text.
        let raw = pg_sys::pg_detoast_datum_packed(column(n + 4).cast_mut_ptr());
        let config = std::slice::from_raw_parts(pgrx::varlena::vardata_any(raw).cast::<u8>(), pgrx::varlena::varsize_any_exhdr(raw)).to_vec();
        cache::Source { kind: Kind::parse(&kind).expect("kind is checked by the table"), body, options, config, input_schema }
    }
}

pub(super) fn not_found(name: &str, sel: &Selector) -> Error {
    // Read-only SPI (client.select): Spi::get_* would assign a transaction
    // id, which a hot standby refuses and the render path must not need.
    let exists = Spi::connect(|client| {
        client
            .select("SELECT EXISTS (SELECT 1 FROM pgprompt.prompt_templates WHERE name = $1)", Some(1), &[name.into()])
            .ok()
            .and_then(|t| t.first().get_one::<bool>().ok().flatten())
    })
    .unwrap_or(false);
    if exists {
        Error::new(ErrorKind::UnknownObject, describe(sel, name))
    } else {
        Error::new(ErrorKind::UnknownObject, format!("template \"{name}\" does not exist"))
            .with_hint("List templates with: SELECT name FROM pgprompt.prompt_templates;")
    }
}

/// The stored body of version `id`, for a resolution that came from the
/// cache, under a snapshot as recent as the one it was resolved under. The
/// version may have gone since (its template deleted by a commit in
/// between): that is the caller's 42704, never an internal error.
fn load(name: &str, id: i64) -> Result<Body> {
    let latest = invalidation::may_cache();
    Spi::connect(|_| {
        let sql = format!(
            "SELECT v.kind, v.body, {}, v.model_config FROM pgprompt.prompt_versions v WHERE v.id = $1",
            SETTINGS.with(|o| *o.get_or_init(settings_columns))
        );
        let plan = PLANS.with(|plans| plans[4].plan(&sql, &[pg_sys::INT8OID]));
        let mut args = spi::Args::with_capacity(1);
        args.push(Some(id));
        // SAFETY: one int8 argument, as prepared; SPI is connected.
        unsafe {
            let rc = spi::run(plan, &mut args, true, latest, 1);
            assert_eq!(rc, pg_sys::SPI_OK_SELECT as i32, "reading a version failed");
            if pg_sys::SPI_processed == 0 {
                return Err(Error::new(ErrorKind::UnknownObject, format!("template \"{name}\" was deleted while it was being rendered")));
            }
            Ok(body_at(1))
        }
    })
}

/// Resolves, compiles (or reuses) and runs `f` within the render memory
/// budget, raising any error.
fn with_version<R>(
    name: Option<&str>,
    version: Option<i32>,
    label: Option<&str>,
    f: impl FnOnce(&mut render::Engine, &render::Compiled) -> Result<R>,
) -> R {
    let name = required(name, "name");
    let sel = selector(version, label).or_raise();
    try_with_version(name, &sel, f).or_raise()
}

/// `with_version` returning the error instead.
fn try_with_version<R>(name: &str, sel: &Selector, f: impl FnOnce(&mut render::Engine, &render::Compiled) -> Result<R>) -> Result<R> {
    let (resolved, body) = resolve_with_body(name, sel)?;
    let capacity = gucs::CACHE_SIZE.get() as usize;
    // Read before the guarded section: the budget is for rendering.
    let body = match body {
        Some(b) => Some(b),
        None if cache::with(|c| c.contains(resolved.id, resolved.stamp)) => None,
        None => Some(load(name, resolved.id)?),
    };
    // Most versions include nothing and render at once. One that includes
    // stored templates has them resolved first (so a moved label shows from
    // the next statement on), then renders.
    let mut f = Some(f);
    let first = alloc_guard::guarded(gucs::render_memory_limit_bytes(), || {
        cache::with(|c| {
            c.with_compiled(resolved.id, resolved.stamp, capacity, || Ok(body.expect("read when not compiled")), |engine, compiled| {
                if compiled.includes.is_empty() {
                    (f.take().expect("called once"))(engine, compiled).map(Ok)
                } else {
                    Ok(Err(Included { options: compiled.options, includes: compiled.includes.clone() }))
                }
            })
        })
    })?;
    let Err(Included { options, includes }) = first else {
        return first.map_err(|_| unreachable!("rendered"));
    };
    provide_includes(options, &includes, 1)?;
    alloc_guard::guarded(gucs::render_memory_limit_bytes(), || {
        cache::with(|c| c.with_compiled(resolved.id, resolved.stamp, capacity, || load(name, resolved.id), f.take().expect("called once")))
    })
}

/// What a compiled version includes, to provide before it renders.
struct Included {
    options: Options,
    includes: Vec<Include>,
}

/// Resolves each stored template `includes` names (and what those include,
/// to `include::MAX_DEPTH` levels) and hands its source to the engine, for
/// templates rendering with `options`. A version the engine holds already
/// is not read again.
fn provide_includes(options: Options, includes: &[Include], depth: usize) -> Result<()> {
    for inc in includes {
        if depth > include::MAX_DEPTH {
            return Err(Error::new(
                ErrorKind::FuelExhausted,
                format!("includes nest deeper than {} levels (at {})", include::MAX_DEPTH, inc.name),
            )
            .with_hint("A label may have moved to a version that includes more; includes are checked for cycles and depth when saved."));
        }
        let sel = match inc.version() {
            Some(v) => Selector::Version(v),
            None => selector(None, Some(&inc.selector))?,
        };
        let context = |e: Error| e.with_detail(format!("while including {}", inc.name));
        let (resolved, body) = resolve_with_body(&inc.template, &sel).map_err(context)?;
        let known = cache::with(|c| c.engine().included(options, &inc.name).map(|(id, inner)| (id, inner.to_vec())));
        let inner = match known {
            Some((id, inner)) if id == resolved.id => inner,
            _ => {
                let source = match body {
                    Some(b) => b,
                    None => load(&inc.template, resolved.id).map_err(context)?,
                };
                if source.kind != Kind::Text {
                    return Err(Error::new(ErrorKind::WrongKind, format!("{} is a chat template: only text templates can be included", inc.name)));
                }
                alloc_guard::guarded(gucs::render_memory_limit_bytes(), || {
                    cache::with(|c| c.engine().provide_include(options, inc, resolved.id, &source.body))
                })?
            }
        };
        provide_includes(options, &inner, depth + 1)?;
    }
    Ok(())
}

/// The stored templates a body includes, for prompt_save to check and
/// record (cycles and depth are checked there, over every version).
#[pg_extern(stable, parallel_safe)]
fn _template_includes(
    body: Option<&str>,
    kind: default!(Option<&str>, "'text'"),
) -> TableIterator<'static, (name!(target, String), name!(template, String), name!(selector, String))> {
    let body = required(body, "body");
    let kind = Kind::parse(required(kind, "kind")).or_raise();
    check_size(body).or_raise();
    let found = alloc_guard::guarded(gucs::render_memory_limit_bytes(), || render::includes(kind, body)).or_raise();
    TableIterator::new(found.into_iter().map(|i| (i.name, i.template, i.selector)))
}

/// What a stored version renders to: text, or a chat template's messages.
pub(super) enum Output {
    Text(String),
    Chat(serde_json::Value),
}

/// Renders a version of either kind, returning errors rather than raising.
fn render_version(name: &str, version: i32, vars: &dyn render::Vars) -> Result<Output> {
    let limits = gucs::limits();
    try_with_version(name, &Selector::Version(version), |engine, compiled| match compiled.kind {
        Kind::Text => {
            let mut out = Vec::new();
            engine.render_text_into(compiled, vars, &limits, &mut out)?;
            Ok(Output::Text(String::from_utf8(out).expect("renders are UTF-8")))
        }
        _ => Ok(Output::Chat(engine.render_chat(compiled, vars, &limits)?)),
    })
}

/// What a version renders with `vars`, as text: a chat template's message
/// contents joined by blank lines. Errors are returned, not raised (test
/// cases report them).
pub(super) fn try_render_output(name: &str, version: i32, vars: &serde_json::Value) -> Result<String> {
    Ok(match render_version(name, version, vars)? {
        Output::Text(t) => t,
        Output::Chat(messages) => {
            let contents: Vec<&str> = messages
                .as_array()
                .map(|m| m.iter().filter_map(|m| m.get("content").and_then(|c| c.as_str())).collect())
                .unwrap_or_default();
            contents.join("\n\n")
        }
    })
}

pub(super) fn vars_doc(vars: &Option<JsonbArg>) -> Doc<'_> {
    required(vars.as_ref(), "vars").doc(gucs::MAX_VARS_BYTES.get() as usize).or_raise()
}

/// Renders a text template: the active version, or the version or label asked for.
#[pg_extern(stable, parallel_safe)]
fn prompt_render(
    name: Option<&str>,
    vars: default!(Option<JsonbArg>, "'{}'"),
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> Text {
    render_text(name, &vars_doc(&vars), version, label)
}

/// `prompt_render` with vars as JSON text, keys in the order written (what
/// an untyped literal resolves to).
#[pg_extern(stable, parallel_safe, name = "prompt_render")]
fn prompt_render_ordered(
    name: Option<&str>,
    vars: Option<TextArg>,
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> Text {
    render_text(name, &text_vars(vars.as_ref()), version, label)
}

/// `prompt_render` with `json` vars, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render")]
fn prompt_render_json(
    name: Option<&str>,
    vars: Option<JsonArg>,
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> Text {
    render_text(name, &text_vars(vars.as_ref()), version, label)
}

fn render_text(name: Option<&str>, vars: &dyn render::Vars, version: Option<i32>, label: Option<&str>) -> Text {
    let limits = gucs::limits();
    let mut text = Text::default();
    with_version(name, version, label, |engine, compiled| engine.render_text_into(compiled, vars, &limits, &mut text));
    text
}

/// Vars given as JSON text (`text` or `json`), read with their key order.
pub(super) fn text_vars(vars: Option<&impl JsonTextArg>) -> TextVars<'_> {
    required(vars, "vars").vars(gucs::MAX_VARS_BYTES.get() as usize).or_raise()
}

/// A text result written straight into palloc'd memory: the renderer asks
/// for a buffer of the exact size and fills it, so the output is copied once.
#[derive(Default)]
pub struct Text(Option<pg_sys::Datum>);

impl render::Sink for Text {
    fn buffer(&mut self, len: usize) -> &mut [u8] {
        const VARHDRSZ: usize = 4;
        // SAFETY: a varlena of len + 4 bytes with its 4-byte header set, as
        // cstring_to_text_with_len builds it; the caller fills the rest.
        unsafe {
            let ptr = pg_sys::palloc(len + VARHDRSZ).cast::<u8>();
            ptr.cast::<u32>().write_unaligned(((len + VARHDRSZ) as u32) << 2);
            self.0 = Some(pg_sys::Datum::from(ptr));
            std::slice::from_raw_parts_mut(ptr.add(VARHDRSZ), len)
        }
    }
}

// SAFETY: the datum is a palloc'd text varlena in the function's memory context.
unsafe impl pgrx::callconv::BoxRet for Text {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        let datum = self.0.expect("a successful render fills its text");
        unsafe { fcinfo.return_raw_datum(datum) }
    }
}

pgrx::impl_sql_translatable!(Text, "text");

/// Renders a template as an OpenAI-style messages array.
#[pg_extern(stable, parallel_safe)]
fn prompt_render_chat(
    name: Option<&str>,
    vars: default!(Option<JsonbArg>, "'{}'"),
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> JsonB {
    render_chat(name, &vars_doc(&vars), version, label)
}

/// `prompt_render_chat` with vars as JSON text, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_chat")]
fn prompt_render_chat_ordered(
    name: Option<&str>,
    vars: Option<TextArg>,
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> JsonB {
    render_chat(name, &text_vars(vars.as_ref()), version, label)
}

/// `prompt_render_chat` with `json` vars, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_chat")]
fn prompt_render_chat_json(
    name: Option<&str>,
    vars: Option<JsonArg>,
    version: default!(Option<i32>, "NULL"),
    label: default!(Option<&str>, "NULL"),
) -> JsonB {
    render_chat(name, &text_vars(vars.as_ref()), version, label)
}

fn render_chat(name: Option<&str>, vars: &dyn render::Vars, version: Option<i32>, label: Option<&str>) -> JsonB {
    let limits = gucs::limits();
    JsonB(with_version(name, version, label, |engine, compiled| engine.render_chat(compiled, vars, &limits)))
}

/// The model configuration of a version (from the compiled cache, where a
/// render just put it).
pub(super) fn config_of(name: &str, version: i32) -> StoredJsonb {
    let r = resolve(name, &Selector::Version(version)).or_raise();
    StoredJsonb(cache::with(|c| c.config(r.id)).unwrap_or_else(|| load(name, r.id).or_raise().config))
}

/// A jsonb value as stored (its binary form without the varlena header),
/// returned by copying.
pub struct StoredJsonb(pub Vec<u8>);

impl IntoDatum for StoredJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        const VARHDRSZ: usize = 4;
        let len = self.0.len() + VARHDRSZ;
        // SAFETY: a varlena of len bytes with its 4-byte header set, holding
        // the bytes of a jsonb datum PostgreSQL wrote.
        unsafe {
            let ptr = pg_sys::palloc(len).cast::<u8>();
            ptr.cast::<u32>().write_unaligned((len as u32) << 2);
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), ptr.add(VARHDRSZ), self.0.len());
            Some(pg_sys::Datum::from(ptr))
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

// SAFETY: the datum is a palloc'd jsonb varlena in the function's memory context.
unsafe impl pgrx::callconv::BoxRet for StoredJsonb {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut pgrx::callconv::FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        let datum = self.into_datum().expect("a jsonb value");
        unsafe { fcinfo.return_raw_datum(datum) }
    }
}

pgrx::impl_sql_translatable!(StoredJsonb, "jsonb");

/// Renders a version of either kind, raising errors: (text, None) for a
/// text template, (None, messages) for a chat template.
pub(super) fn render_any(name: Option<&str>, version: i32, vars: &dyn render::Vars) -> (Option<String>, Option<JsonB>) {
    match render_version(required(name, "name"), version, vars).or_raise() {
        Output::Text(t) => (Some(t), None),
        Output::Chat(m) => (None, Some(JsonB(m))),
    }
}

/// Renders a body that is not stored: a dry run before saving, with the
/// render options it would be saved with.
#[pg_extern(stable, parallel_safe, name = "prompt_render_text")]
fn prompt_render_text_with(
    body: Option<&str>,
    vars: default!(Option<JsonbArg>, "'{}'"),
    options: default!(Option<JsonbArg>, "'{}'"),
) -> String {
    let options = render_options(options.as_ref());
    render_text_adhoc(body, &vars_doc(&vars), options)
}

/// `prompt_render_text` with vars as JSON text, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_text")]
fn prompt_render_text_ordered(body: Option<&str>, vars: Option<TextArg>, options: default!(Option<JsonbArg>, "'{}'")) -> String {
    let options = render_options(options.as_ref());
    render_text_adhoc(body, &text_vars(vars.as_ref()), options)
}

/// `prompt_render_text` with `json` vars, keys in the order written.
#[pg_extern(stable, parallel_safe, name = "prompt_render_text")]
fn prompt_render_text_json(body: Option<&str>, vars: Option<JsonArg>, options: default!(Option<JsonbArg>, "'{}'")) -> String {
    let options = render_options(options.as_ref());
    render_text_adhoc(body, &text_vars(vars.as_ref()), options)
}

/// 0.1.0's `prompt_render_text(body, vars)`, for databases whose schema is
/// not updated yet (the library is shared by every version's SQL).
#[pg_extern(stable, parallel_safe, sql = false)]
fn prompt_render_text(body: Option<&str>, vars: default!(Option<JsonbArg>, "'{}'")) -> String {
    render_text_adhoc(body, &vars_doc(&vars), Options::default())
}

fn render_text_adhoc(body: Option<&str>, vars: &dyn render::Vars, options: Options) -> String {
    let body = required(body, "body");
    check_size(body).or_raise();
    let limits = gucs::limits();
    if body.contains("include") {
        let includes = include::scan(body, None).or_raise();
        provide_includes(options, &includes, 1).or_raise();
    }
    let out = alloc_guard::guarded(gucs::render_memory_limit_bytes(), || {
        cache::with(|c| c.engine().render_adhoc(Kind::Text, body, options, vars, &limits))
    })
    .or_raise();
    match out {
        serde_json::Value::String(s) => s,
        _ => unreachable!("text renders are strings"),
    }
}

/// Render options from a jsonb argument: 22004 for NULL, 22023 for a bad one.
fn render_options(options: Option<&JsonbArg>) -> Options {
    Options::from_json(&required(options, "options").to_json("options").or_raise()).or_raise()
}

/// Checks render options and returns them in full, as stored with a
/// version (prompt_save calls it).
#[pg_extern(immutable, parallel_safe)]
fn _render_options(options: Option<JsonbArg>) -> JsonB {
    JsonB(render_options(options.as_ref()).to_json())
}

fn check_size(body: &str) -> Result<()> {
    let max = gucs::MAX_TEMPLATE_BYTES.get() as usize;
    if body.len() > max {
        return Err(Error::limit("template body", body.len(), max, "pgprompt.max_template_bytes"));
    }
    Ok(())
}

/// The variables a body reads, sorted. Validates syntax and size on the way,
/// which is how `prompt_save` checks a new version.
#[pg_extern(stable, parallel_safe)]
fn prompt_variables(body: Option<&str>, kind: default!(Option<&str>, "'text'")) -> Vec<String> {
    let body = required(body, "body");
    let kind = Kind::parse(required(kind, "kind")).or_raise();
    check_size(body).or_raise();
    alloc_guard::guarded(gucs::render_memory_limit_bytes(), || render::inspect(kind, body, Options::default())).or_raise()
}

/// This session's compiled-template cache: hits, misses and size.
#[pg_extern(volatile, parallel_safe)]
fn prompt_cache_stats() -> TableIterator<
    'static,
    (
        name!(hits, i64),
        name!(misses, i64),
        name!(hit_ratio, f64),
        name!(entries, i32),
        name!(evictions, i64),
        name!(source_bytes, i64),
    ),
> {
    let s = cache::with(|c| c.stats());
    let lookups = s.hits + s.misses;
    let ratio = if lookups == 0 { 0.0 } else { s.hits as f64 / lookups as f64 };
    TableIterator::once((
        s.hits as i64,
        s.misses as i64,
        ratio,
        s.entries as i32,
        s.evictions as i64,
        s.source_bytes as i64,
    ))
}

/// Empties this session's compiled-template cache.
#[pg_extern(volatile, parallel_safe)]
fn prompt_cache_reset() {
    cache::with(|c| c.reset());
}


