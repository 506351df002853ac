//! `pgprompt guardrail ...`

use clap::Subcommand;
use clap_complete::ArgValueCandidates;
use pgprompt_client::{Error, Result};

use super::{connect, json_object, read_input, Done, Out};

#[derive(Subcommand)]
pub enum GuardrailCmd {
    /// Every guardrail.
    List,
    /// One guardrail with its configuration.
    Show { #[arg(add = ArgValueCandidates::new(super::complete::guardrails))] name: String },
    /// Add a guardrail.
    Add {
        name: String,
        /// pii, injection, toxicity, regex or keywords.
        #[arg(long)]
        kind: String,
        /// log, warn, block or redact.
        #[arg(long, default_value = "log")]
        action: String,
        /// low, medium, high or critical.
        #[arg(long, default_value = "medium")]
        severity: String,
        /// input, output or both.
        #[arg(long, default_value = "both")]
        direction: String,
        /// Configuration, a JSON object, e.g. '{"patterns": ["ORD-[0-9]{6}"]}'.
        #[arg(long, default_value = "{}")]
        config: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Change a guardrail (only what is given).
    Update {
        #[arg(add = ArgValueCandidates::new(super::complete::guardrails))]
        name: String,
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        direction: Option<String>,
        #[arg(long)]
        config: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Turn a guardrail on.
    Enable { #[arg(add = ArgValueCandidates::new(super::complete::guardrails))] name: String },
    /// Turn a guardrail off.
    Disable { #[arg(add = ArgValueCandidates::new(super::complete::guardrails))] name: String },
    /// Scan text (an argument, or stdin) and show the findings; exit 1 when
    /// a block guardrail fires (as prompt_guard_enforce would refuse it).
    Check {
        text: Option<String>,
        /// input, output, or context (a document or tool result going into a prompt).
        #[arg(long, default_value = "input")]
        direction: String,
    },
}

const COLUMNS: &str = "name, kind, severity, action, direction, enabled, config, builtin, description, updated_at";

pub fn run(url: Option<&str>, out: &Out, cmd: GuardrailCmd) -> Result<Done> {
    let mut c = connect(url)?;
    let missing = |name: &str| Error::local(format!("guardrail \"{name}\" does not exist"));
    match cmd {
        GuardrailCmd::List => {
            out.query(&mut c, &format!("SELECT {COLUMNS} FROM pgprompt.prompt_guardrails ORDER BY name"), &[])?;
        }
        GuardrailCmd::Show { name } => {
            let t = out.query(&mut c, &format!("SELECT {COLUMNS} FROM pgprompt.prompt_guardrails WHERE name = $1"), &[&name])?;
            if t.rows.is_empty() {
                return Err(missing(&name));
            }
        }
        GuardrailCmd::Add { name, kind, action, severity, direction, config, description } => {
            let config = json_object("--config", &config)?.to_string();
            c.execute(
                "INSERT INTO pgprompt.prompt_guardrails (name, kind, action, severity, direction, config, description)
                 VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7)",
                &[&name, &kind, &action, &severity, &direction, &config, &description],
            )?;
            println!("added guardrail {name}");
        }
        GuardrailCmd::Update { name, action, severity, direction, config, description } => {
            let config = config.map(|c| json_object("--config", &c).map(|v| v.to_string())).transpose()?;
            let n = c.execute(
                "UPDATE pgprompt.prompt_guardrails
                    SET action = coalesce($2, action), severity = coalesce($3, severity), direction = coalesce($4, direction),
                        config = coalesce($5::text::jsonb, config), description = coalesce($6, description)
                  WHERE name = $1",
                &[&name, &action, &severity, &direction, &config, &description],
            )?;
            if n == 0 {
                return Err(missing(&name));
            }
            println!("updated guardrail {name}");
        }
        GuardrailCmd::Enable { name } => set_enabled(&mut c, &name, true)?,
        GuardrailCmd::Disable { name } => set_enabled(&mut c, &name, false)?,
        GuardrailCmd::Check { text, direction } => {
            let text = match text {
                Some(t) => t,
                None => read_input(None)?,
            };
            out.query(
                &mut c,
                "SELECT guardrail, kind, entity, start_pos, end_pos, severity, action, score,
                        substr($1, start_pos + 1, end_pos - start_pos) AS found
                   FROM pgprompt.prompt_guard_scan($1, $2)",
                &[&text, &direction],
            )?;
            // As prompt_guard_enforce would refuse it: exit 1, for scripts.
            let blocked: bool = c
                .query_one("SELECT EXISTS (SELECT 1 FROM pgprompt.prompt_guard_scan($1, $2) WHERE action = 'block')", &[&text, &direction])?
                .get(0);
            if blocked {
                return Ok(Done::Failed);
            }
        }
    }
    Ok(Done::Ok)
}

fn set_enabled(c: &mut postgres::Client, name: &str, on: bool) -> Result<()> {
    let n = c.execute("UPDATE pgprompt.prompt_guardrails SET enabled = $2 WHERE name = $1", &[&name, &on])?;
    if n == 0 {
        return Err(Error::local(format!("guardrail \"{name}\" does not exist")));
    }
    println!("{} guardrail {name}", if on { "enabled" } else { "disabled" });
    Ok(())
}
