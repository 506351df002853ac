//! Rendering: templates compiled with minijinja (Jinja2 semantics) and rendered
//! with bounded work.
//!
//! A template is either `text` (one Jinja body) or `chat` (a JSON array of
//! messages as providers accept them, whose texts are Jinja bodies, plus
//! optional `{placeholder}` entries that splice a message list from the
//! variables; see `chat`).
//!
//! Limits, so a template can never hang or blow up the backend:
//! * fuel: every VM instruction costs fuel; an endless loop runs dry.
//! * output: the writer refuses to grow past `max_output_bytes`.
//! * widths: the filters that build padding from a number (`indent`,
//!   `tojson(indent)`, `format("%999999s")`) are wrapped to cap that number.
//! * recursion: macro recursion is capped well below what the stack holds.
//! * the parser itself refuses nesting deeper than 150 levels.
//!
//! What remains (exponential string growth through `~` in straight-line code)
//! is caught by the host's allocation budget (the extension's `alloc_guard`).
//!
//! Fidelity to Jinja2: each version renders with its `Options` (whitespace
//! switches, undefined behaviour); Python's string, list and dict methods
//! are there (minijinja-contrib's pycompat), and `python` supplies what
//! Jinja2 templates take from Python and transformers (`tojson` as
//! `json.dumps`, `raise_exception`, `strftime_now`, `indent`, `int`).

mod chat;
pub mod include;
pub mod json_text;
mod options;
pub mod python;

pub use include::Include;
pub use options::{Options, Undefined};

use std::collections::{BTreeSet, HashSet};
use std::io;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::{Kwargs, Rest, Serde, StringInput, ValueOrKwargs};
use minijinja::{AutoEscape, Environment, State, UndefinedBehavior, Value};
use serde_json::Value as Json;

use crate::error::{Error, ErrorKind, Result};

/// Largest width a padding filter may ask for. Prompts never need more; a
/// template asking for millions of spaces is an attack or a bug.
pub const MAX_WIDTH: usize = 10_000;

/// Deepest macro recursion allowed. minijinja's own default (500) can exceed
/// an 8 MB backend stack in debug builds; prompts never recurse this deep.
pub const MAX_RECURSION: usize = 64;

/// Roles accepted in chat templates (OpenAI's message format).
pub const CHAT_ROLES: [&str; 5] = ["system", "developer", "user", "assistant", "tool"];

/// The two kinds of template body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Text,
    Chat,
}

impl Kind {
    pub fn parse(s: &str) -> Result<Kind> {
        match s {
            "text" => Ok(Kind::Text),
            "chat" => Ok(Kind::Chat),
            other => Err(Error::invalid(format!(
                "unknown template kind \"{other}\"; expected \"text\" or \"chat\""
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Chat => "chat",
        }
    }
}

/// Work and size bounds for one render, read from the GUCs by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Instructions a render may execute.
    pub fuel: u64,
    /// Bytes a rendered text (or each chat message) may have.
    pub max_output_bytes: usize,
    /// The time `strftime_now` formats, in microseconds since the Unix
    /// epoch (UTC): the server's transaction time.
    pub now: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { fuel: 1_000_000, max_output_bytes: 1 << 20, now: 0 }
    }
}

/// Where a render's variables come from: parsed JSON (tests, dry runs) or a
/// jsonb document read in place (see `jsonb`).
pub trait Vars {
    /// `None` for an object; otherwise what it is instead ("an array", ...).
    fn non_object(&self) -> Option<&'static str>;
    /// How `{{ name }}` prints the top-level variable `name` (borrowed when
    /// it is a string), or `None` when there is no such variable.
    fn printed(&self, name: &str) -> Result<Option<Printed<'_>>>;
    /// A top-level variable as JSON.
    fn get_json(&self, name: &str) -> Result<Option<Json>>;
    /// All variables for minijinja.
    fn to_value(&self) -> Result<Value>;
    /// All variables as JSON (error messages).
    fn to_json(&self) -> Result<Json>;
}

impl Vars for Json {
    fn non_object(&self) -> Option<&'static str> {
        (!self.is_object()).then(|| json_type(self))
    }

    fn printed(&self, name: &str) -> Result<Option<Printed<'_>>> {
        Ok(match self.get(name) {
            None => None,
            Some(Json::String(s)) if s.contains('\0') => return Err(nul_in_output()),
            Some(Json::String(s)) => Some(Printed::Str(s)),
            Some(v) => Some(Printed::Owned(Value::from(Serde(v)).to_string())),
        })
    }

    fn get_json(&self, name: &str) -> Result<Option<Json>> {
        Ok(self.get(name).cloned())
    }

    fn to_value(&self) -> Result<Value> {
        Ok(Value::from(Serde(self)))
    }

    fn to_json(&self) -> Result<Json> {
        Ok(self.clone())
    }
}

/// A printed variable: borrowed from the vars when it is a string.
pub enum Printed<'a> {
    Str(&'a str),
    Owned(String),
}

impl Printed<'_> {
    fn as_str(&self) -> &str {
        match self {
            Printed::Str(s) => s,
            Printed::Owned(s) => s,
        }
    }
}

/// A body that only prints top-level variables between literal text, the
/// most common shape of prompt. It renders by concatenation instead of the
/// VM; `compile` proves the output identical to minijinja's before using it.
/// Each distinct variable is looked up once per render.
#[derive(Debug, Clone)]
struct Fast {
    segments: Vec<Segment>,
    names: Vec<String>,
}

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    /// Index into `Fast::names`.
    Var(usize),
}

/// Distinct variables printed without a heap allocation for their values.
const FAST_INLINE: usize = 16;

/// One piece of a compiled template.
#[derive(Debug, Clone)]
enum Part {
    /// A text template's body, registered in the environment under `template`.
    Body { template: String, fast: Option<Fast> },
    /// A chat message: its JSON, and the templated strings that go in it.
    Message { shape: Json, slots: Vec<Slot> },
    /// A list of messages taken from a variable.
    Placeholder { variable: String, optional: bool },
}

/// A templated string of a chat message, registered under `template`.
#[derive(Debug, Clone)]
struct Slot {
    path: Vec<chat::Step>,
    template: String,
    fast: Option<Fast>,
    /// How errors name it ("message 2 content part 1 text").
    label: String,
}

/// A template ready to render. Immutable once built: the cache keys it by the
/// immutable version id, so it can never go stale.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub kind: Kind,
    /// How it renders; picks the environment it lives in.
    pub options: Options,
    parts: Vec<Part>,
    /// Top-level variables the body reads, sorted (what `prompt_variables` shows).
    pub variables: Vec<String>,
    /// Dotted paths the body reads (`user.name`), to name what a caller left out.
    paths: Vec<String>,
    /// Size of the source, for cache accounting.
    pub source_bytes: usize,
    /// Size of the last output, to allocate the next one at once.
    last_output: std::cell::Cell<usize>,
    /// The version's input schema: vars must match it before rendering.
    pub input_schema: Option<crate::json_schema::Schema>,
    /// The stored templates it includes (`Engine::provide_include`).
    pub includes: Vec<Include>,
}

impl Compiled {
    fn output_hint(&self) -> usize {
        self.last_output.get().max(self.source_bytes) + 64
    }

    fn remember_output(&self, len: usize) {
        self.last_output.set(len);
    }
}

/// A per-backend template engine: a minijinja environment per set of render
/// options in use (whitespace handling is decided when compiling, undefined
/// behaviour per environment), holding every compiled template of the
/// cache, configured for prompts.
pub struct Engine {
    envs: Vec<Env>,
    globals: HashSet<String>,
}

