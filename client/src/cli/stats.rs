//! `pgprompt stats ...`: the analytics views.

use clap::Subcommand;
use pgprompt_client::Result;

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
    }
    Ok(Done::Ok)
}
