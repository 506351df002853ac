//! `pgprompt experiment ...`

use clap::Subcommand;
use pgprompt_client::Result;
use serde_json::{json, Value};

use super::{connect, Done, Out};

#[derive(Subcommand)]
pub enum ExperimentCmd {
    /// Every experiment with its status.
    List,
    /// Create a draft experiment.
    Create {
        name: String,
        /// The template under test.
        #[arg(long)]
        template: String,
        /// A variant: name=version:weight (weights are percent of users and sum to 100). Repeat per variant.
        #[arg(long = "variant", value_parser = parse_variant, required = true)]
        variants: Vec<Value>,
        /// The control variant (default: the first).
        #[arg(long)]
        control: Option<String>,
        /// Calls every variant needs before significance is called.
        #[arg(long, default_value_t = 1000)]
        min_sample_size: i32,
        /// Significance level of the tests.
        #[arg(long, default_value = "0.05")]
        alpha: String,
        #[arg(long)]
        description: Option<String>,
    },
    /// Start (or resume) an experiment.
    Start {
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Stop a running experiment.
    Stop { name: String },
    /// Per variant: calls, success rate with its interval, lift, p-value, significance.
    Results { name: String },
    /// Activate the winner and conclude (default: the significant winner).
    Promote {
        name: String,
        #[arg(long)]
        variant: Option<String>,
        #[arg(long)]
        version: Option<i32>,
        #[arg(long)]
        force: bool,
    },
}

/// `name=version:weight` as the variants JSON wants it.
fn parse_variant(s: &str) -> std::result::Result<Value, String> {
    let bad = || format!("expected name=version:weight, e.g. control=1:50, got {s:?}");
    let (name, rest) = s.split_once('=').ok_or_else(bad)?;
    let (version, weight) = rest.split_once(':').ok_or_else(bad)?;
    let version: i64 = version.parse().map_err(|_| bad())?;
    let weight: i64 = weight.parse().map_err(|_| bad())?;
    Ok(json!({"name": name, "version": version, "weight": weight}))
}

pub fn run(url: Option<&str>, out: &Out, cmd: ExperimentCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        ExperimentCmd::List => {
            out.query(
                &mut c,
                "SELECT e.name, t.name AS template, e.status, e.variants::text AS variants, e.control_variant AS control,
                        e.started_at, e.stopped_at, e.winner
                   FROM pgprompt.ab_test_experiments e JOIN pgprompt.prompt_templates t ON t.id = e.template_id
                  ORDER BY e.id",
                &[],
            )?;
        }
        ExperimentCmd::Create { name, template, variants, control, min_sample_size, alpha, description } => {
            let variants = Value::Array(variants).to_string();
            let id: i64 = c
                .query_one(
                    "SELECT pgprompt.prompt_experiment_create($1, $2, $3::text::jsonb, $4, NULL, $5, $6::text::numeric, $7)",
                    &[&name, &template, &variants, &control, &min_sample_size, &alpha, &description],
                )?
                .get(0);
            println!("created experiment {name} (id {id}, draft)");
        }
        ExperimentCmd::Start { name, force } => {
            c.execute("SELECT pgprompt.prompt_experiment_start($1, $2)", &[&name, &force])?;
            println!("experiment {name} is running");
        }
        ExperimentCmd::Stop { name } => {
            c.execute("SELECT pgprompt.prompt_experiment_stop($1)", &[&name])?;
            println!("experiment {name} is stopped");
        }
        ExperimentCmd::Results { name } => {
            let exists: bool = c.query_one("SELECT EXISTS (SELECT 1 FROM pgprompt.ab_test_experiments WHERE name = $1)", &[&name])?.get(0);
            if !exists {
                return Err(pgprompt_client::Error::local(format!("experiment \"{name}\" does not exist")));
            }
            out.query(
                &mut c,
                "SELECT variant, version, is_control AS control, executions AS n, successes,
                        round(success_rate::numeric, 4) AS success_rate,
                        format('[%s, %s]', round(success_rate_ci_low::numeric, 4), round(success_rate_ci_high::numeric, 4)) AS ci_95,
                        round(lift_abs::numeric, 4) AS lift, round(lift_rel::numeric, 4) AS lift_rel,
                        round(p_value::numeric, 6) AS p_value, significant,
                        round(mean_latency_ms::numeric, 1) AS mean_latency_ms, mean_cost_usd,
                        round(srm_p_value::numeric, 6) AS srm_p_value, sample_ratio_mismatch
                   FROM pgprompt.v_ab_test_results WHERE experiment = $1 ORDER BY version, variant",
                &[&name],
            )?;
        }
        ExperimentCmd::Promote { name, variant, version, force } => {
            let v: i32 =
                c.query_one("SELECT pgprompt.prompt_experiment_promote($1, $2, $3, $4)", &[&name, &variant, &version, &force])?.get(0);
            println!("experiment {name} concluded: version {v} is active");
        }
    }
    Ok(Done::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_parse() {
        assert_eq!(parse_variant("control=1:50").unwrap(), json!({"name": "control", "version": 1, "weight": 50}));
        assert!(parse_variant("control=1").is_err());
        assert!(parse_variant("control:1=50").is_err());
        assert!(parse_variant("c=x:50").is_err());
    }
}
