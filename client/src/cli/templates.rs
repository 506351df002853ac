//! `pgprompt template ...`

use clap::Subcommand;
use clap_complete::ArgValueCandidates;
use pgprompt_client::{Error, Result, Table};
use serde_json::{json, Value};

use super::{connect, parse_var, read_input, vars, Done, Out};

#[derive(Subcommand)]
pub enum TemplateCmd {
    /// Every template with its release and newest version.
    List,
    /// One template: its release (or the version or label asked for), then
    /// every version with its labels and approvals.
    Show {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        #[arg(long, conflicts_with = "label")]
        version: Option<i32>,
        #[arg(long)]
        label: Option<String>,
    },
    /// The audit trail of one template: every change, who made it and when.
    History {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        /// The newest N events.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Remove a label (production is moved, never removed).
    Unlabel { #[arg(add = ArgValueCandidates::new(super::complete::templates))] name: String, label: String },
    /// Delete a template with all its versions (the audit log keeps them).
    Delete {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        /// Confirm: nothing is deleted without it.
        #[arg(long)]
        yes: bool,
    },
    /// Save a new version from a file or stdin (the first version of a new template is released at once).
    New {
        name: String,
        /// The body; "-" or absent: stdin.
        #[arg(long)]
        file: Option<String>,
        /// Model configuration, a JSON object (absent: the parent version's).
        #[arg(long)]
        config: Option<String>,
        /// What changed.
        #[arg(long)]
        message: Option<String>,
        /// text or chat.
        #[arg(long, default_value = "text")]
        kind: String,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        category: Option<String>,
        /// Render options, a JSON object: trim_blocks, lstrip_blocks,
        /// keep_trailing_newline, undefined ("strict" or "lenient")
        /// (absent: the parent version's).
        #[arg(long)]
        options: Option<String>,
        /// A JSON Schema the vars must match when the version renders
        /// (absent: the parent version's; "{}": none).
        #[arg(long)]
        input_schema: Option<String>,
    },
    /// Release a version: it becomes the active version, which production names
    /// (refused if it fails its test cases, unless --force).
    Activate {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        version: i32,
        #[arg(long)]
        force: bool,
    },
    /// Release again the version that was the release before the current one.
    Rollback { #[arg(add = ArgValueCandidates::new(super::complete::templates))] name: String },
    /// Point a label at a version; production releases it, as activate does.
    Label {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        version: i32,
        label: String,
        #[arg(long)]
        force: bool,
    },
    /// Approve a version (as yourself; its author cannot), so that a template
    /// that requires approval may release it.
    Approve {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        version: i32,
        #[arg(long)]
        comment: Option<String>,
    },
    /// The template's test cases.
    Cases { #[arg(add = ArgValueCandidates::new(super::complete::templates))] name: String },
    /// Create or replace a test case: assertions and vars as JSON.
    CaseSave {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        case: String,
        /// A JSON array of assertions, e.g. '[{"contains": "gravity"}]'.
        #[arg(long)]
        assertions: String,
        /// The variables, a JSON object.
        #[arg(long, default_value = "{}")]
        vars: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a test case.
    CaseDelete { #[arg(add = ArgValueCandidates::new(super::complete::templates))] name: String, case: String },
    /// Unified diff between two versions, each a version number or a label:
    /// the body, then the kind, model configuration, render options and
    /// input schema where they differ.
    Diff { #[arg(add = ArgValueCandidates::new(super::complete::templates))] name: String, from: String, to: String },
    /// Render a version (default: the active one).
    Render {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        /// A variable: key=value (numbers, true, false and null are JSON; the rest strings).
        #[arg(long = "var", value_parser = parse_var)]
        vars: Vec<(String, Value)>,
        /// Variables from a JSON file ("-": stdin); --var entries override it.
        #[arg(long)]
        vars_file: Option<String>,
        #[arg(long)]
        version: Option<i32>,
        #[arg(long)]
        label: Option<String>,
    },
    /// The variables a version uses.
    Variables {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        #[arg(long)]
        version: Option<i32>,
    },
    /// Run the template's test cases against a version (default: the newest).
    Test {
        #[arg(add = ArgValueCandidates::new(super::complete::templates))]
        name: String,
        #[arg(long)]
        version: Option<i32>,
    },
}

pub fn run(url: Option<&str>, out: &Out, cmd: TemplateCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        TemplateCmd::List => {
            out.query(
                &mut c,
                "SELECT t.name, t.active_version AS release, max(v.version) AS newest, t.category, t.description, t.updated_at
                   FROM pgprompt.prompt_templates t JOIN pgprompt.prompt_versions v ON v.template_id = t.id
                  GROUP BY t.id ORDER BY t.name",
                &[],
            )?;
        }
        TemplateCmd::Show { name, version, label } => {
            let info = Table::query(
                &mut c,
                "SELECT t.name, t.description, t.category, g.version, g.is_active AS release, g.labels, g.kind,
                        g.config, g.options, g.input_schema,
                        g.variables, g.body
                   FROM pgprompt.prompt_get($1, $2, $3) g JOIN pgprompt.prompt_templates t ON t.name = g.name",
                &[&name, &version, &label],
            )?;
            let history = Table::query(
                &mut c,
                "SELECT v.version, v.version = t.active_version AS release,
                        coalesce((SELECT array_agg(l.label ORDER BY l.label) FROM pgprompt.v_labels l
                                   WHERE l.template_id = t.id AND l.version = v.version), '{}') AS labels,
                        v.message, v.created_at, v.created_by,
                        coalesce((SELECT array_agg(a.approved_by ORDER BY a.id) FROM pgprompt.prompt_approvals a
                                   WHERE a.template_id = t.id AND a.version = v.version), '{}') AS approved_by
                   FROM pgprompt.prompt_templates t JOIN pgprompt.prompt_versions v ON v.template_id = t.id
                  WHERE t.name = $1 ORDER BY v.version DESC",
                &[&name],
            )?;
            if out.json {
                println!("{{\"template\": {}, \"history\": {}}}", info.to_json().trim_start_matches('[').trim_end_matches(']').trim(), history.to_json());
            } else {
                for (i, col) in info.columns.iter().enumerate().filter(|(_, c)| *c != "body") {
                    println!("{col:15} {}", info.display(0, i));
                }
                println!("\n{}\n", info.get(0, "body").and_then(Value::as_str).unwrap_or_default());
                print!("{}", history.to_text());
            }
        }
        TemplateCmd::New { name, file, config, message, kind, description, category, options, input_schema } => {
            let body = read_input(file.as_deref())?;
            let object = |what: &str, text: Option<String>| -> Result<Option<String>> {
                text.map(|t| super::json_object(what, &t).map(|v| v.to_string())).transpose()
            };
            let config = object("--config", config)?;
            let options = object("--options", options)?;
            let schema = input_schema
                .map(|t| serde_json::from_str::<Value>(&t).map(|v| v.to_string()))
                .transpose()
                .map_err(|e| Error::local(format!("--input-schema is not JSON: {e}")))?;
            let v: i32 = c
                .query_one(
                    "SELECT pgprompt.prompt_save($1, $2, $3::text::jsonb, $4, $5, $6, $7,
                                                 options => $8::text::jsonb, input_schema => $9::text::jsonb)",
                    &[&name, &body, &config, &message, &kind, &description, &category, &options, &schema],
                )?
                .get(0);
            println!("saved version {v} of {name}");
        }
        TemplateCmd::Activate { name, version, force } => {
            c.execute("SELECT pgprompt.prompt_activate($1, $2, $3)", &[&name, &version, &force])?;
            println!("version {version} of {name} is the release (production)");
        }
        TemplateCmd::Rollback { name } => {
            let v: i32 = c.query_one("SELECT pgprompt.prompt_rollback($1)", &[&name])?.get(0);
            println!("version {v} of {name} is the release (production) again");
        }
        TemplateCmd::Label { name, version, label, force } => {
            c.execute("SELECT pgprompt.prompt_label($1, $2, $3, $4)", &[&name, &version, &label, &force])?;
            if label == "production" {
                println!("version {version} of {name} is the release (production)");
            } else {
                println!("{label} of {name} is version {version}");
            }
        }
        TemplateCmd::History { name, limit } => {
            let exists: bool = c.query_one("SELECT EXISTS (SELECT 1 FROM pgprompt.prompt_templates WHERE name = $1)", &[&name])?.get(0);
            let logged: bool = c
                .query_one("SELECT EXISTS (SELECT 1 FROM pgprompt.prompt_audit_logs WHERE object_name = $1)", &[&name])?
                .get(0);
            if !exists && !logged {
                return Err(Error::local(format!("template \"{name}\" does not exist and never did")));
            }
            out.query(
                &mut c,
                "SELECT a.occurred_at, a.actor, a.action, a.object_type, a.object_name, a.version,
                        a.before, a.after
                   FROM pgprompt.prompt_audit_logs a
                  WHERE a.template_id = (SELECT t.id FROM pgprompt.prompt_templates t WHERE t.name = $1)
                     OR a.object_name = $1 OR a.object_name LIKE replace(replace($1, '_', '\\_'), '%', '\\%') || '@%'
                  ORDER BY a.id DESC LIMIT $2",
                &[&name, &limit],
            )?;
        }
        TemplateCmd::Unlabel { name, label } => {
            let removed: bool = c.query_one("SELECT pgprompt.prompt_unlabel($1, $2)", &[&name, &label])?.get(0);
            if !removed {
                return Err(Error::local(format!("template \"{name}\" has no label \"{label}\"")));
            }
            println!("removed label {label} of {name}");
        }
        TemplateCmd::Delete { name, yes } => {
            if !yes {
                return Err(Error::local(format!(
                    "deleting \"{name}\" removes every version, label and test case (the audit log keeps them): pass --yes"
                )));
            }
            c.execute("SELECT pgprompt.prompt_delete($1)", &[&name])?;
            println!("deleted template {name}");
        }
        TemplateCmd::Approve { name, version, comment } => {
            c.execute("SELECT pgprompt.prompt_approve($1, $2, $3)", &[&name, &version, &comment])?;
            println!("version {version} of {name} is approved");
        }
        TemplateCmd::Diff { name, from, to } => {
            let a = version_for_diff(&mut c, &name, &from)?;
            let b = version_for_diff(&mut c, &name, &to)?;
            let parts = [
                ("kind", &a.kind, &b.kind),
                ("config", &a.config, &b.config),
                ("options", &a.options, &b.options),
                ("input_schema", &a.input_schema, &b.input_schema),
            ];
            if out.json {
                // Each part as it is (config an object), and which changed.
                let side = |v: &Compared, sel: &str| json!({"selector": sel, "version": v.version});
                let mut doc = json!({"template": name, "from": side(&a, &from), "to": side(&b, &to)});
                let mut changed = Vec::new();
                if a.body != b.body {
                    changed.push("body");
                }
                doc["body"] = json!({"from": a.body, "to": b.body,
                                     "unified": similar::TextDiff::from_lines(&a.body, &b.body).unified_diff().context_radius(3).header(&a.header, &b.header).to_string()});
                for (part, x, y) in &parts {
                    if x != y {
                        changed.push(part);
                    }
                    doc[*part] = json!({"from": a.value(part), "to": b.value(part)});
                }
                doc["changed"] = json!(changed);
                out.print(&(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"));
                return Ok(Done::Ok);
            }
            let mut text = diff_text(&a.body, &b.body, &a.header, &b.header, &out.style());
            for (part, x, y) in parts {
                if x != y {
                    text.push_str(&diff_text(x, y, &format!("{} {part}", a.header), &format!("{} {part}", b.header), &out.style()));
                }
            }
            out.print(&text);
        }
        TemplateCmd::Render { name, vars: pairs, vars_file, version, label } => {
            let vars = vars(vars_file.as_deref(), &pairs)?.to_string();
            let kind: String = c.query_one("SELECT kind FROM pgprompt.prompt_get($1, $2, $3)", &[&name, &version, &label])?.get(0);
            if kind == "chat" {
                let messages: String = c
                    .query_one("SELECT pgprompt.prompt_render_chat($1, $2::text, $3, $4)::text", &[&name, &vars, &version, &label])?
                    .get(0);
                let pretty: Value = serde_json::from_str(&messages).map_err(|e| Error::local(e.to_string()))?;
                println!("{}", serde_json::to_string_pretty(&pretty).unwrap_or(messages));
            } else {
                let text: String =
                    c.query_one("SELECT pgprompt.prompt_render($1, $2::text, $3, $4)", &[&name, &vars, &version, &label])?.get(0);
                if out.json {
                    println!("{}", Value::String(text));
                } else {
                    println!("{text}");
                }
            }
        }
        TemplateCmd::Variables { name, version } => {
            out.query(&mut c, "SELECT unnest(variables) AS variable FROM pgprompt.prompt_get($1, $2)", &[&name, &version])?;
        }
        TemplateCmd::Cases { name } => {
            out.query(
                &mut c,
                "SELECT c.name, c.description, c.vars, c.assertions, c.updated_at
                   FROM pgprompt.prompt_test_cases c JOIN pgprompt.prompt_templates t ON t.id = c.template_id
                  WHERE t.name = $1 ORDER BY c.name",
                &[&name],
            )?;
        }
        TemplateCmd::CaseSave { name, case, assertions, vars, description } => {
            let assertions: Value =
                serde_json::from_str(&assertions).map_err(|e| Error::local(format!("--assertions is not JSON: {e}")))?;
            let vars = super::json_object("--vars", &vars)?;
            c.execute(
                "SELECT pgprompt.prompt_test_case_save($1, $2, $3::text::jsonb, $4::text::jsonb, $5)",
                &[&name, &case, &assertions.to_string(), &vars.to_string(), &description],
            )?;
            println!("saved test case {case} of {name}");
        }
        TemplateCmd::CaseDelete { name, case } => {
            let deleted: bool = c.query_one("SELECT pgprompt.prompt_test_case_delete($1, $2)", &[&name, &case])?.get(0);
            if !deleted {
                return Err(Error::local(format!("template \"{name}\" has no test case \"{case}\"")));
            }
            println!("deleted test case {case} of {name}");
        }
        TemplateCmd::Test { name, version } => {
            let t = out.query(&mut c, "SELECT test, passed, detail FROM pgprompt.prompt_run_tests($1, $2)", &[&name, &version])?;
            if t.rows.iter().any(|r| r[1] == Value::Bool(false)) {
                return Ok(Done::Failed);
            }
        }
    }
    Ok(Done::Ok)
}

/// A unified diff of two texts, coloured on a terminal as git colours it.
fn diff_text(a: &str, b: &str, from: &str, to: &str, style: &pgprompt_client::style::Style) -> String {
    let text = similar::TextDiff::from_lines(a, b).unified_diff().context_radius(3).header(from, to).to_string();
    if !style.is_on() {
        return text;
    }
    text.lines()
        .map(|l| {
            let painted = if l.starts_with("+++") || l.starts_with("---") {
                style.bold(l)
            } else if l.starts_with('+') {
                style.green(l)
            } else if l.starts_with('-') {
                style.red(l)
            } else if l.starts_with("@@") {
                style.cyan(l)
            } else {
                l.to_string()
            };
            painted + "\n"
        })
        .collect()
}

/// A version as `template diff` compares it: each part as text, one JSON
/// key per line, so a diff shows which setting changed.
pub(crate) struct Compared {
    pub version: i32,
    pub header: String,
    pub body: String,
    pub kind: String,
    pub config: String,
    pub options: String,
    pub input_schema: String,
}

impl Compared {
    /// A part as JSON (`--json`): config, options and schema as objects.
    fn value(&self, part: &str) -> Value {
        let text = match part {
            "kind" => return Value::String(self.kind.trim_end().to_string()),
            "config" => &self.config,
            "options" => &self.options,
            _ => &self.input_schema,
        };
        serde_json::from_str(text).unwrap_or(Value::Null)
    }
}

/// The version `selector` names: a version number, or a label.
pub(crate) fn version_for_diff(c: &mut postgres::Client, name: &str, selector: &str) -> Result<Compared> {
    let (version, label) = match selector.parse::<i32>() {
        Ok(v) => (Some(v), None),
        Err(_) => (None, Some(selector)),
    };
    let r = c.query_one(
        "SELECT version, body, kind, config::text, options::text, input_schema::text FROM pgprompt.prompt_get($1, $2, $3)",
        &[&name, &version, &label],
    )?;
    let number: i32 = r.get(0);
    // JSON one key per line, so a diff shows which setting changed.
    let pretty = |text: Option<String>| -> String {
        let value: Value = text.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or(Value::Null);
        serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
    };
    Ok(Compared {
        version: number,
        header: match label {
            Some(l) => format!("{name} {l} (v{number})"),
            None => format!("{name} v{number}"),
        },
        body: r.get(1),
        kind: format!("{}\n", r.get::<_, String>(2)),
        config: pretty(r.get(3)),
        options: pretty(r.get(4)),
        input_schema: pretty(r.get(5)),
    })
}