struct Env {
    options: Options,
    env: Environment<'static>,
    fuel: Option<u64>,
    /// Included templates registered here: under their `name@selector`,
    /// which version, and what they include in turn.
    includes: std::collections::HashMap<String, (i64, Vec<Include>)>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// An environment configured for prompts with `options`.
fn environment(options: Options) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(match options.undefined {
        // Printing, iterating or measuring a missing variable is an error,
        // but `{% if x %}`, `x is defined`, `x == "a"` and `x|default(...)`
        // behave as in Jinja2 (StrictUndefined is harsher than prompts need).
        Undefined::Strict => UndefinedBehavior::SemiStrict,
        // Jinja2's default Undefined: prints as nothing, iterates as empty.
        Undefined::Lenient => UndefinedBehavior::Lenient,
    });
    let syntax = SyntaxConfig::builder()
        .trim_blocks(options.trim_blocks)
        .lstrip_blocks(options.lstrip_blocks)
        .keep_trailing_newline(options.keep_trailing_newline)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    // Prompts are plain text: never HTML-escape, whatever the name.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_recursion_limit(MAX_RECURSION);
    // Templates reach no other template but the stored ones they include
    // by "name@label" (registered by `provide_include`; `compile` refuses
    // import, from, extends and any other include): every other name
    // resolves to nothing, so a template can never reach another one that
    // happens to be compiled in the same environment.
    env.set_path_join_callback(|name, _| match Include::parse(name) {
        Some(_) => std::borrow::Cow::Owned(name.to_string()),
        None => std::borrow::Cow::Borrowed("\u{0}"),
    });
    // Python's methods on strings, lists and dicts (`.strip()`, `.items()`, ...).
    env.set_unknown_method_callback(|state, value, method, args| {
        if let Some(s) = value.as_str() {
            // Widths are bounded, in format strings as in arguments.
            if method == "format" {
                let (largest, nested) = largest_brace_width(s);
                if let Some(n) = largest.filter(|n| *n > MAX_WIDTH) {
                    return Err(width_error("format width", n));
                }
                if nested {
                    for arg in args {
                        check_widths("format", arg)?;
                    }
                }
            }
            if matches!(method, "center" | "ljust" | "rjust" | "zfill") {
                if let Some(w) = args.first() {
                    check_widths(method, w)?;
                }
            }
            // Splitting builds a value per piece: pay for them first, as
            // the split filter does, not after they fill memory.
            if let Some(pieces) = python::pieces(s, method, args) {
                minijinja::hooks::charge_items(state, pieces)?;
            }
            if let Some(result) = python::str_method(s, method, args) {
                return result;
            }
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    add_python(&mut env);
    add_bounded_filters(&mut env);
    env
}

impl Engine {
    pub fn new() -> Engine {
        let globals = environment(Options::default()).globals().map(|(name, _)| name.to_string()).collect();
        Engine { envs: Vec::new(), globals }
    }

    /// The environment of `options`, made on first use.
    fn env_mut(&mut self, options: Options) -> &mut Env {
        match self.envs.iter().position(|e| e.options == options) {
            Some(i) => &mut self.envs[i],
            None => {
                self.envs.push(Env { options, env: environment(options), fuel: None, includes: Default::default() });
                self.envs.last_mut().expect("just pushed")
            }
        }
    }

    /// The environment of a compiled template.
    fn env(&self, options: Options) -> &Environment<'static> {
        &self.envs.iter().find(|e| e.options == options).expect("compiled templates have their environment").env
    }

    /// Compiles `body` and registers it under names derived from `key`, which
    /// must be unique in this engine (the cache uses the version id).
    pub fn compile(&mut self, key: &str, kind: Kind, body: &str, options: Options) -> Result<Compiled> {
        let parsed = parse_body(kind, body)?;
        let globals = self.globals.clone();
        let env = &mut self.env_mut(options).env;
        let mut parts = Vec::with_capacity(parsed.len());
        let mut vars = BTreeSet::new();
        let mut paths = BTreeSet::new();
        let mut registered: Vec<String> = Vec::new();
        let mut placeholders = Vec::new();
        let mut includes = BTreeSet::new();
        // Registers one Jinja body under `template`; on error every body
        // registered so far goes again.
        let mut register = |template: &str, source: String, label: Option<&str>| -> Result<Option<Fast>> {
            let fail = |env: &mut Environment<'static>, registered: &[String], e: Error| {
                for t in registered {
                    env.remove_template(t);
                }
                Err(e)
            };
            if let Err(e) = env.add_template_owned(template.to_string(), source) {
                return fail(env, &registered, syntax_error(&e, label));
            }
            match include::scan(env.get_template(template).expect("just added").source(), label) {
                Ok(found) => includes.extend(found),
                Err(e) => {
                    env.remove_template(template);
                    return fail(env, &registered, e);
                }
            }
            let tmpl = env.get_template(template).expect("template was just added");
            for v in tmpl.undeclared_variables(false) {
                if !globals.contains(&v) {
                    vars.insert(v);
                }
            }
            for p in tmpl.undeclared_variables(true) {
                let root = p.split('.').next().unwrap_or(&p);
                if !globals.contains(root) {
                    paths.insert(p);
                }
            }
            registered.push(template.to_string());
            Ok(fast_path(env, &globals, template))
        };
        for (i, part) in parsed.into_iter().enumerate() {
            match part {
                RawPart::Body { source } => {
                    let fast = register(key, source, None)?;
                    parts.push(Part::Body { template: key.to_string(), fast });
                }
                RawPart::Message { shape, slots: raw } => {
                    let mut slots = Vec::with_capacity(raw.len());
                    for (j, slot) in raw.into_iter().enumerate() {
                        let template = format!("{key}#{i}.{j}");
                        let fast = register(&template, slot.source, Some(&slot.label))?;
                        slots.push(Slot { path: slot.path, template, fast, label: slot.label });
                    }
                    parts.push(Part::Message { shape, slots });
                }
                RawPart::Placeholder { variable, optional } => {
                    placeholders.push(variable.clone());
                    parts.push(Part::Placeholder { variable, optional });
                }
            }
        }
        drop(register);
        vars.extend(placeholders);
        let includes: Vec<Include> = includes.into_iter().collect();
        Ok(Compiled {
            kind,
            options,
            parts,
            variables: vars.into_iter().collect(),
            paths: paths.into_iter().collect(),
            source_bytes: body.len(),
            last_output: std::cell::Cell::new(0),
            input_schema: None,
            includes,
        })
    }

    /// The version registered for include `name` in the environment of
    /// `options`, and what it includes; `None` before `provide_include`.
    pub fn included(&self, options: Options, name: &str) -> Option<(i64, &[Include])> {
        let env = self.envs.iter().find(|e| e.options == options)?;
        env.includes.get(name).map(|(id, inc)| (*id, inc.as_slice()))
    }

    /// Registers `source`, version `id` of the template `include` names, for
    /// templates rendering with `options`; returns what it includes in turn.
    /// A version registered already is kept.
    pub fn provide_include(&mut self, options: Options, include: &Include, id: i64, source: &str) -> Result<Vec<Include>> {
        if let Some((known, inc)) = self.included(options, &include.name) {
            if known == id {
                return Ok(inc.to_vec());
            }
        }
        let label = format!("included template {}", include.name);
        let env = self.env_mut(options);
        let found = include::scan(source, Some(&label))?;
        env.env.add_template_owned(include.name.clone(), source.to_string()).map_err(|e| syntax_error(&e, Some(&label)))?;
        env.includes.insert(include.name.clone(), (id, found.clone()));
        Ok(found)
    }

    /// Drops a compiled template's entries from its environment.
    pub fn remove(&mut self, compiled: &Compiled) {
        let env = &mut self.env_mut(compiled.options).env;
        for part in &compiled.parts {
            match part {
                Part::Body { template, .. } => env.remove_template(template),
                Part::Message { slots, .. } => slots.iter().for_each(|s| env.remove_template(&s.template)),
                Part::Placeholder { .. } => {}
            }
        }
    }

    /// Renders a text template. `vars` must be an object.
    pub fn render_text(&mut self, compiled: &Compiled, vars: &dyn Vars, limits: &Limits) -> Result<String> {
        let mut out = Vec::new();
        self.render_text_into(compiled, vars, limits, &mut out)?;
        String::from_utf8(out).map_err(|_| Error::new(ErrorKind::InvalidOutput, "rendered output is not valid UTF-8"))
    }

    /// Like `render_text`, into a buffer the sink allocates once the size is
    /// known: the fast path then writes the output exactly once.
    pub fn render_text_into(&mut self, compiled: &Compiled, vars: &dyn Vars, limits: &Limits, sink: &mut dyn Sink) -> Result<()> {
        if compiled.kind != Kind::Text {
            return Err(Error::new(ErrorKind::WrongKind, "this is a chat template; render it with prompt_render_chat"));
        }
        check_vars(compiled, vars)?;
        python::set_now(limits.now);
        self.set_fuel(compiled.options, limits.fuel);
        let mut ctx = None;
        match &compiled.parts[..] {
            [Part::Body { template, fast, .. }] => {
                self.render_part(template, fast.as_ref(), &mut ctx, compiled, vars, limits, None, sink)
            }
            _ => unreachable!("text templates have exactly one body"),
        }
    }

    /// Renders a template as an OpenAI-style message array. A text template
    /// becomes a single `user` message.
    pub fn render_chat(&mut self, compiled: &Compiled, vars: &dyn Vars, limits: &Limits) -> Result<Json> {
        check_vars(compiled, vars)?;
        python::set_now(limits.now);
        self.set_fuel(compiled.options, limits.fuel);
        let mut ctx = None;
        let mut messages = Vec::with_capacity(compiled.parts.len());
        let mut total = 0usize;
        for (i, part) in compiled.parts.iter().enumerate() {
            let text = |bytes: Vec<u8>| {
                String::from_utf8(bytes).map_err(|_| Error::new(ErrorKind::InvalidOutput, "rendered output is not valid UTF-8"))
            };
            match part {
                // A text template: one user message.
                Part::Body { template, fast } => {
                    let mut bytes = Vec::new();
                    self.render_part(template, fast.as_ref(), &mut ctx, compiled, vars, limits, None, &mut bytes)?;
                    total += bytes.len();
                    messages.push(serde_json::json!({"role": "user", "content": text(bytes)?}));
                }
                Part::Message { shape, slots } => {
                    let mut message = shape.clone();
                    for slot in slots {
                        let mut bytes = Vec::new();
                        self.render_part(&slot.template, slot.fast.as_ref(), &mut ctx, compiled, vars, limits, Some(&slot.label), &mut bytes)?;
                        total += bytes.len();
                        chat::fill(&mut message, &slot.path, text(bytes)?);
                    }
                    messages.push(message);
                }
                Part::Placeholder { variable, optional } => match vars.get_json(variable)? {
                    None | Some(Json::Null) if *optional => {}
                    None => {
                        return Err(Error::new(
                            ErrorKind::MissingVariable,
                            format!("missing variable \"{variable}\" (a message list for placeholder {})", i + 1),
                        ))
                    }
                    Some(list) => {
                        let inserted = chat::spliced(variable, &list).map_err(Error::invalid)?;
                        total += inserted.iter().map(|m| m.to_string().len()).sum::<usize>();
                        messages.extend(inserted);
                    }
                },
            }
            if total > limits.max_output_bytes {
                return Err(output_limit(limits));
            }
        }
        Ok(Json::Array(messages))
    }

    /// Renders a body that is not stored (the dry run), without touching the cache.
    pub fn render_adhoc(&mut self, kind: Kind, body: &str, options: Options, vars: &dyn Vars, limits: &Limits) -> Result<Json> {
        const KEY: &str = "\u{0}adhoc";
        let compiled = self.compile(KEY, kind, body, options)?;
        let out = match kind {
            Kind::Text => self.render_text(&compiled, vars, limits).map(Json::String),
            Kind::Chat => self.render_chat(&compiled, vars, limits),
        };
        self.remove(&compiled);
        out
    }

    fn set_fuel(&mut self, options: Options, fuel: u64) {
        let e = self.env_mut(options);
        if e.fuel != Some(fuel) {
            e.env.set_fuel(Some(fuel));
            e.fuel = Some(fuel);
        }
    }
}

/// The segments of a body that only prints variables, if its fast
/// rendering provably matches minijinja's: both are run on a probe where
/// every variable is a distinct marker, and must agree byte for byte
/// (whitespace control, comments and the trailing newline included).
fn fast_path(env: &Environment<'static>, globals: &HashSet<String>, template: &str) -> Option<Fast> {
    use minijinja::machinery::{tokenize, Token};
    let tmpl = env.get_template(template).ok()?;
    let mut fast = Fast { segments: Vec::new(), names: Vec::new() };
    let mut tokens = tokenize(tmpl.source(), false, Default::default());
    while let Some(tok) = tokens.next() {
        match tok.ok()?.0 {
            Token::TemplateData(text) => fast.segments.push(Segment::Text(text.to_string())),
            Token::VariableStart => {
                let Token::Ident(name) = tokens.next()?.ok()?.0 else { return None };
                if !matches!(tokens.next()?.ok()?.0, Token::VariableEnd) || globals.contains(name) {
                    return None;
                }
                let i = match fast.names.iter().position(|n| n == name) {
                    Some(i) => i,
                    None => {
                        fast.names.push(name.to_string());
                        fast.names.len() - 1
                    }
                };
                fast.segments.push(Segment::Var(i));
            }
            _ => return None,
        }
    }
    let probe: serde_json::Map<String, Json> =
        fast.names.iter().map(|v| (v.clone(), Json::String(format!("\u{e000}{v}\u{e001}")))).collect();
    let probe = Json::Object(probe);
    let mut out = Vec::new();
    let limits = Limits { fuel: 0, max_output_bytes: usize::MAX, now: 0 };
    fast.render(&probe, &limits, &mut out).ok()?;
    let slow = tmpl.render(Value::from(Serde(&probe))).ok()?;
    (out == slow.as_bytes()).then_some(fast)
}

impl Engine {
    /// Renders one body into the sink.
    #[allow(clippy::too_many_arguments)]
    fn render_part(
        &self,
        template: &str,
        fast: Option<&Fast>,
        ctx: &mut Option<Value>,
        compiled: &Compiled,
        vars: &dyn Vars,
        limits: &Limits,
        label: Option<&str>,
        sink: &mut dyn Sink,
    ) -> Result<()> {
        if let Some(fast) = fast {
            // Literal text comes from a PostgreSQL text value and variables
            // pass `Vars::printed`, which refuses NUL: nothing to check after.
            if fast.render(vars, limits, sink)? {
                return Ok(());
            }
            // A variable is missing: let the VM report it exactly as it would.
        }
        if ctx.is_none() {
            *ctx = Some(vars.to_value()?);
        }
        let ctx = ctx.as_ref().expect("just set");
        let tmpl = self.env(compiled.options).get_template(template).expect("compiled templates stay registered");
        let mut writer = CappedWriter {
            buf: Vec::with_capacity(compiled.output_hint().min(limits.max_output_bytes)),
            max: limits.max_output_bytes,
            exceeded: false,
        };
        match tmpl.render_captured_to(ctx, &mut writer) {
            Ok(_) => {}
            Err(_) if writer.exceeded => return Err(output_limit(limits)),
            Err(e) => {
                // An included template's source, by name, from this environment
                // (minijinja keeps sources in errors only in debug builds).
                let env = self.env(compiled.options);
                let source_of = |name: &str| env.get_template(name).ok().map(|t| t.source().to_string());
                return Err(runtime_error(&e, tmpl.source(), &compiled.paths, &compiled.variables, vars, limits, label, &source_of));
            }
        }
        compiled.remember_output(writer.buf.len());
        // minijinja writes whole `str`s, so the bytes are UTF-8; NUL can come
        // from string escapes in the template.
        if writer.buf.contains(&0) {
            return Err(nul_in_output());
        }
        sink.buffer(writer.buf.len()).copy_from_slice(&writer.buf);
        Ok(())
    }
}

/// Where a rendered text goes. The caller allocates the result once its
/// size is known (PostgreSQL: a palloc'd text; tests: a Vec).
pub trait Sink {
    /// A buffer of exactly `len` bytes, to be filled with the output.
    fn buffer(&mut self, len: usize) -> &mut [u8];
}

impl Sink for Vec<u8> {
    fn buffer(&mut self, len: usize) -> &mut [u8] {
        self.clear();
        self.resize(len, 0);
        self
    }
}

impl Fast {
    /// Writes the rendered body into the sink; false (and nothing written)
    /// when a variable is missing.
    fn render(&self, vars: &dyn Vars, limits: &Limits, sink: &mut dyn Sink) -> Result<bool> {
        let mut inline: [Printed<'_>; FAST_INLINE] = std::array::from_fn(|_| Printed::Str(""));
        let mut heap = Vec::new();
        let values: &mut [Printed<'_>] = if self.names.len() <= FAST_INLINE {
            &mut inline[..self.names.len()]
        } else {
            heap.resize_with(self.names.len(), || Printed::Str(""));
            &mut heap
        };
        for (slot, name) in values.iter_mut().zip(&self.names) {
            match vars.printed(name)? {
                Some(p) => *slot = p,
                None => return Ok(false),
            }
        }
        fn piece<'s>(seg: &'s Segment, values: &'s [Printed<'_>]) -> &'s [u8] {
            match seg {
                Segment::Text(t) => t.as_bytes(),
                Segment::Var(i) => values[*i].as_str().as_bytes(),
            }
        }
        let values = &*values;
        let len: usize = self.segments.iter().map(|s| piece(s, values).len()).sum();
        if len > limits.max_output_bytes {
            return Err(output_limit(limits));
        }
        let buf = sink.buffer(len);
        let mut at = 0;
        for seg in &self.segments {
            let p = piece(seg, values);
            buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        Ok(true)
    }
}

