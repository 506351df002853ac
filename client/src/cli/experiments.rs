//! `pgprompt experiment ...`

use clap::Subcommand;
use clap_complete::ArgValueCandidates;
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
        /// What decides it: success_rate, latency_ms, cost_usd or a declared score.
        #[arg(long, default_value = "success_rate")]
        metric: String,
        /// A metric that must not get significantly worse (repeat per metric).
        #[arg(long = "guardrail")]
        guardrails: Vec<String>,
    },
    /// Start (or resume) an experiment.
    Start {
        #[arg(add = ArgValueCandidates::new(super::complete::experiments))]
        name: String,
        #[arg(long)]
        force: bool,
    },
    /// Stop a running experiment.
    Stop { #[arg(add = ArgValueCandidates::new(super::complete::experiments))] name: String },
    /// Every metric per variant with intervals, fixed-horizon and sequential tests, and the decision.
    Results { #[arg(add = ArgValueCandidates::new(super::complete::experiments))] name: String },
    /// Activate the winner and conclude (default: the variant the sequential test calls better on the primary metric).
    Promote {
        #[arg(add = ArgValueCandidates::new(super::complete::experiments))]
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
                "SELECT e.name, t.name AS template, e.status, e.variants, e.control_variant AS control,
                        e.started_at, e.stopped_at, e.winner
                   FROM pgprompt.ab_test_experiments e JOIN pgprompt.prompt_templates t ON t.id = e.template_id
                  ORDER BY e.id",
                &[],
            )?;
        }
        ExperimentCmd::Create { name, template, variants, control, min_sample_size, alpha, description, metric, guardrails } => {
            let variants = Value::Array(variants).to_string();
            let id: i64 = c
                .query_one(
                    "SELECT pgprompt.prompt_experiment_create($1, $2, $3::text::jsonb, $4, NULL, $5, $6::text::numeric, $7, $8, $9)",
                    &[&name, &template, &variants, &control, &min_sample_size, &alpha, &description, &metric, &guardrails],
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
            // Every metric per variant, then the decision. With --json one
            // array of the metric rows, numbers in full and intervals as
            // [low, high] arrays.
            if out.json {
                out.query(
                    &mut c,
                    "SELECT m.metric, m.role, m.variant, m.version, m.n, m.value, ARRAY[m.ci_low, m.ci_high] AS ci,
                            m.diff, CASE WHEN m.diff IS NOT NULL THEN ARRAY[m.diff_ci_low, m.diff_ci_high] END AS diff_ci,
                            m.p_value, m.seq_p_value,
                            CASE WHEN m.seq_ci_low IS NOT NULL THEN ARRAY[m.seq_ci_low, m.seq_ci_high] END AS seq_ci,
                            m.verdict, m.p95
                       FROM pgprompt.v_ab_test_metrics m
                      WHERE m.experiment = $1
                      ORDER BY CASE m.role WHEN 'primary' THEN 0 WHEN 'guardrail' THEN 1 ELSE 2 END, m.metric, m.version, m.variant",
                    &[&name],
                )?;
                return Ok(Done::Ok);
            }
            let g = |x: &str| format!("CASE WHEN abs({x}) >= 0.01 OR {x} = 0 THEN round({x}::numeric, 4)::text ELSE btrim(to_char({x}, '9.999EEEE')) END");
            let t = out.query(
                &mut c,
                &format!(
                    "SELECT m.metric, m.role, m.variant, m.n, {value} AS value, format('[%s, %s]', {lo}, {hi}) AS ci,
                            {diff} AS diff, CASE WHEN m.diff IS NOT NULL THEN format('[%s, %s]', {dlo}, {dhi}) END AS diff_ci,
                            {p} AS p_value, {sp} AS seq_p_value,
                            CASE WHEN m.seq_ci_low IS NOT NULL THEN format('[%s, %s]', {slo}, {shi}) END AS seq_ci,
                            m.verdict, round(m.p95::numeric) AS p95
                       FROM pgprompt.v_ab_test_metrics m
                      WHERE m.experiment = $1
                      ORDER BY CASE m.role WHEN 'primary' THEN 0 WHEN 'guardrail' THEN 1 ELSE 2 END, m.metric, m.version, m.variant",
                    value = g("m.value"), lo = g("m.ci_low"), hi = g("m.ci_high"), diff = g("m.diff"),
                    dlo = g("m.diff_ci_low"), dhi = g("m.diff_ci_high"), p = g("m.p_value"), sp = g("m.seq_p_value"),
                    slo = g("m.seq_ci_low"), shi = g("m.seq_ci_high"),
                ),
                &[&name],
            )?;
            if !t.rows.is_empty() {
                let decision = c.query_one(
                    "SELECT e.primary_metric, e.status,
                            string_agg(r.variant, ', ') FILTER (WHERE r.primary_verdict = 'better'),
                            string_agg(r.variant || ': ' || array_to_string(r.degraded_guardrails, ', '), '; ')
                                FILTER (WHERE cardinality(r.degraded_guardrails) > 0),
                            bool_or(r.sample_ratio_mismatch), bool_and(r.min_sample_reached)
                       FROM pgprompt.ab_test_experiments e JOIN pgprompt.v_ab_test_results r ON r.experiment = e.name
                      WHERE e.name = $1 GROUP BY e.primary_metric, e.status",
                    &[&name],
                )?;
                let better: Option<String> = decision.get(2);
                let degraded: Option<String> = decision.get(3);
                println!(
                    "decision ({} on {}, sequential test, safe to check at any time): {}",
                    decision.get::<_, String>(1),
                    decision.get::<_, String>(0),
                    match &better {
                        Some(v) => format!("{v} better than the control"),
                        None => "no variant better than the control yet".into(),
                    }
                );
                if let Some(d) = degraded {
                    println!("degraded guardrail metrics (promotion refused unless forced): {d}");
                }
                if decision.get::<_, Option<bool>>(4) == Some(true) {
                    println!("sample ratio mismatch: the split is not what was configured; do not trust these results");
                }
                if decision.get::<_, Option<bool>>(5) == Some(false) {
                    println!("minimum sample not reached by every variant");
                }
            }
        }
        ExperimentCmd::Promote { name, variant, version, force } => {
            let v: i32 =
                c.query_one("SELECT pgprompt.prompt_experiment_promote($1, $2, $3, $4)", &[&name, &variant, &version, &force])?.get(0);
            println!("experiment {name} concluded: version {v} is the release (production)");
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
