//! What an application uses: render, render for a user, log a call, scan
//! text, with the seeds' fallback chain for when the database is away.
//!
//! Rendering asks the database (`prompt_render`). Every template rendered
//! that way is also kept in-process (its active version's body), and
//! dropped when `NOTIFY pgprompt_changes` says the template changed, so the
//! copy is never older than the last change the connection heard of. When
//! the database cannot be reached, rendering falls back, in order, to that
//! copy, to the overrides (a directory of template files or a JSON object),
//! then to the defaults compiled into the application, rendering locally
//! with the extension's own engine (`pgprompt-engine`) and the version's
//! render options, so a copy renders byte for byte as the server does.
//! Errors of the template itself (a missing variable, an unknown template)
//! are not connection failures and are returned, not papered over.

use std::collections::HashMap;
use std::path::Path;

use pgprompt_engine::render::{Engine, Kind, Limits, Options};
use postgres::{Client, Config, NoTls};
use serde_json::Value;

use crate::{files, Error, Result};

/// Where a rendering came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The database rendered it.
    Database,
    /// The database was unreachable: the in-process copy of the active version.
    Cache,
    /// The database was unreachable: the override directory or JSON.
    Override,
    /// The database was unreachable: the application's compiled-in default.
    Default,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    /// The version rendered, when known.
    pub version: Option<i32>,
    pub source: Source,
}

/// A rendering for one user, with what to log it under.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedFor {
    pub text: String,
    pub version: i32,
    pub experiment: Option<String>,
    pub variant: Option<String>,
    /// The version's model configuration (model, temperature, ...).
    pub config: Value,
}

/// One LLM call to log (see `prompt_log_execution`).
#[derive(Debug, Clone, Default)]
pub struct Execution<'a> {
    pub template: &'a str,
    pub version: Option<i32>,
    pub model: Option<&'a str>,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub latency_ms: Option<i32>,
    pub success: bool,
    pub user_id: Option<&'a str>,
    pub rendered_prompt: Option<&'a str>,
    pub response: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub experiment: Option<&'a str>,
    pub variant: Option<&'a str>,
    pub metadata: Option<Value>,
    /// The application's unit of work (a request, a turn) the call is part of.
    pub trace_id: Option<&'a str>,
    /// The id of the call that caused this one (its trace and session are taken from it).
    pub parent_id: Option<i64>,
    /// The user's session (a conversation).
    pub session_id: Option<&'a str>,
}

/// The value of a feedback score, of the kind its name was declared with
/// (see `prompt_score_define`).
#[derive(Debug, Clone, PartialEq)]
pub enum ScoreValue<'a> {
    /// A numeric score (a rating, an eval score).
    Number(f64),
    /// A boolean score (thumbs, resolved).
    Bool(bool),
    /// A categorical score.
    Category(&'a str),
}

/// What a score is attached to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scored<'a> {
    /// A logged call: the id `log_execution` returned.
    Execution(i64),
    /// Every call of a trace.
    Trace(&'a str),
}

/// A guardrail finding (see `prompt_guard_scan`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub guardrail: String,
    pub kind: String,
    pub entity: String,
    pub start: i32,
    pub end: i32,
    pub severity: String,
    pub action: String,
}

struct Cached {
    version: i32,
    body: String,
    options: Options,
}

/// A template to render locally: its body and render options.
struct Local {
    body: String,
    options: Options,
}

pub struct Prompts {
    config: Config,
    client: Option<Client>,
    cache: HashMap<String, Cached>,
    overrides: HashMap<String, Local>,
    defaults: HashMap<String, Local>,
    engine: Engine,
}

impl Prompts {
    /// A client for the database `config` names; it connects on first use.
    pub fn new(config: Config) -> Prompts {
        Prompts {
            config,
            client: None,
            cache: HashMap::new(),
            overrides: HashMap::new(),
            defaults: HashMap::new(),
            engine: Engine::new(),
        }
    }

    /// Templates compiled into the application: the last resort (rendered
    /// with the default render options).
    pub fn with_defaults(mut self, defaults: &[(&str, &str)]) -> Prompts {
        self.defaults.extend(defaults.iter().map(|(n, b)| (n.to_string(), Local { body: b.to_string(), options: Options::default() })));
        self
    }