pub(crate) fn nul_in_output() -> Error {
    Error::new(ErrorKind::InvalidOutput, "rendered output contains a NUL character, which PostgreSQL text cannot hold")
}

/// Vars must be an object, and match the version's input schema if it has
/// one (the only case that pays for a conversion to JSON).
fn check_vars(compiled: &Compiled, vars: &dyn Vars) -> Result<()> {
    if let Some(what) = vars.non_object() {
        return Err(Error::invalid(format!("vars must be a JSON object, not {what}"))
            .with_hint("Pass variables as jsonb, for example '{\"name\": \"Ada\"}'."));
    }
    match &compiled.input_schema {
        Some(schema) => schema.check(&vars.to_json()?, "vars"),
        None => Ok(()),
    }
}

/// Validates a body and returns the variables it reads, sorted. This is what
/// `prompt_save` and `prompt_variables` run.
pub fn inspect(kind: Kind, body: &str, options: Options) -> Result<Vec<String>> {
    let mut engine = Engine::new();
    Ok(engine.compile("inspect", kind, body, options)?.variables)
}

/// Validates a body and returns the stored templates it includes.
pub fn includes(kind: Kind, body: &str) -> Result<Vec<Include>> {
    let mut engine = Engine::new();
    Ok(engine.compile("inspect", kind, body, Options::default())?.includes)
}

