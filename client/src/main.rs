//! `pgprompt`: the admin command line for the pgprompt extension.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Manage prompts stored in PostgreSQL with the pgprompt extension.
///
/// Connection: --url, or DATABASE_URL, or PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD.
#[derive(Parser)]
#[command(name = "pgprompt", version, after_help = "Example:\n  pgprompt --url postgresql://postgres@127.0.0.1:28815/pgprompt status")]
struct Cli {
    /// Connection string (postgresql://user@host:port/db).
    #[arg(long, global = true)]
    url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the server and extension versions.
    Status,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Status => status(cli.url.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgprompt: {e}");
            ExitCode::from(1)
        }
    }
}

fn status(url: Option<&str>) -> pgprompt_client::Result<()> {
    let mut client = pgprompt_client::connect(url)?;
    let info = pgprompt_client::server_info(&mut client)?;
    println!("server    PostgreSQL {}", info.server_version);
    match info.extension_version {
        Some(v) => println!("pgprompt  {v}"),
        None => println!("pgprompt  not installed in this database (CREATE EXTENSION pgprompt)"),
    }
    Ok(())
}
