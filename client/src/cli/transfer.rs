//! `pgprompt import` and `pgprompt export`: templates as a directory of
//! files (see `pgprompt_client::files`), so prompts can be reviewed in git.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use pgprompt_client::files::{self, TemplateFile};
use pgprompt_client::{Error, Result};
use serde_json::Value;

use super::{connect, Done};

#[derive(Args)]
pub struct ImportArgs {
    /// Directory of *.prompt files.
    dir: PathBuf,
}

#[derive(Args)]
pub struct ExportArgs {
    /// Directory to write *.prompt files to (created if missing).
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

fn files_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::local(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("prompt"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads every file first, so a malformed one stops the import before anything is written.
pub fn import(url: Option<&str>, args: ImportArgs) -> Result<Done> {
    let mut parsed = Vec::new();
    for path in files_in(&args.dir)? {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::local(format!("{}: {e}", path.display())))?;
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().replace("__", "/");
        parsed.push(files::parse(&stem, &text).map_err(|e| Error::local(format!("{}: {e}", path.display())))?);
    }
    let mut c = connect(url)?;
    let mut tx = c.transaction()?;
    let progress = Progress::new(parsed.len());
    let (mut saved, mut unchanged) = (0, 0);
    for (i, t) in parsed.iter().enumerate() {
        progress.step(i, &t.name);
        if import_one(&mut tx, t).map_err(|e| Error { message: format!("{}: {}", t.name, e.message), ..e })? {
            saved += 1;
        } else {
            unchanged += 1;
        }
    }
    progress.step(parsed.len(), "");
    progress.finish();
    tx.commit()?;
    println!("{} templates: {saved} new versions, {unchanged} unchanged", parsed.len());
    Ok(Done::Ok)
}

/// Makes the file's body the active version (a new version only when body,
/// kind, config or render options differ) and applies description, category and labels.
/// True when a version was saved.
fn import_one(tx: &mut postgres::Transaction, t: &TemplateFile) -> Result<bool> {
    let config = Value::Object(t.config.clone()).to_string();
    let options = Value::Object(t.options.clone()).to_string();
    let schema = t.input_schema.as_ref().map(Value::to_string);
    let current = tx.query_opt(
        "SELECT g.version, g.body = $2 AND g.kind = $3 AND g.config = pgprompt._model_config($4::text::jsonb)
                AND g.options = pgprompt._render_options($5::text::jsonb)
                AND g.input_schema IS NOT DISTINCT FROM pgprompt._input_schema($6::text::jsonb)
           FROM pgprompt.prompt_templates p, pgprompt.prompt_get(p.name) g WHERE p.name = $1",
        &[&t.name, &t.body, &t.kind, &config, &options, &schema],
    )?;
    let saved = match current {
        Some(row) if row.get::<_, bool>(1) => false,
        _ => {
            let v: i32 = tx
                .query_one(
                    "SELECT pgprompt.prompt_save($1, $2, $3::text::jsonb, 'imported', $4, $5, $6, options => $7::text::jsonb,
                                                 input_schema => coalesce($8::text::jsonb, '{}'))",
                    &[&t.name, &t.body, &config, &t.kind, &t.description, &t.category, &options, &schema],
                )?
                .get(0);
            let active: i32 = tx.query_one("SELECT active_version FROM pgprompt.prompt_templates WHERE name = $1", &[&t.name])?.get(0);
            if active != v {
                tx.execute("SELECT pgprompt.prompt_activate($1, $2)", &[&t.name, &v])?;
            }
            true
        }
    };
    tx.execute(
        "UPDATE pgprompt.prompt_templates SET description = $2, category = $3
          WHERE name = $1 AND (description, category) IS DISTINCT FROM ($2, $3)",
        &[&t.name, &t.description, &t.category],
    )?;
    for label in &t.labels {
        tx.execute(
            "SELECT pgprompt.prompt_label(t.name, t.active_version, $2) FROM pgprompt.prompt_templates t
              WHERE t.name = $1 AND NOT EXISTS (SELECT 1 FROM pgprompt.v_labels l
                                                 WHERE l.template_id = t.id AND l.label = $2 AND l.version = t.active_version)",
            &[&t.name, label],
        )?;
    }
    Ok(saved)
}

pub fn export(url: Option<&str>, args: ExportArgs) -> Result<Done> {
    let mut c = connect(url)?;
    let rows = c.query(
        "SELECT t.name, t.description, t.category, g.kind, g.config::text, g.labels, g.body,
                -- render options only when they are not the defaults
                nullif(g.options, pgprompt._render_options('{}'))::text, g.input_schema::text
           FROM pgprompt.prompt_templates t, pgprompt.prompt_get(t.name) g ORDER BY t.name",
        &[],
    )?;
    std::fs::create_dir_all(&args.dir).map_err(|e| Error::local(format!("{}: {e}", args.dir.display())))?;
    let progress = Progress::new(rows.len());
    for (i, r) in rows.iter().enumerate() {
        let config: Value = serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default();
        let t = TemplateFile {
            name: r.get(0),
            description: r.get(1),
            category: r.get(2),
            kind: r.get(3),
            config: config.as_object().cloned().unwrap_or_default(),
            labels: r.get(5),
            body: r.get(6),
            options: r
                .get::<_, Option<&str>>(7)
                .and_then(|o| serde_json::from_str::<Value>(o).ok())
                .and_then(|o| o.as_object().cloned())
                .unwrap_or_default(),
            input_schema: r.get::<_, Option<&str>>(8).and_then(|s| serde_json::from_str(s).ok()),
        };
        progress.step(i, &t.name);
        let path = args.dir.join(files::file_name(&t.name));
        std::fs::write(&path, files::write(&t)).map_err(|e| Error::local(format!("{}: {e}", path.display())))?;
    }
    progress.step(rows.len(), "");
    progress.finish();
    println!("{} templates written to {}", rows.len(), args.dir.display());
    Ok(Done::Ok)
}