pub fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn output_limit(limits: &Limits) -> Error {
    Error::new(
        ErrorKind::LimitExceeded,
        format!("rendered output exceeds the limit of {} bytes", limits.max_output_bytes),
    )
    .with_hint("The limit is set by pgprompt.max_output_bytes.")
}

/// The body split into its parts before compilation.
enum RawPart {
    Body { source: String },
    Message { shape: Json, slots: Vec<chat::RawSlot> },
    Placeholder { variable: String, optional: bool },
}

fn parse_body(kind: Kind, body: &str) -> Result<Vec<RawPart>> {
    match kind {
        Kind::Text => Ok(vec![RawPart::Body { source: body.to_string() }]),
        Kind::Chat => parse_chat(body),
    }
}

fn parse_chat(body: &str) -> Result<Vec<RawPart>> {
    let invalid = |msg: String| {
        Error::new(ErrorKind::InvalidTemplate, msg).with_hint(
            "A chat template is a JSON array such as [{\"role\": \"system\", \"content\": \"...\"}, {\"placeholder\": \"history\"}].",
        )
    };
    let json: Json = serde_json::from_str(body)
        .map_err(|e| invalid(format!("chat template is not valid JSON: {e}")))?;
    let Json::Array(items) = json else {
        return Err(invalid(format!("chat template must be a JSON array of messages, not {}", json_type(&json))));
    };
    if items.is_empty() {
        return Err(invalid("chat template has no messages".into()));
    }
    let mut parts = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let n = i + 1;
        let Json::Object(mut obj) = item else {
            return Err(invalid(format!("message {n} must be an object")));
        };
        if let Some(p) = obj.remove("placeholder") {
            let Json::String(variable) = p else {
                return Err(invalid(format!("message {n}: \"placeholder\" must name a variable")));
            };
            if !is_identifier(&variable) {
                return Err(invalid(format!("message {n}: placeholder \"{variable}\" is not a valid variable name")));
            }
            let optional = match obj.remove("optional") {
                None => false,
                Some(Json::Bool(b)) => b,
                Some(_) => return Err(invalid(format!("message {n}: \"optional\" must be true or false"))),
            };
            if let Some(k) = obj.keys().next() {
                return Err(invalid(format!("message {n}: unknown key \"{k}\" in a placeholder")));
            }
            parts.push(RawPart::Placeholder { variable, optional });
            continue;
        }
        let slots = chat::template_message(&obj, &format!("message {n}")).map_err(invalid)?;
        parts.push(RawPart::Message { shape: Json::Object(obj), slots });
    }
    Ok(parts)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && s.len() <= 63
}

/// Statements that would reach other templates. Prompts are self-contained.
/// Turns a minijinja compile error into ours, with line and column.
fn syntax_error(e: &minijinja::Error, label: Option<&str>) -> Error {
    let what = e.detail().unwrap_or("invalid syntax");
    let at = match (e.line(), column(e)) {
        (Some(l), Some(c)) => format!(" at line {l}, column {c}"),
        (Some(l), None) => format!(" at line {l}"),
        _ => String::new(),
    };
    let prefix = label.map(|l| format!("{l}: ")).unwrap_or_default();
    if what.contains("maximum recursion limits") {
        // Nesting or chaining beyond what compiling may recurse through.
        return Error::new(ErrorKind::FuelExhausted, format!("{prefix}template too complex{at}: {what}"))
            .with_hint("Blocks nest at most 150 deep and one expression chains at most 500 operations.");
    }
    Error::new(ErrorKind::InvalidTemplate, format!("{prefix}template syntax error{at}: {what}"))
}

/// Column (1-based, in characters) of the start of the error's span.
fn column(e: &minijinja::Error) -> Option<usize> {
    let src = e.template_source()?;
    let start = e.range()?.start.min(src.len());
    let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
    Some(src.get(line_start..start)?.chars().count() + 1)
}

