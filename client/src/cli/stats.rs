//! `pgprompt stats ...`: the analytics views.

use clap::Subcommand;
use pgprompt_client::{Error, Result};

use super::{connect, Done, Out};

#[derive(Subcommand)]
pub enum StatsCmd {
    /// Per template version over the last 30 days: calls, success rate, latency, tokens, cost.
    Performance {
        #[arg(long)]
        template: Option<String>,
    },
    /// Cost per day and template.
    Costs {
        /// How many days back.
        #[arg(long, default_value_t = 30)]
        days: i32,
    },
    /// The last 100 failed calls of 24 hours.
    Errors,
    /// Check the alert rules now (firing ones also NOTIFY pgprompt_alerts).
    Alerts,
    /// The alert rules.
    Rules,
    /// Create or change an alert rule.
    RuleSet {
        name: String,
        /// daily_cost_usd, p95_latency_ms, error_rate or success_rate.
        #[arg(long)]
        metric: String,
        #[arg(long)]
        threshold: f64,
        /// An interval, e.g. "15 minutes".
        #[arg(long = "window")]
        time_window: String,
        /// Only this template's calls.
        #[arg(long)]
        template: Option<String>,
        #[arg(long, default_value_t = 1)]
        min_executions: i32,
        #[arg(long)]
        description: Option<String>,
    },
    /// Enable or disable an alert rule.
    RuleEnable {
        name: String,
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        enabled: bool,
    },
    /// Delete an alert rule (built-in ones are disabled instead).
    RuleDelete { name: String },
}

pub fn run(url: Option<&str>, out: &Out, cmd: StatsCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        StatsCmd::Performance { template } => {
            out.query(
                &mut c,
                "SELECT template, version, executions, round(success_rate::numeric, 4) AS success_rate,
                        round(avg_latency_ms::numeric, 1) AS avg_ms, round(p50_latency_ms::numeric) AS p50_ms,
                        round(p95_latency_ms::numeric) AS p95_ms, input_tokens, output_tokens, total_cost_usd, last_executed_at
                   FROM pgprompt.v_template_performance WHERE $1::text IS NULL OR template = $1
                  ORDER BY template, version",
                &[&template],
            )?;
        }
        StatsCmd::Costs { days } => {
            out.query(
                &mut c,
                "SELECT day::date AS day, template, executions, input_tokens, output_tokens, cost_usd, unpriced_executions
                   FROM pgprompt.v_daily_costs WHERE day >= now() - make_interval(days => $1)
                  ORDER BY day DESC, template",
                &[&days],
            )?;
        }
        StatsCmd::Errors => {
            out.query(
                &mut c,
                "SELECT executed_at, template, version, model, user_id, error_message, latency_ms FROM pgprompt.v_recent_execution_errors",
                &[],
            )?;
        }
        StatsCmd::Alerts => {
            let t = out.query(&mut c, "SELECT rule, template, value, threshold, \"window\"::text AS window, firing FROM pgprompt.prompt_check_alerts()", &[])?;
            if t.rows.iter().any(|r| r[5] == serde_json::Value::Bool(true)) {
                return Ok(Done::Failed);
            }
        }
        StatsCmd::Rules => {
            out.query(
                &mut c,
                "SELECT r.name, r.metric, r.threshold, r.time_window::text AS time_window, t.name AS template, r.min_executions,
                        r.enabled, r.builtin, r.description
                   FROM pgprompt.prompt_alert_rules r LEFT JOIN pgprompt.prompt_templates t ON t.id = r.template_id
                  ORDER BY r.name",
                &[],
            )?;
        }
        StatsCmd::RuleSet { name, metric, threshold, time_window, template, min_executions, description } => {
            let template_id: Option<i64> = match &template {
                Some(t) => Some(
                    c.query_opt("SELECT id FROM pgprompt.prompt_templates WHERE name = $1", &[t])?
                        .ok_or_else(|| Error::local(format!("template \"{t}\" does not exist")))?
                        .get(0),
                ),
                None => None,
            };
            let threshold = threshold.to_string();
            c.execute(
                "INSERT INTO pgprompt.prompt_alert_rules AS r (name, metric, threshold, time_window, template_id, min_executions, description)
                 VALUES ($1, $2, $3::text::numeric, $4::text::interval, $5, $6, $7)
                 ON CONFLICT (name) DO UPDATE SET metric = excluded.metric, threshold = excluded.threshold,
                        time_window = excluded.time_window, template_id = excluded.template_id,
                        min_executions = excluded.min_executions, description = coalesce(excluded.description, r.description)",
                &[&name, &metric, &threshold, &time_window, &template_id, &min_executions, &description],
            )?;
            println!("saved alert rule {name}");
        }
        StatsCmd::RuleEnable { name, enabled } => {
            let n = c.execute("UPDATE pgprompt.prompt_alert_rules SET enabled = $2 WHERE name = $1", &[&name, &enabled])?;
            if n == 0 {
                return Err(Error::local(format!("alert rule \"{name}\" does not exist")));
            }
            println!("{} alert rule {name}", if enabled { "enabled" } else { "disabled" });
        }
        StatsCmd::RuleDelete { name } => {
            let n = c.execute("DELETE FROM pgprompt.prompt_alert_rules WHERE name = $1", &[&name])?;
            if n == 0 {
                return Err(Error::local(format!("alert rule \"{name}\" does not exist")));
            }
            println!("deleted alert rule {name}");
        }
    }
    Ok(Done::Ok)
}