    /// Overrides from an export directory (`pgprompt export` writes it):
    /// each template's release, with its render options.
    pub fn with_override_dir(mut self, dir: &Path) -> Result<Prompts> {
        let local = |path: &Path, e: &dyn std::fmt::Display| Error::local(format!("{}: {e}", path.display()));
        for entry in std::fs::read_dir(dir).map_err(|e| local(dir, &e))? {
            let path = entry.map_err(|e| Error::local(e.to_string()))?.path();
            let meta_path = path.join("template.json");
            if !meta_path.is_file() {
                continue;
            }
            let meta = files::parse_meta(&std::fs::read_to_string(&meta_path).map_err(|e| local(&meta_path, &e))?)
                .map_err(|e| local(&meta_path, &e))?;
            let version_path = path.join(files::version_file_name(meta.release));
            let v = files::parse_version(&std::fs::read_to_string(&version_path).map_err(|e| local(&version_path, &e))?)
                .map_err(|e| local(&version_path, &e))?;
            let options = Options::from_json(&v.options).map_err(|e| Error::local(e.message))?;
            self.overrides.insert(meta.name, Local { body: v.body, options });
        }
        Ok(self)
    }

    /// Overrides from a JSON object of name to body.
    pub fn with_override_json(mut self, json: &str) -> Result<Prompts> {
        let map: HashMap<String, String> =
            serde_json::from_str(json).map_err(|e| Error::local(format!("overrides must be a JSON object of template bodies: {e}")))?;
        self.overrides.extend(map.into_iter().map(|(n, body)| (n, Local { body, options: Options::default() })));
        Ok(self)
    }