/// Maps a failure during rendering onto our kinds.
fn runtime_error(
    e: &minijinja::Error,
    source: &str,
    paths: &[String],
    variables: &[String],
    vars: &dyn Vars,
    limits: &Limits,
    label: Option<&str>,
    source_of: &dyn Fn(&str) -> Option<String>,
) -> Error {
    use minijinja::ErrorKind as K;
    // An error inside an included template: report it as that template's,
    // naming it, with the variables it reads.
    if e.kind() == K::BadInclude {
        if let Some(inner) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<minijinja::Error>()) {
            let name = inner.name().unwrap_or("a template");
            let child = source_of(name).unwrap_or_default();
            let child = child.as_str();
            let (mut child_paths, mut child_vars) = (BTreeSet::new(), BTreeSet::new());
            if let Ok(t) = Environment::new().template_from_str(child) {
                child_paths.extend(t.undeclared_variables(true));
                child_vars.extend(t.undeclared_variables(false));
            }
            let (child_paths, child_vars): (Vec<String>, Vec<String>) = (child_paths.into_iter().collect(), child_vars.into_iter().collect());
            let inner_label = match label {
                Some(l) => format!("{l}: included template {name}"),
                None => format!("included template {name}"),
            };
            return runtime_error(inner, child, &child_paths, &child_vars, vars, limits, Some(&inner_label), source_of);
        }
    }
    let vars = &vars.to_json().unwrap_or(Json::Null);
    let prefix = label.map(|l| format!("{l}: ")).unwrap_or_default();
    let at = e.line().map(|l| format!(" at line {l}")).unwrap_or_default();
    match e.kind() {
        K::UndefinedError => {
            // Name the variable at the failing expression; a template may read
            // other variables it does not need (guarded by `if` or `default`).
            let missing = missing_paths(paths, vars);
            let snippet = e.range().and_then(|r| source.get(r)).unwrap_or("");
            let named_in = |text: &str| missing.iter().find(|m| mentions(text, m.split('.').next().unwrap_or(m)));
            // The failing expression; for a filter or test (`missing|length`)
            // minijinja points at the filter, so else the one missing variable
            // its line reads.
            let culprit = named_in(snippet).or_else(|| {
                let line = e.line().and_then(|l| source.lines().nth(l.saturating_sub(1))).unwrap_or("");
                let on_line: Vec<&String> = missing.iter().filter(|m| mentions(line, m.split('.').next().unwrap_or(m))).collect();
                (on_line.len() == 1).then(|| on_line[0])
            });
            let message = match culprit {
                Some(m) => format!("{prefix}missing variable \"{m}\"{at}"),
                None => format!("{prefix}undefined value used{at}"),
            };
            let given: Vec<&str> = vars.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
            Error::new(ErrorKind::MissingVariable, message)
                .with_detail(format!(
                    "The template reads: {}. vars has: {}.",
                    variables.join(", "),
                    if given.is_empty() { "nothing".to_string() } else { given.join(", ") }
                ))
                .with_hint("Pass every variable the template prints, or guard optional ones with {% if name %} or name|default(...).")
        }
        K::InvalidOperation if e.detail().is_some_and(|d| d.starts_with(python::RAISED)) => Error::new(
            ErrorKind::Raised,
            format!("{prefix}{}", &e.detail().unwrap_or_default()[python::RAISED.len()..]),
        )
        .with_detail(format!("The template called raise_exception(){at}.")),
        K::OutOfFuel => Error::new(
            ErrorKind::FuelExhausted,
            format!("{prefix}rendering ran out of fuel after {} steps{at}", limits.fuel),
        )
        .with_hint("The template loops too long; the limit is set by pgprompt.render_fuel."),
        K::InvalidOperation if e.detail().is_some_and(|d| d.contains("nests deeper than")) => Error::new(
            ErrorKind::FuelExhausted,
            format!("{prefix}{}{at}", e.detail().unwrap_or("value nests too deep")),
        )
        .with_hint("Values a template builds (lists, maps, namespaces) nest at most 500 levels deep."),
        K::InvalidOperation if e.detail().is_some_and(|d| d.contains("recursion limit")) => Error::new(
            ErrorKind::FuelExhausted,
            format!("{prefix}template recursion deeper than {MAX_RECURSION} levels{at}"),
        ),
        K::InvalidOperation if e.detail().is_some_and(|d| d.contains("too large") || d.contains("too many")) => {
            Error::new(ErrorKind::LimitExceeded, format!("{prefix}{}{at}", e.detail().unwrap_or("value too large")))
        }
        _ => {
            let what = match e.detail() {
                Some(d) => format!("{}: {d}", kind_text(e)),
                None => kind_text(e),
            };
            Error::new(ErrorKind::RenderFailed, format!("{prefix}template failed{at}: {what}"))
        }
    }
}

fn kind_text(e: &minijinja::Error) -> String {
    // minijinja's Display includes location noise; the kind's text is enough.
    let full = minijinja::Error::new(e.kind(), "").to_string();
    full.trim_end_matches(": ").trim_end_matches(':').to_string()
}

/// The paths a template reads that `vars` does not provide. A path through a
/// value that is not an object is not judged (it may be a list or a string).
fn missing_paths(paths: &[String], vars: &Json) -> Vec<String> {
    let mut missing: Vec<String> = Vec::new();
    for path in paths {
        let mut cur = vars;
        for (depth, seg) in path.split('.').enumerate() {
            match cur {
                Json::Object(m) => match m.get(seg) {
                    Some(next) => cur = next,
                    None => {
                        let prefix: Vec<&str> = path.split('.').take(depth + 1).collect();
                        let p = prefix.join(".");
                        if !missing.iter().any(|m| m == &p || p.starts_with(&format!("{m}."))) {
                            missing.push(p);
                        }
                        break;
                    }
                },
                _ => break,
            }
        }
    }
    missing
}

