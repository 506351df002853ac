//! Rendering never fails with an internal error because of what other
//! sessions commit meanwhile, and no cache serves what is gone.

use pgprompt_tests::*;

#[test]
fn a_version_newer_than_the_snapshot_renders() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'one')").unwrap();
    for isolation in ["REPEATABLE READ", "SERIALIZABLE"] {
        let mut other = db.connect();
        c.batch_execute(&format!("BEGIN ISOLATION LEVEL {isolation}; SELECT count(*) FROM prompt_templates")).unwrap();
        let n: i32 = one(&mut other, "SELECT prompt_save('t', 'newer')");
        other.batch_execute(&format!("SELECT prompt_activate('t', {n})")).unwrap();
        // Rendering follows the latest activation, whatever the snapshot.
        assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t')"), "newer", "{isolation}");
        assert_eq!(one::<String>(&mut c, "SELECT prompt_render('t', label => 'latest')"), "newer", "{isolation}");
        assert_eq!(one::<String>(&mut c, &format!("SELECT prompt_render('t', version => {n})")), "newer", "{isolation}");
        c.batch_execute("COMMIT").unwrap();
    }
}

#[test]
fn latest_renders_while_versions_are_saved() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t', 'v1')").unwrap();
    let mut other = db.connect();
    // The statement's snapshot is taken before the sleep; version 2 commits
    // during it, and the render after it resolves `latest` to version 2.
    let saver = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        other.batch_execute("SELECT prompt_save('t', 'v2')").unwrap();
    });
    let out: String = one(&mut c, "SELECT pg_sleep(1)::text || prompt_render('t', label => 'latest')");
    saver.join().unwrap();
    assert_eq!(out, "v2");
    // Deleted and created again under the same name, while a statement runs.
    let mut other = db.connect();
    let saver = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        other.batch_execute("BEGIN; SELECT prompt_delete('t'); SELECT prompt_save('t', 'reborn'); COMMIT").unwrap();
    });
    let out: String = one(&mut c, "SELECT pg_sleep(1)::text || prompt_render('t')");
    saver.join().unwrap();
    assert_eq!(out, "reborn");
}

#[test]
fn dropping_and_creating_the_extension_twice_in_a_transaction_leaves_no_stale_body() {
    let db = TestDb::empty();
    let mut c = db.connect();
    c.batch_execute(
        "BEGIN;
         CREATE EXTENSION pgprompt;
         SELECT pgprompt.prompt_save('t', 'first body');
         SELECT pgprompt.prompt_render('t');
         SET CONSTRAINTS ALL IMMEDIATE;
         DROP EXTENSION pgprompt;
         SET CONSTRAINTS ALL DEFERRED;
         CREATE EXTENSION pgprompt;
         SELECT pgprompt.prompt_save('t', 'second body');",
    )
    .unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT pgprompt.prompt_render('t')"), "second body");
    c.batch_execute("COMMIT").unwrap();
    assert_eq!(one::<String>(&mut c, "SELECT pgprompt.prompt_render('t')"), "second body");
}

#[test]
fn logging_into_a_table_with_after_row_triggers_and_foreign_keys_leaks_nothing() {
    let db = TestDb::new();
    let (mut c, notices) = db.connect_with_notices();
    c.batch_execute(
        "SELECT prompt_save('t', 'x', '{\"model\": \"gpt-4o\"}');
         CREATE TABLE public.users (id text PRIMARY KEY);
         INSERT INTO public.users VALUES ('u1');
         CREATE TABLE public.seen (n int);
         CREATE FUNCTION public.count_row() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN INSERT INTO public.seen VALUES (1); RETURN NULL; END $$;
         CREATE TRIGGER counted AFTER INSERT ON prompt_executions FOR EACH ROW EXECUTE FUNCTION public.count_row();",
    )
    .unwrap();
    // The first call of a month learns the partition; the next ones go
    // straight into it.
    for _ in 0..5 {
        c.batch_execute("SELECT prompt_log_execution('t', user_id => 'u1')").unwrap();
    }
    // A foreign key from a partition's rows to users.
    let part: String = one(&mut c, "SELECT tableoid::regclass::text FROM prompt_executions LIMIT 1");
    c.batch_execute(&format!("ALTER TABLE {part} ADD FOREIGN KEY (user_id) REFERENCES public.users (id)")).unwrap();
    for _ in 0..5 {
        c.batch_execute("SELECT prompt_log_execution('t', user_id => 'u1')").unwrap();
    }
    assert_eq!(one::<i64>(&mut c, "SELECT count(*) FROM public.seen"), 10);
    let e = c.batch_execute("SELECT prompt_log_execution('t', user_id => 'nobody')").unwrap_err();
    assert_eq!(e.code().map(|c| c.code()), Some("23503"), "{e:?}");
    let warnings: Vec<(String, String)> = notices.take().into_iter().filter(|(code, _)| code != "00000").collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}
