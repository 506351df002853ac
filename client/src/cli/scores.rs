//! `pgprompt score ...` and `pgprompt trace ...`: feedback scores and traces.

use clap::Subcommand;
use pgprompt_client::Result;

use super::{connect, Done, Out};

#[derive(Subcommand)]
pub enum ScoreCmd {
    /// Declare a score name (or change its declaration).
    Define {
        name: String,
        /// numeric, boolean or categorical.
        #[arg(long)]
        kind: String,
        /// Numeric scores: the least value allowed.
        #[arg(long, allow_negative_numbers = true)]
        min: Option<String>,
        /// Numeric scores: the greatest value allowed.
        #[arg(long, allow_negative_numbers = true)]
        max: Option<String>,
        /// Categorical scores: an allowed value (repeat for each).
        #[arg(long = "category")]
        categories: Vec<String>,
        /// What the score means.
        #[arg(long)]
        description: Option<String>,
    },
    /// Declared scores, with how many scores of each are in force.
    List,
}

#[derive(Subcommand)]
pub enum TraceCmd {
    /// A trace's calls in order, as a tree of parents and children, with its totals.
    Show { trace_id: String },
}

pub fn run_score(url: Option<&str>, out: &Out, cmd: ScoreCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        ScoreCmd::Define { name, kind, min, max, categories, description } => {
            let categories = (!categories.is_empty()).then_some(categories);
            c.execute(
                "SELECT pgprompt.prompt_score_define($1, $2, $3::text::numeric, $4::text::numeric, $5, $6)",
                &[&name, &kind, &min, &max, &categories, &description],
            )?;
            println!("score \"{name}\" defined");
        }
        ScoreCmd::List => {
            out.query(
                &mut c,
                "SELECT d.name, d.kind,
                        CASE d.kind WHEN 'numeric' THEN coalesce(d.min_value::text, '') || '..' || coalesce(d.max_value::text, '')
                                    WHEN 'categorical' THEN array_to_string(d.categories, ', ') END AS allowed,
                        coalesce((SELECT sum(scores) FROM pgprompt.v_template_scores s WHERE s.score = d.name), 0)::int8 AS scores,
                        d.description
                   FROM pgprompt.prompt_score_definitions d ORDER BY d.name",
                &[],
            )?;
        }
    }
    Ok(Done::Ok)
}

pub fn run_trace(url: Option<&str>, out: &Out, cmd: TraceCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        TraceCmd::Show { trace_id } => {
            // Depth from the parent links (a parent outside the trace counts as none).
            let t = out.query(
                &mut c,
                "WITH RECURSIVE calls AS (SELECT * FROM pgprompt.v_trace_calls WHERE trace_id = $1),
                      tree AS (SELECT c.id, 0 AS depth FROM calls c
                                WHERE c.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM calls p WHERE p.id = c.parent_id)
                               UNION ALL
                               SELECT c.id, t.depth + 1 FROM calls c JOIN tree t ON c.parent_id = t.id)
                 SELECT c.step, repeat('  ', t.depth) || c.template AS call, c.id, c.version, c.model,
                        c.input_tokens, c.output_tokens, c.cost_usd, c.latency_ms, c.success, c.error_message
                   FROM calls c JOIN tree t USING (id) ORDER BY c.step",
                &[&trace_id],
            )?;
            if t.rows.is_empty() {
                return Err(pgprompt_client::Error::local(format!("no logged call has trace_id \"{trace_id}\"")));
            }
            if !out.json {
                let r = c.query_one(
                    "SELECT calls, input_tokens, output_tokens, coalesce(cost_usd::text, '0'), latency_ms, duration_ms,
                            coalesce(session_id, '-'), unpriced_calls
                       FROM pgprompt.v_traces WHERE trace_id = $1",
                    &[&trace_id],
                )?;
                println!(
                    "total: {} calls, {} input + {} output tokens, ${}{}, {} ms waiting on models, {} ms wall time; session {}",
                    r.get::<_, i64>(0),
                    r.get::<_, i64>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, String>(3),
                    match r.get::<_, i64>(7) {
                        0 => String::new(),
                        n => format!(" (+{n} unpriced)"),
                    },
                    r.get::<_, Option<i64>>(4).unwrap_or(0),
                    r.get::<_, Option<i64>>(5).unwrap_or(0),
                    r.get::<_, String>(6),
                );
            }
        }
    }
    Ok(Done::Ok)
}