    /// The connection, made (and LISTENing) if there is none; None when the
    /// database cannot be reached.
    fn client(&mut self) -> Option<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        if self.client.is_none() {
            let mut c = self.config.connect(NoTls).ok()?;
            c.batch_execute("LISTEN pgprompt_changes").ok()?;
            // Whatever changed while we were away is unknown: start afresh.
            self.cache.clear();
            self.client = Some(c);
        }
        self.client.as_mut()
    }

    /// Drops cached templates that pgprompt_changes says changed. A
    /// notification that names the version already cached (it may arrive
    /// after the render that fetched that version) changes nothing.
    fn drain_notifications(&mut self) {
        let Some(c) = self.client.as_mut() else { return };
        let mut changed = Vec::new();
        let mut n = c.notifications();
        let mut it = n.iter();
        while let Ok(Some(note)) = postgres::fallible_iterator::FallibleIterator::next(&mut it) {
            changed.push(serde_json::from_str::<Value>(note.payload()).unwrap_or_default());
        }
        for note in changed {
            let Some(t) = note["template"].as_str() else {
                self.cache.clear();
                continue;
            };
            let current = matches!(note["action"].as_str(), Some("activate" | "rollback" | "create"))
                && self.cache.get(t).is_some_and(|c| Some(i64::from(c.version)) == note["version"].as_i64());
            if !current {
                self.cache.remove(t);
            }
        }
    }

    /// Runs `f` on the database; Ok(None) when it is unreachable (the
    /// connection is dropped so the next call reconnects).
    fn on_database<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<Option<T>> {
        let Some(c) = self.client() else { return Ok(None) };
        match f(c) {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.as_db_error().is_none() => {
                self.client = None;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `on_database`, with an unreachable database an error.
    fn database<T>(&mut self, f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>) -> Result<T> {
        self.on_database(f)?.ok_or_else(|| Error::local("the database is unreachable".to_string()))
    }

    /// Renders a text template's active version with `vars` (a JSON object;
    /// its keys keep their order).
    pub fn render(&mut self, name: &str, vars: &Value) -> Result<Rendered> {
        self.drain_notifications();
        let vars_text = vars.to_string();
        let known = self.cache.get(name).map(|c| c.version);
        let found = self.on_database(|c| {
            // The active version comes along, so a copy is refreshed even
            // when a change notification has not arrived yet.
            let r = c.query_one(
                "SELECT pgprompt.prompt_render($1, $2::text), (SELECT active_version FROM pgprompt.prompt_templates WHERE name = $1)",
                &[&name, &vars_text],
            )?;
            let (text, active): (String, Option<i32>) = (r.get(0), r.get(1));
            let copy = if known.is_some() && known == active {
                None
            } else {
                let r = c.query_one("SELECT version, body, options::text FROM pgprompt.prompt_get($1)", &[&name])?;
                Some((r.get::<_, i32>(0), r.get::<_, String>(1), r.get::<_, String>(2)))
            };
            Ok((text, copy))
        })?;
        if let Some((text, copy)) = found {
            if let Some((version, body, options)) = copy {
                let options = serde_json::from_str(&options).ok().and_then(|o| Options::from_json(&o).ok()).unwrap_or_default();
                self.cache.insert(name.to_string(), Cached { version, body, options });
            }
            let version = self.cache.get(name).map(|c| c.version);
            return Ok(Rendered { text, version, source: Source::Database });
        }
        let (local, version, source) = if let Some(c) = self.cache.get(name) {
            (Local { body: c.body.clone(), options: c.options }, Some(c.version), Source::Cache)
        } else if let Some(l) = self.overrides.get(name) {
            (Local { body: l.body.clone(), options: l.options }, None, Source::Override)
        } else if let Some(l) = self.defaults.get(name) {
            (Local { body: l.body.clone(), options: l.options }, None, Source::Default)
        } else {
            return Err(Error::local(format!(
                "the database is unreachable and template \"{name}\" has no cached copy, override or default"
            )));
        };
        Ok(Rendered { text: render_locally(&mut self.engine, &local.body, local.options, vars)?, version, source })
    }

    /// Renders the version `prompt_assign` picks for the user (database only).
    pub fn render_for(&mut self, name: &str, user_id: &str, vars: &Value) -> Result<RenderedFor> {
        let vars_text = vars.to_string();
        let row = self.database(|c| {
            c.query_one(
                "SELECT coalesce(prompt, messages::text), version, experiment, variant, config::text
                   FROM pgprompt.prompt_render_for($1, $2, $3::text)",
                &[&name, &user_id, &vars_text],
            )
        })?;
        let config = serde_json::from_str(row.get::<_, &str>(4)).map_err(|e| Error::local(e.to_string()))?;
        Ok(RenderedFor { text: row.get(0), version: row.get(1), experiment: row.get(2), variant: row.get(3), config })
    }

    /// Logs a call; its id, or None when logging is switched off.
    pub fn log_execution(&mut self, e: &Execution) -> Result<Option<i64>> {
        let metadata = e.metadata.clone().unwrap_or_else(|| Value::Object(Default::default())).to_string();
        let row = self
            .database(|c| {
                c.query_one(
                    "SELECT pgprompt.prompt_log_execution($1, $2, $3, $4, $5, $6::int4, $7, $8, $9, $10, $11, $12, $13, $14, $15::text::jsonb,
                                                         trace_id => $16, parent_id => $17, session_id => $18)",
                    &[
                        &e.template,
                        &e.version,
                        &e.model,
                        &e.input_tokens,
                        &e.output_tokens,
                        &e.latency_ms,
                        &e.success,
                        &e.user_id,
                        &e.rendered_prompt,
                        &e.response,
                        &e.error_message,
                        &e.cached_input_tokens,
                        &e.experiment,
                        &e.variant,
                        &metadata,
                        &e.trace_id,
                        &e.parent_id,
                        &e.session_id,
                    ],
                )
            })?;
        Ok(row.get(0))
    }

    /// Scores a logged call or a trace and returns the score's id. Scoring
    /// the same one under the same name again records a correction that
    /// supersedes the score in force.
    pub fn score(&mut self, scored: Scored, name: &str, value: ScoreValue, comment: Option<&str>, source: Option<&str>) -> Result<i64> {
        let source = source.unwrap_or("api");
        // The value goes as text, cast to its kind's type so that the
        // server picks that overload (a number as Rust writes it: the
        // shortest decimal that reads back as the same f64).
        let (value, cast) = match value {
            ScoreValue::Number(v) => (v.to_string(), "::numeric"),
            ScoreValue::Bool(v) => (v.to_string(), "::boolean"),
            ScoreValue::Category(v) => (v.to_string(), ""),
        };
        self.database(|c| {
            let row = match scored {
                Scored::Execution(id) => c.query_one(
                    &format!("SELECT pgprompt.prompt_score($1::int8, $2, $3::text{cast}, $4, $5)"),
                    &[&id, &name, &value, &comment, &source],
                )?,
                Scored::Trace(t) => c.query_one(
                    &format!("SELECT pgprompt.prompt_score_trace($1::text, $2, $3::text{cast}, $4, $5)"),
                    &[&t, &name, &value, &comment, &source],
                )?,
            };
            Ok(row.get(0))
        })
    }

    /// Guardrail findings in `text` (`direction`: input or output).
    pub fn scan(&mut self, text: &str, direction: &str) -> Result<Vec<Finding>> {
        let rows = self.database(|c| c.query("SELECT * FROM pgprompt.prompt_guard_scan($1, $2)", &[&text, &direction]))?;
        Ok(rows
            .iter()
            .map(|r| Finding {
                guardrail: r.get("guardrail"),
                kind: r.get("kind"),
                entity: r.get("entity"),
                start: r.get("start_pos"),
                end: r.get("end_pos"),
                severity: r.get("severity"),
                action: r.get("action"),
            })
            .collect())
    }

    /// Names of the templates kept in-process.
    pub fn cached(&self) -> Vec<(&str, i32)> {
        let mut v: Vec<_> = self.cache.iter().map(|(n, c)| (n.as_str(), c.version)).collect();
        v.sort();
        v
    }
}

/// Renders a text body in-process as the server renders it: the same engine
/// and limits (at the settings' defaults), `strftime_now` from the clock.
/// Errors carry the SQLSTATE the server would give.
fn render_locally(engine: &mut Engine, body: &str, options: Options, vars: &Value) -> Result<String> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let limits = Limits { now, ..Limits::default() };
    match engine.render_adhoc(Kind::Text, body, options, vars, &limits) {
        Ok(Value::String(text)) => Ok(text),
        Ok(other) => Ok(other.to_string()),
        Err(e) => Err(Error {
            sqlstate: Some(e.kind.sqlstate().to_string()),
            ..Error::local(format!("rendering locally: {}", e.message))
        }),
    }
}

