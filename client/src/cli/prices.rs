//! `pgprompt price ...`

use clap::Subcommand;
use pgprompt_client::{Error, Result};

use super::{connect, read_input, Done, Out};

#[derive(Subcommand)]
pub enum PriceCmd {
    /// Prices per model and date (USD per million tokens).
    List {
        /// Only models whose name contains this.
        #[arg(long)]
        model: Option<String>,
    },
    /// Add a price (from --from on; earlier calls keep their price).
    Set {
        model: String,
        /// USD per million input tokens.
        #[arg(long)]
        input: String,
        /// USD per million output tokens.
        #[arg(long)]
        output: String,
        /// USD per million cached input tokens.
        #[arg(long)]
        cached: Option<String>,
        /// When the price takes effect (default: now).
        #[arg(long)]
        from: Option<String>,
        /// Regex of other model names this price covers.
        #[arg(long)]
        pattern: Option<String>,
        #[arg(long)]
        source: Option<String>,
    },
    /// Load LiteLLM's model_prices_and_context_window.json ("-": stdin).
    Import {
        file: String,
        #[arg(long)]
        from: Option<String>,
    },
}

pub fn run(url: Option<&str>, out: &Out, cmd: PriceCmd) -> Result<Done> {
    let mut c = connect(url)?;
    match cmd {
        PriceCmd::List { model } => {
            out.query(
                &mut c,
                "SELECT model, effective_from, input_usd_per_mtok AS input, output_usd_per_mtok AS output,
                        cached_input_usd_per_mtok AS cached_input, long_context_threshold AS long_above,
                        long_input_usd_per_mtok AS long_input, long_output_usd_per_mtok AS long_output, match_pattern, source
                   FROM pgprompt.prompt_model_prices WHERE $1::text IS NULL OR strpos(model, lower($1)) > 0
                  ORDER BY model, effective_from",
                &[&model],
            )?;
        }
        PriceCmd::Set { model, input, output, cached, from, pattern, source } => {
            c.execute(
                "INSERT INTO pgprompt.prompt_model_prices (model, input_usd_per_mtok, output_usd_per_mtok, cached_input_usd_per_mtok,
                                                          effective_from, match_pattern, source)
                 VALUES (lower(btrim($1)), $2::text::numeric, $3::text::numeric, $4::text::numeric,
                         coalesce($5::text::timestamptz, now()), $6, $7)",
                &[&model, &input, &output, &cached, &from, &pattern, &source],
            )?;
            println!("price of {model} set");
        }
        PriceCmd::Import { file, from } => {
            let text = read_input(Some(&file))?;
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| Error::local(format!("{file}: not JSON: {e}")))?;
            let n: i32 = c
                .query_one(
                    "SELECT pgprompt.prompt_import_prices($1::text::jsonb, coalesce($2::text::timestamptz, now()))",
                    &[&text, &from],
                )?
                .get(0);
            println!("{n} model prices imported");
        }
    }
    Ok(Done::Ok)
}
