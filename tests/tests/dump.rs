//! pg_dump and pg_restore keep every row, and the restored database works.

use std::process::Command;

use pgprompt_tests::*;

fn pg_bin(tool: &str) -> String {
    let dir = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{tool}")
}

fn run(tool: &str, args: &[&str]) {
    let out = Command::new(pg_bin(tool)).args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert!(out.status.success(), "{tool} failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn dump_and_restore_keep_every_row() {
    let source = TestDb::new();
    let mut c = source.connect();
    load_examples(&mut c);
    c.batch_execute(
        "SELECT prompt_save('nlu_topic_extraction', 'v2 {{ student_query }}', message => 'shorter');
         SELECT prompt_activate('nlu_topic_extraction', 2);
         SELECT prompt_label('nlu_topic_extraction', 2, 'staging');
         SELECT prompt_rollback('nlu_topic_extraction');",
    )
    .unwrap();
    let before = fingerprint(&mut c, true);

    let file = std::env::temp_dir().join(format!("{}.dump", source.name));
    let file = file.to_str().unwrap();
    let port = config("postgres").get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config("postgres").get_user().unwrap_or("postgres").to_string();
    run("pg_dump", &["-h", "127.0.0.1", "-p", &port, "-U", &user, "-Fc", "-f", file, &source.name]);
    let target = TestDb::empty();
    run("pg_restore", &["-h", "127.0.0.1", "-p", &port, "-U", &user, "-d", &target.name, "--exit-on-error", file]);
    std::fs::remove_file(file).ok();

    let mut r = target.connect();
    assert_eq!(fingerprint(&mut r, true), before, "the restored database has exactly the same rows");
    // It works: rendering, the active version, and new versions continue the numbering.
    let out: String = one(&mut r, r#"SELECT prompt_render('nlu_topic_extraction', '{"student_query": "q", "grade_level": 3}')"#);
    assert!(out.contains("Student question: \"q\""), "{out}");
    assert_eq!(one::<String>(&mut r, r#"SELECT prompt_render('nlu_topic_extraction', '{"student_query": "q"}', label => 'staging')"#), "v2 q");
    assert_eq!(one::<i32>(&mut r, "SELECT prompt_save('nlu_topic_extraction', 'v3')"), 3);
    // The activation history came along: rollback undoes the new activation.
    r.batch_execute("SELECT prompt_activate('nlu_topic_extraction', 3)").unwrap();
    assert_eq!(one::<i32>(&mut r, "SELECT prompt_rollback('nlu_topic_extraction')"), 1);
    let audit_max_before: i64 = one(&mut c, "SELECT max(id) FROM prompt_audit_logs");
    let new_events: Vec<String> = r
        .query("SELECT action FROM prompt_audit_logs WHERE id > $1 ORDER BY id", &[&audit_max_before])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(new_events, ["new_version", "activate", "rollback"]);
}
