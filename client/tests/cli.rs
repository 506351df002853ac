//! The `pgprompt` binary against the running cluster (see .ci/test).

use std::process::Command;

fn pgprompt(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgprompt")).args(args).output().expect("the binary runs")
}

#[test]
fn status_prints_server_and_extension_versions() {
    let db = pgprompt_tests::TestDb::new();
    let out = pgprompt(&["--url", &db.url(), "status"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("PostgreSQL 15"), "{stdout}");
    assert!(stdout.contains(&format!("pgprompt  {}", env!("CARGO_PKG_VERSION"))), "{stdout}");
}

#[test]
fn status_says_when_the_extension_is_missing() {
    let url = pgprompt_tests::admin_url("postgres");
    let out = pgprompt(&["--url", &url, "status"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("not installed"));
}

#[test]
fn connection_errors_exit_1_without_a_panic() {
    let out = pgprompt(&["--url", "postgresql://nobody@127.0.0.1:1/none", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("pgprompt: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    let out = pgprompt(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}
