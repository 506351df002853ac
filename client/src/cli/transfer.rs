//! `pgprompt import` and `pgprompt export`: every template with its whole
//! history as a directory of files (see `pgprompt_client::files`), so
//! prompts can be reviewed in git and moved between databases losslessly.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use pgprompt_client::files::{self, TemplateMeta, VersionFile};
use pgprompt_client::{Error, Result};
use serde_json::Value;

use super::{connect, Done};

#[derive(Args)]
pub struct ImportArgs {
    /// Directory `pgprompt export` wrote (one directory per template).
    dir: PathBuf,
    /// Show what would change, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import versions, labels and test cases, but leave each template's
    /// release as it is in the database (a new template's first version is
    /// its release).
    #[arg(long)]
    no_activate: bool,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Directory to write to (created if missing).
    dir: PathBuf,
}

/// A progress line on stderr when it is a terminal.
struct Progress {
    total: usize,
    shown: bool,
}

impl Progress {
    fn new(total: usize) -> Progress {
        Progress { total, shown: std::io::stderr().is_terminal() && total > 1 }
    }

    fn step(&self, done: usize, name: &str) {
        if self.shown {
            let width = 30;
            let filled = done * width / self.total.max(1);
            eprint!("\r[{}{}] {done}/{} {name:<40.40}", "#".repeat(filled), " ".repeat(width - filled), self.total);
            std::io::stderr().flush().ok();
        }
    }

