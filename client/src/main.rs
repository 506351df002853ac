//! `pgprompt`: the admin command line for the pgprompt extension.

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

mod cli;
mod serve;

const EXAMPLES: &str = "Examples:
  pgprompt template list
  pgprompt template new tutor --file tutor.j2 --config '{\"model\": \"gemini-2.5-flash\"}'
  pgprompt template render tutor --var topic=gravity --var grade=8
  pgprompt template diff tutor 1 2
  pgprompt guardrail check 'mail me at ada@example.com'
  pgprompt experiment results tutor_tone
  pgprompt score define helpfulness --kind numeric --min 1 --max 5
  pgprompt trace show turn-42
  pgprompt stats costs --days 7 --json
  pgprompt export prompts/ && git diff prompts/
  pgprompt doctor

Connection: --url, or DATABASE_URL, or PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD.
URLs: postgresql://user:pass@host:5432/db or postgresql://user@/db?host=/run/postgresql
Exit status: 0 ok, 1 error (the server's message and SQLSTATE are shown), 2 usage.";

/// Manage prompts stored in PostgreSQL with the pgprompt extension.
#[derive(Parser)]
#[command(name = "pgprompt", version, after_help = EXAMPLES)]
struct Cli {
    /// Connection string (postgresql://user@host:port/db).
    #[arg(long, global = true)]
    url: Option<String>,
    /// Print read commands' results as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the server and extension versions.
    Status,
    /// Templates: list, show, new, activate, rollback, label, diff, render, variables, test.
    #[command(subcommand)]
    Template(cli::templates::TemplateCmd),
    /// Guardrails: list, show, add, update, enable, disable, check.
    #[command(subcommand)]
    Guardrail(cli::guardrails::GuardrailCmd),
    /// A/B experiments: list, create, start, stop, results, promote.
    #[command(subcommand)]
    Experiment(cli::experiments::ExperimentCmd),
    /// Statistics: performance, costs, errors, alerts.
    #[command(subcommand)]
    Stats(cli::stats::StatsCmd),
    /// Feedback scores: define, list.
    #[command(subcommand)]
    Score(cli::scores::ScoreCmd),
    /// Traces: show.
    #[command(subcommand)]
    Trace(cli::scores::TraceCmd),
    /// Model prices: list, set, import.
    #[command(subcommand)]
    Price(cli::prices::PriceCmd),
    /// Import an export directory: every version, label, release, approval and test case (idempotent).
    Import(cli::transfer::ImportArgs),
    /// Export every template with its whole history to a directory, one directory per template.
    Export(cli::transfer::ExportArgs),
    /// Check the installation: extension, tables, indexes, views, triggers, defaults, roles, tests.
    Doctor,
    /// Serve the web interface and the REST API (see README: Web interface).
    Serve(serve::ServeArgs),
    /// Print the script that gives a shell completions, template and experiment names included
    /// (bash: source <(pgprompt completions bash)).
    Completions(CompletionArgs),
}

/// Whether a command prints what `--json` can render (the commands that
/// read, diff and doctor); a command that writes refuses the flag rather
/// than ignore it.
fn prints_json(command: &Command) -> bool {
    use cli::experiments::ExperimentCmd as E;
    use cli::guardrails::GuardrailCmd as G;
    use cli::prices::PriceCmd as P;
    use cli::scores::ScoreCmd as S;
    use cli::templates::TemplateCmd as T;
    match command {
        Command::Trace(_) | Command::Doctor => true,
        Command::Stats(s) => {
            use cli::stats::StatsCmd as St;
            matches!(s, St::Performance { .. } | St::Costs { .. } | St::Errors | St::Alerts | St::Rules)
        }
        Command::Template(t) => matches!(
            t,
            T::List
                | T::Show { .. }
                | T::History { .. }
                | T::Render { .. }
                | T::Variables { .. }
                | T::Test { .. }
                | T::Cases { .. }
                | T::Diff { .. }
        ),
        Command::Guardrail(g) => matches!(g, G::List | G::Show { .. } | G::Check { .. }),
        Command::Experiment(e) => matches!(e, E::List | E::Results { .. }),
        Command::Score(s) => matches!(s, S::List),
        Command::Price(p) => matches!(p, P::List { .. }),
        _ => false,
    }
}

#[derive(Args)]
struct CompletionArgs {
    /// bash, zsh, fish, elvish or powershell.
    shell: clap_complete::Shell,
}

fn main() -> ExitCode {
    // Piped into `head` or a pager that quits: end quietly, as Unix tools
    // do, instead of a panic on the failed write (exit 101). Rust starts
    // programs with SIGPIPE ignored; this restores the default.
    // SAFETY: setting a signal disposition before any thread is started.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // A shell asking for completions (COMPLETE=bash pgprompt -- words):
    // answered here, and the process ends.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
    let cli = Cli::parse();
    if cli.json && !prints_json(&cli.command) {
        let mut usage = Cli::command();
        usage
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--json is for the commands that read: list, show, history, diff, render, variables, test, cases, check, results, stats, rules, trace show, doctor",
            )
            .exit();
    }
    let out = cli::Out::new(cli.json);
    let url = cli.url.as_deref();
    let result = match cli.command {
        Command::Status => cli::status(url),
        Command::Template(c) => cli::templates::run(url, &out, c),
        Command::Guardrail(c) => cli::guardrails::run(url, &out, c),
        Command::Experiment(c) => cli::experiments::run(url, &out, c),
        Command::Stats(c) => cli::stats::run(url, &out, c),
        Command::Score(c) => cli::scores::run_score(url, &out, c),
        Command::Trace(c) => cli::scores::run_trace(url, &out, c),
        Command::Price(c) => cli::prices::run(url, &out, c),
        Command::Import(a) => cli::transfer::import(url, a),
        Command::Export(a) => cli::transfer::export(url, a),
        Command::Doctor => cli::doctor::run(url, &out),
        Command::Serve(a) => serve::run(url, a).map(|()| cli::Done::Ok),
        Command::Completions(a) => {
            // The registration script of the dynamic completions, which
            // ask pgprompt (and so the database) at each <Tab>.
            // SAFETY: no thread has been started.
            unsafe { std::env::set_var("COMPLETE", a.shell.to_string()) };
            clap_complete::CompleteEnv::with_factory(Cli::command).complete();
            Ok(cli::Done::Ok)
        }
    };
    match result {
        Ok(cli::Done::Ok) => ExitCode::SUCCESS,
        Ok(cli::Done::Failed) => ExitCode::from(1),
        Err(e) => {
            eprintln!("pgprompt: {e}");
            ExitCode::from(1)
        }
    }
}
