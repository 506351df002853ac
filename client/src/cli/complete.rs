//! Completions that know the database: template, experiment and guardrail
//! names, read through the connection the command line being completed
//! names (`--url`), else the environment's (DATABASE_URL, PG* variables).
//! A completion never keeps the shell waiting: two seconds to connect at
//! most, and no candidates on any error.
//!
//! The shell asks by running `COMPLETE=<shell> pgprompt -- <words>`
//! (clap_complete's protocol); `pgprompt completions <shell>` prints the
//! script that registers this with the shell.

use clap_complete::CompletionCandidate;

/// The `--url` of the command line being completed (after `--`), if any.
fn url_being_completed() -> Option<String> {
    let words: Vec<String> = std::env::args().skip_while(|a| a != "--").skip(1).collect();
    words.iter().enumerate().find_map(|(i, w)| {
        if w == "--url" {
            words.get(i + 1).cloned()
        } else {
            w.strip_prefix("--url=").map(str::to_string)
        }
    })
}

/// The first column of `sql`'s rows as candidates.
fn names(sql: &str) -> Vec<CompletionCandidate> {
    if std::env::var_os("PGCONNECT_TIMEOUT").is_none() {
        // SAFETY: the completion process has started no thread.
        unsafe { std::env::set_var("PGCONNECT_TIMEOUT", "2") };
    }
    let Ok(mut c) = pgprompt_client::connect(url_being_completed().as_deref()) else {
        return Vec::new();
    };
    c.query(sql, &[])
        .map(|rows| rows.iter().map(|r| CompletionCandidate::new(r.get::<_, String>(0))).collect())
        .unwrap_or_default()
}

pub fn templates() -> Vec<CompletionCandidate> {
    names("SELECT name FROM pgprompt.prompt_templates ORDER BY name")
}

pub fn experiments() -> Vec<CompletionCandidate> {
    names("SELECT name FROM pgprompt.ab_test_experiments ORDER BY name")
}

pub fn guardrails() -> Vec<CompletionCandidate> {
    names("SELECT name FROM pgprompt.prompt_guardrails ORDER BY name")
}