    fn finish(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

/// A template as exported: its metadata and versions.
struct Exported {
    meta: TemplateMeta,
    versions: Vec<VersionFile>,
}

/// Reads every template directory under `dir`, so a malformed file stops
/// the import before anything is written.
fn read_export(dir: &Path) -> Result<Vec<Exported>> {
    let local = |path: &Path, e: &dyn std::fmt::Display| Error::local(format!("{}: {e}", path.display()));
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| local(dir, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("template.json").is_file())
        .collect();
    dirs.sort();
    // Every template.json first: two directories holding one template is
    // an error naming both, whatever else is wrong.
    let mut metas: Vec<(PathBuf, TemplateMeta)> = Vec::new();
    for d in dirs {
        let meta_path = d.join("template.json");
        let meta = files::parse_meta(&std::fs::read_to_string(&meta_path).map_err(|e| local(&meta_path, &e))?).map_err(|e| local(&meta_path, &e))?;
        if let Some((other, _)) = metas.iter().find(|(_, m)| m.name == meta.name) {
            return Err(Error::local(format!("{} and {} both hold template \"{}\"", other.display(), d.display(), meta.name)));
        }
        metas.push((d, meta));
    }
    let mut out: Vec<Exported> = Vec::new();
    for (d, meta) in metas {
        let meta_path = d.join("template.json");
        let mut versions = Vec::new();
        for n in 1.. {
            let path = d.join(files::version_file_name(n));
            if !path.exists() {
                break;
            }
            let v = files::parse_version(&std::fs::read_to_string(&path).map_err(|e| local(&path, &e))?).map_err(|e| local(&path, &e))?;
            if v.version != n {
                return Err(local(&path, &format!("the file says version {}", v.version)));
            }
            versions.push(v);
        }
        if versions.is_empty() {
            return Err(local(&d, &"no version files (v1.prompt, ...)"));
        }
        if !versions.iter().any(|v| v.version == meta.release) {
            return Err(local(&meta_path, &format!("release {} is not one of the versions", meta.release)));
        }
        out.push(Exported { meta, versions });
    }
    Ok(out)
}

/// Every template, version, label, release, approval and test case as the
/// files have them. In one transaction; with --dry-run, what would change
/// is printed and nothing is kept.
pub fn import(url: Option<&str>, args: ImportArgs) -> Result<Done> {
    let exported = read_export(&args.dir)?;
    let mut c = connect(url)?;
    let mut tx = c.transaction()?;
    let progress = Progress::new(exported.len());
    let mut changes: Vec<String> = Vec::new();
    for (i, t) in exported.iter().enumerate() {
        progress.step(i, &t.meta.name);
        import_one(&mut tx, t, args.no_activate, &mut changes).map_err(|e| Error { message: format!("{}: {}", t.meta.name, e.message), ..e })?;
    }
    progress.step(exported.len(), "");
    progress.finish();
    for line in &changes {
        println!("{line}");
    }
    if args.dry_run {
        tx.rollback()?;
        println!("dry run: {} templates, {} changes, nothing written", exported.len(), changes.len());
    } else {
        tx.commit()?;
        println!("{} templates: {} changes", exported.len(), changes.len());
    }
    Ok(Done::Ok)
}

/// Imports one template; each change made is added to `changes`.
fn import_one(tx: &mut postgres::Transaction, t: &Exported, no_activate: bool, changes: &mut Vec<String>) -> Result<()> {
    let name = &t.meta.name;
    let json = |v: &Value| v.to_string();
    for v in &t.versions {
        let created: bool = tx
            .query_one(
                "SELECT pgprompt.prompt_import_version($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7::text::jsonb, $8, $9, $10, $11::text::timestamptz)",
                &[
                    name,
                    &v.version,
                    &v.body,
                    &v.kind,
                    &json(&v.config),
                    &json(&v.options),
                    &v.input_schema.as_ref().map(json),
                    &v.message,
                    &v.parent,
                    &v.author,
                    &v.created_at,
                ],
            )?
            .get(0);
        if created {
            changes.push(format!("{name}: new version {}", v.version));
        }
        for a in &v.approvals {
            let added: bool = tx
                .query_one(
                    "SELECT pgprompt.prompt_import_approval($1, $2, $3, $4::text::timestamptz, $5)",
                    &[name, &v.version, &a.by, &a.at, &a.comment],
                )?
                .get(0);
            if added {
                changes.push(format!("{name}: approval of version {} by {}", v.version, a.by));
            }
        }
    }
    let described = tx.execute(
        "UPDATE pgprompt.prompt_templates SET description = $2, category = $3
          WHERE name = $1 AND (description, category) IS DISTINCT FROM ($2, $3)",
        &[name, &t.meta.description, &t.meta.category],
    )?;
    if described > 0 {
        changes.push(format!("{name}: description and category"));
    }
    for case in &t.meta.test_cases {
        let same: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pgprompt.prompt_test_cases c JOIN pgprompt.prompt_templates t ON t.id = c.template_id
                                 WHERE t.name = $1 AND c.name = $2 AND c.vars = $3::text::jsonb AND c.assertions = $4::text::jsonb
                                   AND c.description IS NOT DISTINCT FROM $5)",
                &[name, &case.name, &json(&case.vars), &json(&case.assertions), &case.description],
            )?
            .get(0);
        if !same {
            tx.execute(
                "SELECT pgprompt.prompt_test_case_save($1, $2, $3::text::jsonb, $4::text::jsonb, $5)",
                &[name, &case.name, &json(&case.assertions), &json(&case.vars), &case.description],
            )?;
            changes.push(format!("{name}: test case {}", case.name));
        }
    }
    for (label, version) in &t.meta.labels {
        let moved = tx.query_one(
            "SELECT NOT EXISTS (SELECT 1 FROM pgprompt.v_labels WHERE template = $1 AND label = $2 AND version = $3)",
            &[name, label, version],
        )?;
        if moved.get::<_, bool>(0) {
            tx.execute("SELECT pgprompt.prompt_label($1, $2, $3)", &[name, version, label])?;
            changes.push(format!("{name}: label {label} -> version {version}"));
        }
    }
    if !no_activate {
        let active: i32 = tx.query_one("SELECT active_version FROM pgprompt.prompt_templates WHERE name = $1", &[name])?.get(0);
        if active != t.meta.release {
            tx.execute("SELECT pgprompt.prompt_activate($1, $2)", &[name, &t.meta.release])?;
            changes.push(format!("{name}: release {active} -> {}", t.meta.release));
        }
    }
    let governed: bool = tx
        .query_one(
            "SELECT (requires_approval, protected_labels) IS DISTINCT FROM ($2, $3) FROM pgprompt.prompt_templates WHERE name = $1",
            &[name, &t.meta.requires_approval, &t.meta.protected_labels],
        )?
        .get(0);
    if governed {
        tx.execute(
            "SELECT pgprompt.prompt_protect($1, $2, $3)",
            &[name, &t.meta.requires_approval, &t.meta.protected_labels],
        )?;
        changes.push(format!("{name}: requires_approval {}, protected labels {:?}", t.meta.requires_approval, t.meta.protected_labels));
    }
    Ok(())
}