/// Whether `text` uses the identifier `name` (not as part of a longer one).
fn mentions(text: &str, name: &str) -> bool {
    let is_ident = |c: char| c == '_' || c.is_alphanumeric();
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + name.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// Collects output and stops the render once it grows past the limit.
struct CappedWriter {
    buf: Vec<u8>,
    max: usize,
    exceeded: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.max {
            self.exceeded = true;
            return Err(io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn width_error(what: &str, n: usize) -> minijinja::Error {
    minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        format!("{what} of {n} is too large (at most {MAX_WIDTH})"),
    )
}

/// Replaces the built-in filters that allocate padding from a number with
/// versions that refuse absurd numbers before allocating (fuel would stop
/// them too, but only after the limit a superuser may have raised).
fn add_bounded_filters(env: &mut Environment<'static>) {
    // indent(width) and tojson(indent): every number passed is a width.
    env.add_filter("indent", |value: StringInput, width: Option<Value>, first: Option<bool>, blank: Option<bool>, kwargs: Kwargs| {
        if let Some(w) = &width {
            check_widths("indent", w)?;
        }
        if let Some(w) = kwargs.peek::<Option<Value>>("width")? {
            check_widths("indent", &w)?;
        }
        python::indent(value, width, first, blank, kwargs)
    });
    env.add_filter("tojson", |value: &Value, indent: Option<Value>, kwargs: Kwargs| {
        if let Some(i) = &indent {
            check_widths("tojson", i)?;
        }
        for key in kwargs.args() {
            check_widths("tojson", &kwargs.peek::<Value>(key)?)?;
        }
        python::tojson(value, indent, kwargs)
    });
    // format: widths live in the format string ("%100000000s").
    env.add_filter("format", |state: &mut State, format: &Value, args: Rest<ValueOrKwargs>| {
        if let Some(n) = format.as_str().and_then(largest_printf_width) {
            if n > MAX_WIDTH {
                return Err(width_error("format width", n));
            }
        }
        minijinja::filters::format(state, format, args)
    });
}

/// What Jinja2 templates take from Python and transformers (see `python`).
fn add_python(env: &mut Environment<'static>) {
    env.add_function("raise_exception", python::raise_exception);
    env.add_function("strftime_now", python::strftime_now);
    env.add_filter("int", python::int);
    env.add_test("iterable", python::is_iterable);
}

/// Refuses a number larger than `MAX_WIDTH`, also inside keyword arguments.
fn check_widths(filter: &str, v: &Value) -> std::result::Result<(), minijinja::Error> {
    if v.kind() == minijinja::value::ValueKind::Map {
        if let Ok(keys) = v.try_iter() {
            for k in keys {
                if let Ok(inner) = v.get_item(&k) {
                    check_widths(filter, &inner)?;
                }
            }
        }
        return Ok(());
    }
    if v.kind() == minijinja::value::ValueKind::Number && !v.is_true() {
        return Ok(());
    }
    match i128::try_from(v.clone()) {
        Ok(n) if n > MAX_WIDTH as i128 => Err(width_error(&format!("{filter} width"), n.min(usize::MAX as i128) as usize)),
        _ => Ok(()),
    }
}

/// The largest width or precision in a printf-style format string
/// (`"%-20s %.3f"`); digits in the literal text are not widths.
fn largest_printf_width(s: &str) -> Option<usize> {
    let mut widths = Vec::new();
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('%') {
            rest = r;
            continue;
        }
        // An optional mapping key, then flags, width, precision.
        if rest.starts_with('(') {
            rest = rest.find(')').map_or("", |j| &rest[j + 1..]);
        }
        let spec_end = rest.find(|c: char| !(c.is_ascii_digit() || "-+ #0.*".contains(c))).unwrap_or(rest.len());
        widths.extend(largest_digits(&rest[..spec_end]));
        rest = &rest[spec_end..];
    }
    widths.into_iter().max()
}

/// The largest width or precision in a `str.format` string
/// (`"{:>20}"`, `"{0:.3f}"`), and whether a width comes from an argument
/// (`"{:{w}}"`), which the caller then bounds.
fn largest_brace_width(s: &str) -> (Option<usize>, bool) {
    let mut widths = Vec::new();
    let mut nested = false;
    let mut rest = s;
    while let Some(i) = rest.find('{') {
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            continue;
        }
        let end = rest.find('}').unwrap_or(rest.len());
        let field = &rest[..end];
        if let Some((_, spec)) = field.split_once(':') {
            nested |= spec.contains('{');
            widths.extend(largest_digits(spec));
        }
        rest = &rest[end..];
    }
    (widths.into_iter().max(), nested)
}

/// The largest run of digits in `s` (`usize::MAX` beyond what it holds).
fn largest_digits(s: &str) -> Option<usize> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .map(|run| run.parse().unwrap_or(usize::MAX))
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(body: &str, vars: Json) -> Result<String> {
        let mut e = Engine::new();
        let c = e.compile("t", Kind::Text, body, Options::default())?;
        e.render_text(&c, &vars, &Limits::default())
    }

    #[test]
    fn renders_jinja2_semantics() {
        let out = render(
            "Hello {{ name }}!{% for t in topics %} [{{ loop.index }}:{{ t|upper }}]{% endfor %}",
            json!({"name": "Ada", "topics": ["a", "b"]}),
        )
        .unwrap();
        assert_eq!(out, "Hello Ada! [1:A] [2:B]");
        // Jinja2 drops a single trailing newline by default.
        assert_eq!(render("x\n", json!({})).unwrap(), "x");
    }

    #[test]
    fn optional_variables_work_with_if() {
        let body = "A{% if extra %} {{ extra }}{% endif %}";
        assert_eq!(render(body, json!({})).unwrap(), "A");
        assert_eq!(render(body, json!({"extra": "B"})).unwrap(), "A B");
        assert_eq!(render("{{ x|default('d') }}", json!({})).unwrap(), "d");
    }

    #[test]
    fn missing_variable_is_named() {
        let e = render("{{ query }} for grade {{ grade_level }}{% if opt %}{{ opt }}{% endif %}{{ d|default(1) }}", json!({"query": "q"}))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingVariable);
        assert_eq!(e.message, "missing variable \"grade_level\" at line 1");
        let detail = e.detail.unwrap();
        assert!(detail.contains("reads: d, grade_level, opt, query"), "{detail}");
        assert!(detail.contains("vars has: query"), "{detail}");

        let e = render("{{ user.name }}", json!({"user": {}})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingVariable);
        assert!(e.message.contains("\"user.name\""), "{}", e.message);
    }

    #[test]
    fn vars_must_be_an_object() {
        for v in [json!([1]), json!("s"), json!(3), json!(null)] {
            let e = render("x", v).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument);
            assert!(e.message.contains("must be a JSON object"));
        }
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let e = inspect(Kind::Text, "line one\nline {{ two ", Options::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTemplate);
        assert!(e.message.contains("line 2"), "{}", e.message);
        assert!(e.message.contains("column"), "{}", e.message);
        let e = inspect(Kind::Text, "{% for x in y %}never closed", Options::default()).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidTemplate);
    }

    #[test]
    fn variables_are_sorted_and_skip_globals_and_locals() {
        let vars = inspect(
            Kind::Text,
            "{% set ns = namespace(n=0) %}{% for i in range(3) %}{{ b }}{{ i }}{% endfor %}{{ a.x }}{% set local = 1 %}{{ local }}",
            Options::default(),
        )
        .unwrap();
        assert_eq!(vars, vec!["a", "b"]);
    }

    #[test]
    fn include_and_extends_are_not_available() {
        assert_eq!(inspect(Kind::Text, "{% include 'other' %}", Options::default()).unwrap_err().kind, ErrorKind::InvalidTemplate);
        assert_eq!(inspect(Kind::Text, "{% extends 'base' %}", Options::default()).unwrap_err().kind, ErrorKind::InvalidTemplate);
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let mut e = Engine::new();
        let c = e
            .compile("t", Kind::Text, "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", Options::default())
            .unwrap();
        let err = e.render_text(&c, &json!({}), &Limits { fuel: 10_000, max_output_bytes: 1000, now: 0 }).unwrap_err();
        assert_eq!(err.kind, ErrorKind::FuelExhausted);
    }

    #[test]
    fn recursion_is_capped() {
        let body = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}";
        let err = render(body, json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::FuelExhausted, "{}", err.message);
    }

    #[test]
    fn output_is_capped() {
        let mut e = Engine::new();
        let c = e.compile("t", Kind::Text, "{% for i in range(1000) %}0123456789{% endfor %}", Options::default()).unwrap();
        let limits = Limits { fuel: 1_000_000, max_output_bytes: 5000, now: 0 };
        assert_eq!(e.render_text(&c, &json!({}), &limits).unwrap_err().kind, ErrorKind::LimitExceeded);
        let limits = Limits { fuel: 1_000_000, max_output_bytes: 10_000, now: 0 };
        assert_eq!(e.render_text(&c, &json!({}), &limits).unwrap().len(), 10_000);
    }

    #[test]
    fn padding_filters_refuse_absurd_widths() {
        for body in [
            "{{ 'a\nb'|indent(100000000) }}",
            "{{ 'a\nb'|indent(width=100000000) }}",
            "{{ x|tojson(indent=100000000) }}",
            "{{ '%100000000s'|format('a') }}",
        ] {
            let err = render(body, json!({"x": [1]})).unwrap_err();
            assert_eq!(err.kind, ErrorKind::LimitExceeded, "{body}: {}", err.message);
            assert!(err.message.contains("too large"), "{body}: {}", err.message);
        }
        assert_eq!(render("{{ 'a\nb'|indent(2) }}", json!({})).unwrap(), "a\n  b");
        assert_eq!(render("{{ '%5s'|format('a') }}", json!({})).unwrap(), "    a");
        assert_eq!(render("{{ x|tojson }}", json!({"x": [1]})).unwrap(), "[1]");
    }

    #[test]
    fn huge_repetition_is_refused() {
        // Fuel pays for every byte made: a gigabyte is refused before it is allocated.
        let err = render("{{ 'x' * 1000000000 }}", json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::FuelExhausted, "{}", err.message);
    }

    #[test]
    fn nul_in_output_is_refused() {
        let err = render("{{ x }}", json!({"x": "a\u{0}b"})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidOutput);
        let err = render("{{ x|lower }}", json!({"x": "a\u{0}b"})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidOutput);
    }

    #[test]
    fn chat_templates_render_messages() {
        let body = r#"[
            {"role": "system", "content": "You teach grade {{ grade }}."},
            {"placeholder": "history", "optional": true},
            {"role": "user", "content": "{{ question }}", "name": "student"}
        ]"#;
        let mut e = Engine::new();
        let c = e.compile("c", Kind::Chat, body, Options::default()).unwrap();
        assert_eq!(c.variables, vec!["grade", "history", "question"]);
        let out = e.render_chat(&c, &json!({"grade": 5, "question": "Why?"}), &Limits::default()).unwrap();
        assert_eq!(
            out,
            json!([
                {"role": "system", "content": "You teach grade 5."},
                {"role": "user", "content": "Why?", "name": "student"}
            ])
        );
        let hist = json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]);
        let out = e.render_chat(&c, &json!({"grade": 5, "question": "Why?", "history": hist}), &Limits::default()).unwrap();
        assert_eq!(out.as_array().unwrap().len(), 4);
        assert_eq!(out[1]["content"], "hi");

        let err = e.render_text(&c, &json!({}), &Limits::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::WrongKind);
    }

    #[test]
    fn chat_template_errors_point_at_the_message() {
        let cases = [
            ("{}", "JSON array"),
            ("[]", "no messages"),
            ("not json", "not valid JSON"),
            (r#"[{"role": "wizard", "content": "x"}]"#, "unknown role"),
            (r#"[{"role": "user"}]"#, "\"content\""),
            (r#"[{"role": "user", "content": "x", "extra": 1}]"#, "unknown key"),
            (r#"[{"role": "user", "content": "ok"}, {"role": "user", "content": "{{ x "}]"#, "message 2"),
            (r#"[{"placeholder": "bad name"}]"#, "not a valid variable name"),
        ];
        for (body, needle) in cases {
            let e = inspect(Kind::Chat, body, Options::default()).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidTemplate, "{body}");
            assert!(e.message.contains(needle), "{body}: {}", e.message);
        }
    }

    #[test]
    fn text_templates_render_as_one_user_message() {
        let mut e = Engine::new();
        let c = e.compile("t", Kind::Text, "Hi {{ n }}", Options::default()).unwrap();
        let out = e.render_chat(&c, &json!({"n": 1}), &Limits::default()).unwrap();
        assert_eq!(out, json!([{"role": "user", "content": "Hi 1"}]));
    }

    #[test]
    fn placeholder_must_hold_messages() {
        let mut e = Engine::new();
        let c = e.compile("c", Kind::Chat, r#"[{"placeholder": "h"}]"#, Options::default()).unwrap();
        let err = e.render_chat(&c, &json!({}), &Limits::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::MissingVariable);
        let err = e.render_chat(&c, &json!({"h": "x"}), &Limits::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
        let err = e.render_chat(&c, &json!({"h": [{"content": "x"}]}), &Limits::default()).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn removed_templates_leave_the_engine() {
        let mut e = Engine::new();
        let c = e.compile("k", Kind::Text, "a", Options::default()).unwrap();
        e.remove(&c);
        assert!(e.env(Options::default()).get_template("k").is_err());
        // A failed chat compile leaves nothing half-registered.
        let bad = r#"[{"role": "user", "content": "ok"}, {"role": "user", "content": "{% if %}"}]"#;
        assert!(e.compile("c", Kind::Chat, bad, Options::default()).is_err());
        assert!(e.env(Options::default()).get_template("c#0").is_err());
    }

    #[test]
    fn fast_path_is_taken_only_when_it_matches_minijinja() {
        let mut e = Engine::new();
        let fast = |e: &mut Engine, body: &str| {
            let c = e.compile("f", Kind::Text, body, Options::default()).unwrap();
            let is_fast = matches!(&c.parts[..], [Part::Body { fast: Some(_), .. }]);
            e.remove(&c);
            is_fast
        };
        assert!(fast(&mut e, "Hello {{ name }}, grade {{grade}}. Bye {{ name }}.\n"));
        assert!(fast(&mut e, "{{ a }}{# comment #} {{- b }}\n\n"));
        assert!(fast(&mut e, "no variables at all"));
        assert!(!fast(&mut e, "{{ a|upper }}"));
        assert!(!fast(&mut e, "{{ a.b }}"));
        assert!(!fast(&mut e, "{% if a %}x{% endif %}"));
        assert!(!fast(&mut e, "{{ range }}"));
    }

    #[test]
    fn fast_and_slow_paths_print_values_alike() {
        let vars = json!({"s": "text", "i": 7, "f": 0.5, "w": 2.0, "b": true, "n": null, "l": [1, "a"], "o": {"k": 1}});
        let body = "{{ s }}|{{ i }}|{{ f }}|{{ w }}|{{ b }}|{{ n }}|{{ l }}|{{ o }}";
        let fast = render(body, vars.clone()).unwrap();
        // The same body through the VM (a filter keeps it off the fast path).
        let slow = render(&format!("{body}{{{{ ''|upper }}}}"), vars).unwrap();
        assert_eq!(fast, slow);
        // As Jinja2 prints them: Python's repr of lists and dicts.
        assert_eq!(fast, "text|7|0.5|2.0|True|None|[1, 'a']|{'k': 1}");
    }

    #[test]
    fn fast_path_reports_missing_variables_like_the_vm() {
        let e = render("Hi {{ name }} from {{ place }}", json!({"name": "A"})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::MissingVariable);
        assert_eq!(e.message, "missing variable \"place\" at line 1");
    }

    #[test]
    fn adhoc_render_does_not_leak_templates() {
        let mut e = Engine::new();
        let out = e.render_adhoc(Kind::Text, "{{ a }}", Options::default(), &json!({"a": 1}), &Limits::default()).unwrap();
        assert_eq!(out, json!("1"));
        assert_eq!(e.env(Options::default()).templates().count(), 0);
    }
}

/// Jinja2's behaviour where minijinja's differs, each expected value
/// checked against Python's Jinja2 3.1.
#[cfg(test)]
mod jinja2_tests {
    use super::*;
    use serde_json::json;

    fn render(body: &str, vars: Json, options: Json) -> Result<String> {
        let mut e = Engine::new();
        let options = Options::from_json(&options)?;
        match e.render_adhoc(Kind::Text, body, options, &vars, &Limits::default())? {
            Json::String(s) => Ok(s),
            other => panic!("{other}"),
        }
    }

    fn ok(body: &str, vars: Json) -> String {
        render(body, vars, json!({})).unwrap_or_else(|e| panic!("{body}: {}", e.message))
    }

    #[test]
    fn python_methods_and_printing() {
        assert_eq!(
            ok("{{ ' a b '.strip() }}|{{ 'a,b'.split(',') }}|{{ {'a':1}.items()|list }}|{{ 'x'.startswith('x') }}|{{ 'ab'.upper() }}|{{ {'a':1}.get('b', 2) }}", json!({})),
            "a b|['a', 'b']|[('a', 1)]|True|AB|2"
        );
        assert_eq!(
            ok("{{ none is iterable }}|{{ 'a\nb\n'|indent(2) }}|{{ ' 42 '|int }}|{{ [1,'a',none,true] }}|{{ {'k': [1.0, 2.5]} }}|{{ 1e16 }}|{{ 0.1+0.2 }}", json!({})),
            "False|a\n  b\n|42|[1, 'a', None, True]|{'k': [1.0, 2.5]}|1e+16|0.30000000000000004"
        );
    }

    /// Expected values are Python's Jinja2's (tests/oracle's environment).
    #[test]
    fn python_string_methods_render_as_in_python() {
        for (body, want) in [
            ("{{ 'a b  c '.rsplit() }}", "['a', 'b', 'c']"),
            ("{{ 'a,b,c'.rsplit(',', 1) }}", "['a,b', 'c']"),
            ("{{ 'a,b,c'.rsplit(',') }}", "['a', 'b', 'c']"),
            ("{{ '  x y '.rsplit(None, 1) }}", "['  x', 'y']"),
            ("{{ 'hello'.index('l') }}", "2"),
            ("{{ 'hello'.rindex('l') }}", "3"),
            ("{{ 'héllo'.index('l') }}", "2"),
            ("{{ 'ab'.center(7) }}", "   ab  "),
            ("{{ 'ab'.center(6, '*') }}", "**ab**"),
            ("{{ 'abc'.center(6) }}", " abc  "),
            ("{{ 'ab'.ljust(5, '.') }}", "ab..."),
            ("{{ 'ab'.rjust(5) }}", "   ab"),
            ("{{ '42'.zfill(5) }}", "00042"),
            ("{{ '-42'.zfill(5) }}", "-0042"),
            ("{{ '+7'.zfill(4) }}", "+007"),
            ("{{ 'abc'.zfill(2) }}", "abc"),
            ("{{ 'a=b=c'.partition('=') }}", "('a', '=', 'b=c')"),
            ("{{ 'a=b=c'.rpartition('=') }}", "('a=b', '=', 'c')"),
            ("{{ 'abc'.partition('x') }}", "('abc', '', '')"),
            ("{{ 'abc'.rpartition('x') }}", "('', '', 'abc')"),
            ("{{ 'prefix_name'.removeprefix('prefix_') }}", "name"),
            ("{{ 'file.txt'.removesuffix('.txt') }}", "file"),
            ("{{ 'Hello World'.swapcase() }}", "hELLO wORLD"),
            ("{{ '{:>6}|{:<4}|{:^5}'.format('a', 'b', 'c') }}", "     a|b   |  c  "),
            ("{{ 'Order 123456789012 for {}'.format('x') }}", "Order 123456789012 for x"),
            ("{{ '%s ordered 20000 units'|format('Ada') }}", "Ada ordered 20000 units"),
            ("{{ '{0:.3f}'.format(3.14159) }}", "3.142"),
        ] {
            assert_eq!(ok(body, json!({})), want, "{body}");
        }
        for body in ["{{ 'x'.center(100000) }}", "{{ '{:>100000}'.format(1) }}", "{{ '{:{w}}'.format(1, w=1000000) }}", "{{ '%100000s'|format(1) }}"] {
            let e = render(body, json!({}), json!({})).unwrap_err();
            assert_eq!(e.kind, ErrorKind::LimitExceeded, "{body}: {}", e.message);
        }
        for body in ["{{ 'abc'.index('x') }}", "{{ 'ab'.center(5, 'xy') }}", "{{ 'ab'.partition('') }}"] {
            assert!(render(body, json!({}), json!({})).is_err(), "{body}");
        }
    }

    #[test]
    fn tojson_is_json_dumps() {
        let x = json!({"b": 1, "a": [1, "é<", 2.5, null, true]});
        assert_eq!(ok("{{ x|tojson }}", json!({"x": x})), r#"{"b": 1, "a": [1, "é<", 2.5, null, true]}"#);
        assert_eq!(ok("{{ x|tojson(sort_keys=true, ensure_ascii=true) }}", json!({"x": x})), r#"{"a": [1, "\u00e9<", 2.5, null, true], "b": 1}"#);
        assert_eq!(ok("{{ x|tojson(indent=2) }}", json!({"x": {"a": [1], "b": {}}})), "{\n  \"a\": [\n    1\n  ],\n  \"b\": {}\n}");
        assert_eq!(ok("{{ x|tojson(separators=(',', ':')) }}", json!({"x": {"a": [1, 2]}})), r#"{"a":[1,2]}"#);
        let e = render("{{ x|tojson }}", json!({}), json!({"undefined": "lenient"})).unwrap_err();
        assert!(e.message.contains("not JSON serializable"), "{}", e.message);
        // Engine objects are not data, as json.dumps refuses them.
        for (body, what) in [
            ("{{ namespace(a=1)|tojson }}", "Namespace"),
            ("{% macro m() %}{% endmacro %}{{ m|tojson }}", "Macro"),
            ("{% for i in [1] %}{{ loop|tojson }}{% endfor %}", "LoopContext"),
        ] {
            let e = render(body, json!({}), json!({})).unwrap_err();
            assert!(e.message.contains(&format!("Object of type {what} is not JSON serializable")), "{body}: {}", e.message);
        }
        assert_eq!(ok("{{ {'a': dict(b=[1])}|tojson }}", json!({})), r#"{"a": {"b": [1]}}"#);
    }

    #[test]
    fn strict_mode_compares_and_tests_missing_variables_as_jinja2() {
        assert_eq!(ok("{% if tier == 'x' %}x{% else %}other{% endif %}", json!({})), "other");
        assert_eq!(ok("{% if tier != 'x' %}ne{% endif %}|{{ tier is defined }}|{{ tier|default('d') }}", json!({})), "ne|False|d");
        for body in ["{{ missing }}", "{{ missing|length }}", "{% for x in missing %}{% endfor %}"] {
            let e = render(body, json!({}), json!({})).unwrap_err();
            assert_eq!(e.kind, ErrorKind::MissingVariable, "{body}: {}", e.message);
        }
        // Lenient is Jinja2's default Undefined.
        assert_eq!(render("[{{ missing }}]{{ missing|length }}{% for x in missing %}x{% endfor %}", json!({}), json!({"undefined": "lenient"})).unwrap(), "[]0");
    }

    #[test]
    fn whitespace_options_are_jinja2s() {
        let body = "{% for m in ms %}\n  {{ m }}\n{% endfor %}\n";
        assert_eq!(ok(body, json!({"ms": [1, 2]})), "\n  1\n\n  2\n");
        assert_eq!(render(body, json!({"ms": [1, 2]}), json!({"trim_blocks": true, "lstrip_blocks": true})).unwrap(), "  1\n  2\n");
        assert_eq!(render(body, json!({"ms": [1]}), json!({"trim_blocks": true, "keep_trailing_newline": true})).unwrap(), "  1\n");
    }

    #[test]
    fn globals_and_tags_of_chat_templates() {
        let e = render("{{ raise_exception('Conversation roles must alternate') }}", json!({}), json!({})).unwrap_err();
        assert_eq!((e.kind, e.message.as_str()), (ErrorKind::Raised, "Conversation roles must alternate"));
        let e = render("{{ raise_exception('é' * 5000) }}", json!({}), json!({})).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Raised);
        assert_eq!(e.message, format!("{} [1808 more bytes]", "é".repeat(4096)));
        python::set_now(1_767_225_600_000_000); // 2026-01-01 00:00 UTC
        let mut e = Engine::new();
        let limits = Limits { now: 1_767_225_600_000_000, ..Limits::default() };
        let out = e.render_adhoc(Kind::Text, "{{ strftime_now('%d %b %Y') }}", Options::default(), &json!({}), &limits).unwrap();
        assert_eq!(out, json!("01 Jan 2026"));
        assert_eq!(ok("a{% generation %}b{{ x }}{% endgeneration %}c", json!({"x": 1})), "ab1c");
        assert_eq!(ok("{% for i in [1,2,3] %}{% if i == 2 %}{% continue %}{% endif %}{{ i }}{% endfor %}", json!({})), "13");
    }
}