/// One variant of an experiment's results (see `v_ab_test_results`).
#[derive(Debug, Clone, PartialEq)]
pub struct VariantResult {
    pub variant: String,
    pub version: i32,
    pub is_control: bool,
    pub executions: i64,
    pub successes: i64,
    pub success_rate: Option<f64>,
    pub interval: Option<(f64, f64)>,
    pub lift_abs: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: Option<bool>,
    pub sample_ratio_mismatch: bool,
}

/// One template version's figures of the last 30 days (see `v_template_performance`).
#[derive(Debug, Clone, PartialEq)]
pub struct Performance {
    pub template: String,
    pub version: i32,
    pub executions: i64,
    pub success_rate: Option<f64>,
    pub p95_latency_ms: Option<f64>,
    pub total_cost_usd: Option<String>,
}

impl Prompts {
    /// Starts (or resumes) an experiment.
    pub fn experiment_start(&mut self, name: &str) -> Result<()> {
        self.database(|c| c.execute("SELECT pgprompt.prompt_experiment_start($1)", &[&name]).map(|_| ()))
    }

    /// Stops a running experiment.
    pub fn experiment_stop(&mut self, name: &str) -> Result<()> {
        self.database(|c| c.execute("SELECT pgprompt.prompt_experiment_stop($1)", &[&name]).map(|_| ()))
    }

    /// Concludes an experiment with `variant` (None: the significant winner);
    /// the version activated. `force` promotes before every variant has the
    /// minimum sample (and passes the release gate).
    pub fn experiment_promote(&mut self, name: &str, variant: Option<&str>, force: bool) -> Result<i32> {
        self.database(|c| {
            Ok(c.query_one("SELECT pgprompt.prompt_experiment_promote($1, $2, force => $3)", &[&name, &variant, &force])?.get(0))
        })
    }

    /// An experiment's results, control first.
    pub fn experiment_results(&mut self, name: &str) -> Result<Vec<VariantResult>> {
        let rows = self.database(|c| {
            c.query(
                "SELECT variant, version, is_control, executions, successes, success_rate, success_rate_ci_low,
                        success_rate_ci_high, lift_abs, p_value, significant, sample_ratio_mismatch
                   FROM pgprompt.v_ab_test_results WHERE experiment = $1 ORDER BY NOT is_control, variant",
                &[&name],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| VariantResult {
                variant: r.get(0),
                version: r.get(1),
                is_control: r.get(2),
                executions: r.get(3),
                successes: r.get(4),
                success_rate: r.get(5),
                interval: r.get::<_, Option<f64>>(6).zip(r.get::<_, Option<f64>>(7)),
                lift_abs: r.get(8),
                p_value: r.get(9),
                significant: r.get(10),
                sample_ratio_mismatch: r.get(11),
            })
            .collect())
    }

    /// Every template version's figures of the last 30 days.
    pub fn performance(&mut self) -> Result<Vec<Performance>> {
        let rows = self.database(|c| {
            c.query(
                "SELECT template, version, executions, success_rate, p95_latency_ms, total_cost_usd::text
                   FROM pgprompt.v_template_performance ORDER BY template, version",
                &[],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| Performance {
                template: r.get(0),
                version: r.get(1),
                executions: r.get(2),
                success_rate: r.get(3),
                p95_latency_ms: r.get(4),
                total_cost_usd: r.get(5),
            })
            .collect())
    }
}