/// Timestamps as export writes them: UTC, microseconds, `Z`.
const STAMP: &str = r#"'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"#;

pub fn export(url: Option<&str>, args: ExportArgs) -> Result<Done> {
    let mut c = connect(url)?;
    let templates = c.query(
        "SELECT t.id, t.name, t.description, t.category, t.active_version, t.requires_approval, t.protected_labels,
                coalesce((SELECT jsonb_object_agg(l.label, l.version) FROM pgprompt.prompt_labels l WHERE l.template_id = t.id), '{}')::text,
                coalesce((SELECT jsonb_agg(jsonb_build_object('name', c.name, 'description', c.description, 'vars', c.vars,
                                                              'assertions', c.assertions) ORDER BY c.name)
                            FROM pgprompt.prompt_test_cases c WHERE c.template_id = t.id), '[]')::text
           FROM pgprompt.prompt_templates t ORDER BY t.name",
        &[],
    )?;
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::local(format!("{}: {e}", args.dir.display())))?;
    let progress = Progress::new(templates.len());
    let write = |path: &Path, text: String| std::fs::write(path, text).map_err(|e| Error::local(format!("{}: {e}", path.display())));
    let parse = |text: &str| -> Value { serde_json::from_str(text).unwrap_or(Value::Null) };
    for (i, t) in templates.iter().enumerate() {
        let (id, name): (i64, String) = (t.get(0), t.get(1));
        progress.step(i, &name);
        let meta = TemplateMeta {
            name: name.clone(),
            description: t.get(2),
            category: t.get(3),
            release: t.get(4),
            requires_approval: t.get(5),
            protected_labels: t.get(6),
            labels: serde_json::from_str(t.get::<_, &str>(7)).unwrap_or_default(),
            test_cases: serde_json::from_str(t.get::<_, &str>(8)).unwrap_or_default(),
        };
        let dir = args.dir.join(files::dir_name(&name));
        std::fs::create_dir_all(&dir).map_err(|e| Error::local(format!("{}: {e}", dir.display())))?;
        write(&dir.join("template.json"), files::write_meta(&meta))?;
        let versions = c.query(
            &format!(
                "SELECT v.version, v.kind, coalesce(v.authored_by, v.created_by),
                        to_char(coalesce(v.authored_at, v.created_at) AT TIME ZONE 'UTC', {STAMP}),
                        v.parent_version, v.message, v.model_config::text, v.options::text, v.input_schema::text,
                        (SELECT coalesce(jsonb_agg(jsonb_build_object('by', a.by, 'at', to_char(a.at AT TIME ZONE 'UTC', {STAMP}),
                                                                      'comment', a.comment) ORDER BY a.at, a.by), '[]')
                           FROM (SELECT approved_by AS by, approved_at AS at, comment FROM pgprompt.prompt_approvals a
                                  WHERE a.template_id = v.template_id AND a.version = v.version
                                 UNION ALL
                                 SELECT approved_by, approved_at, comment FROM pgprompt.prompt_imported_approvals a
                                  WHERE a.template_id = v.template_id AND a.version = v.version) a)::text,
                        v.body
                   FROM pgprompt.prompt_versions v WHERE v.template_id = $1 ORDER BY v.version"
            ),
            &[&id],
        )?;
        for r in &versions {
            let v = VersionFile {
                version: r.get(0),
                kind: r.get(1),
                author: r.get(2),
                created_at: r.get(3),
                parent: r.get(4),
                message: r.get(5),
                config: parse(r.get(6)),
                options: parse(r.get(7)),
                input_schema: r.get::<_, Option<&str>>(8).map(parse),
                approvals: serde_json::from_str(r.get::<_, &str>(9)).unwrap_or_default(),
                body: r.get(10),
            };
            write(&dir.join(files::version_file_name(v.version)), files::write_version(&v))?;
        }
    }
    progress.step(templates.len(), "");
    progress.finish();
    println!("{} templates written to {}", templates.len(), args.dir.display());
    Ok(Done::Ok)
}
