//! Approvals and protected labels against a real server, with real login
//! roles (the checks read the session user, so SET ROLE in a superuser's
//! session would not show them): an author, a second administrator who
//! reviews, a releaser, and a superuser.

use pgprompt_tests::*;

/// A login role `{db}_{who}` in `pgprompt_{role}`, connected.
fn login(db: &TestDb, who: &str, role: &str) -> Client {
    let name = format!("{}_{who}", db.name);
    db.connect()
        .batch_execute(&format!(
            "DO $$ BEGIN CREATE ROLE {name} LOGIN IN ROLE pgprompt_{role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ))
        .unwrap();
    let mut cfg = config(&db.name);
    cfg.user(&name);
    let mut c = cfg.connect(NoTls).unwrap();
    c.batch_execute("SET search_path = pgprompt, public").unwrap();
    c
}

fn active(c: &mut Client, name: &str) -> i32 {
    one(c, &format!("SELECT active_version FROM prompt_templates WHERE name = '{name}'"))
}

#[test]
fn a_template_that_requires_approval_releases_only_approved_versions_by_releasers() {
    let db = TestDb::new();
    let mut su = db.connect();
    let mut author = login(&db, "author", "admin");
    let mut reviewer = login(&db, "reviewer", "admin");
    let mut releaser = login(&db, "releaser", "releaser");
    su.batch_execute("SELECT prompt_save('tutor', 'v1 {{ x }}')").unwrap();
    author.batch_execute("SELECT prompt_save('tutor', 'v2 {{ x }}'); SELECT prompt_save('tutor', 'v3 {{ x }}');").unwrap();
    // Only a releaser (or a superuser) decides who may release.
    expect_error(&mut author, "SELECT prompt_protect('tutor', requires_approval => true)", "42501");
    releaser.batch_execute("SELECT prompt_protect('tutor', requires_approval => true)").unwrap();
    expect_error(&mut author, "UPDATE prompt_templates SET requires_approval = false WHERE name = 'tutor'", "42501");
    expect_error(&mut author, "SELECT prompt_protect('tutor', requires_approval => false)", "42501");

    // The author cannot approve their own version, nor forge an approval.
    let msg = expect_error(&mut author, "SELECT prompt_approve('tutor', 2, 'looks fine to me')", "42501");
    assert!(msg.contains("its author cannot approve it"), "{msg}");
    expect_error(&mut author, "INSERT INTO prompt_approvals (template_id, version, approved_by) SELECT id, 2, 'someone' FROM prompt_templates", "42501");
    // Unapproved: nobody releases it, force or not.
    for who in [&mut author, &mut releaser] {
        let msg = expect_error(who, "SELECT prompt_activate('tutor', 2)", "55000");
        assert!(msg.contains("is not approved"), "{msg}");
        expect_error(who, "SELECT prompt_activate('tutor', 2, force => true)", "55000");
        expect_error(who, "SELECT prompt_label('tutor', 2, 'production', force => true)", "55000");
    }
    expect_error(&mut author, "UPDATE prompt_templates SET active_version = 2 WHERE name = 'tutor'", "55000");
    assert_eq!(active(&mut su, "tutor"), 1);

    // Approved by another role: a releaser releases it; an administrator still may not.
    reviewer.batch_execute("SELECT prompt_approve('tutor', 2, 'checked the tone')").unwrap();
    let approvals: serde_json::Value = one(&mut su, "SELECT approvals FROM prompt_get('tutor', 2)");
    assert_eq!(approvals[0]["by"], format!("{}_reviewer", db.name));
    assert_eq!(approvals[0]["comment"], "checked the tone");
    expect_error(&mut author, "SELECT prompt_activate('tutor', 2)", "42501");
    expect_error(&mut author, "UPDATE prompt_templates SET active_version = 2 WHERE name = 'tutor'", "42501");
    releaser.batch_execute("SELECT prompt_activate('tutor', 2)").unwrap();
    assert_eq!(one::<String>(&mut author, r#"SELECT prompt_render('tutor', '{"x": 1}')"#), "v2 1");
    // Rolling back returns to a version released before: a releaser's step.
    expect_error(&mut author, "SELECT prompt_rollback('tutor')", "42501");
    assert_eq!(one::<i32>(&mut releaser, "SELECT prompt_rollback('tutor')"), 1);
    // But a direct UPDATE to a version never approved is no rollback.
    releaser.batch_execute("SELECT prompt_activate('tutor', 2)").unwrap();
    expect_error(&mut releaser, "UPDATE prompt_templates SET active_version = 1 WHERE name = 'tutor'", "55000");

    // A superuser needs force too, and it is audited.
    expect_error(&mut su, "SELECT prompt_activate('tutor', 3)", "55000");
    su.batch_execute("SELECT prompt_activate('tutor', 3, force => true)").unwrap();
    assert_eq!(active(&mut su, "tutor"), 3);
    let forced: String = one(&mut su, "SELECT after ->> 'bypassed' FROM prompt_audit_logs WHERE action = 'force' AND version = 3");
    assert_eq!(forced, "approval");
    let audited: i64 = one(&mut su, "SELECT count(*) FROM prompt_audit_logs WHERE action = 'approve' AND object_name = 'tutor' AND version = 2");
    assert_eq!(audited, 1);

    // An experiment serves its variants: each must be approved too.
    author.batch_execute("SELECT prompt_save('tutor', 'v4 {{ x }}')").unwrap();
    author
        .batch_execute(r#"SELECT prompt_experiment_create('tone', 'tutor', '[{"version": 2, "weight": 50}, {"version": 4, "weight": 50}]')"#)
        .unwrap();
    expect_error(&mut releaser, "SELECT prompt_experiment_start('tone')", "55000");
    reviewer.batch_execute("SELECT prompt_approve('tutor', 4)").unwrap();
    expect_error(&mut author, "SELECT prompt_experiment_start('tone')", "42501");
    releaser.batch_execute("SELECT prompt_experiment_start('tone')").unwrap();
}

#[test]
fn protected_labels_move_only_at_a_releasers_hands() {
    let db = TestDb::new();
    let mut su = db.connect();
    let mut admin = login(&db, "author", "admin");
    let mut reviewer = login(&db, "reviewer", "admin");
    let mut releaser = login(&db, "releaser", "releaser");
    admin.batch_execute("SELECT prompt_save('t', 'v1'); SELECT prompt_save('t', 'v2'); SELECT prompt_label('t', 1, 'staging');").unwrap();
    releaser.batch_execute("SELECT prompt_protect('t', protected_labels => ARRAY['staging', 'production'])").unwrap();
    assert_eq!(one::<Vec<String>>(&mut su, "SELECT protected_labels FROM prompt_templates WHERE name = 't'"), ["production", "staging"]);
    expect_error(&mut releaser, "SELECT prompt_protect('t', protected_labels => ARRAY['Bad Label'])", "22023");

    // Moving, removing or re-inserting a protected label: refused to an administrator.
    let msg = expect_error(&mut admin, "SELECT prompt_label('t', 2, 'staging')", "42501");
    assert!(msg.contains("pgprompt_releaser"), "{msg}");
    expect_error(&mut admin, "SELECT prompt_unlabel('t', 'staging')", "42501");
    expect_error(&mut admin, "UPDATE prompt_labels SET version = 2 WHERE label = 'staging'", "42501");
    expect_error(&mut admin, "DELETE FROM prompt_labels WHERE label = 'staging'", "42501");
    // production protected: every release takes the role, though no approval.
    expect_error(&mut admin, "SELECT prompt_activate('t', 2)", "42501");
    // Free labels stay free.
    admin.batch_execute("SELECT prompt_label('t', 2, 'canary')").unwrap();
    // A releaser moves them without an approval: the template does not require one.
    releaser.batch_execute("SELECT prompt_label('t', 2, 'staging'); SELECT prompt_activate('t', 2);").unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t', label => 'staging')"), "v2");

    // With approval required, a protected label takes an approved version.
    releaser.batch_execute("SELECT prompt_protect('t', requires_approval => true)").unwrap();
    admin.batch_execute("SELECT prompt_save('t', 'v3')").unwrap();
    expect_error(&mut releaser, "SELECT prompt_label('t', 3, 'staging')", "55000");
    reviewer.batch_execute("SELECT prompt_approve('t', 3)").unwrap();
    releaser.batch_execute("SELECT prompt_label('t', 3, 'staging')").unwrap();
    assert_eq!(one::<String>(&mut admin, "SELECT prompt_render('t', label => 'staging')"), "v3");
    // Nothing an administrator tried left a trace but the refusals.
    assert_eq!(one::<i32>(&mut su, "SELECT version FROM prompt_labels WHERE label = 'staging'"), 3);
}

#[test]
fn a_setting_makes_every_template_require_approval() {
    let db = TestDb::new();
    let mut su = db.connect();
    su.batch_execute(&format!("ALTER DATABASE {} SET pgprompt.require_approval = on", db.name)).unwrap();
    let mut admin = login(&db, "author", "admin");
    let mut releaser = login(&db, "releaser", "releaser");
    admin.batch_execute("SELECT prompt_save('plain', 'v1'); SELECT prompt_save('plain', 'v2');").unwrap();
    assert!(!one::<bool>(&mut admin, "SELECT requires_approval FROM prompt_templates WHERE name = 'plain'"));
    expect_error(&mut releaser, "SELECT prompt_activate('plain', 2)", "55000");
    // No session lifts it: the setting is a superuser's.
    expect_error(&mut admin, "SET pgprompt.require_approval = off", "42501");
    expect_error(&mut admin, "SELECT set_config('pgprompt.require_approval', 'off', false)", "42501");
    // Not even a value set before the library defined the setting.
    let mut fresh = login(&db, "author", "admin");
    let _ = fresh.batch_execute("SET pgprompt.require_approval = off");
    expect_error(&mut fresh, "SELECT prompt_activate('plain', 2)", "55000");
    releaser.batch_execute("SELECT prompt_approve('plain', 2)").unwrap();
    releaser.batch_execute("SELECT prompt_activate('plain', 2)").unwrap();
    su.batch_execute(&format!("ALTER DATABASE {} RESET pgprompt.require_approval", db.name)).unwrap();
}

/// An imported version keeps who wrote it: neither that role nor the
/// importer may approve it, and the approvals it had elsewhere are history,
/// not approvals here.
#[test]
fn imported_versions_are_approved_again_by_someone_else() {
    let db = TestDb::new();
    let mut importer = login(&db, "importer", "admin");
    let mut reviewer = login(&db, "reviewer", "admin");
    let mut releaser = login(&db, "releaser", "releaser");
    let writer = format!("{}_reviewer", db.name);
    importer
        .batch_execute(&format!(
            "SELECT prompt_import_version('t', 1, 'one', 'text', '{{}}', '{{}}', NULL, NULL, NULL, 'elsewhere', '2020-01-01');
             SELECT prompt_import_version('t', 2, 'two', 'text', '{{}}', '{{}}', NULL, 'by the reviewer', 1, '{writer}', '2020-01-02');
             SELECT prompt_import_approval('t', 2, 'someone', '2020-01-03', 'approved there');"
        ))
        .unwrap();
    releaser.batch_execute("SELECT prompt_protect('t', requires_approval => true)").unwrap();
    expect_error(&mut releaser, "SELECT prompt_activate('t', 2)", "55000");
    expect_error(&mut importer, "SELECT prompt_approve('t', 2)", "42501");
    expect_error(&mut reviewer, "SELECT prompt_approve('t', 2)", "42501");
    releaser.batch_execute("SELECT prompt_approve('t', 2); SELECT prompt_activate('t', 2);").unwrap();
    // A skipped number or a different version 2 is refused.
    expect_error(&mut importer, "SELECT prompt_import_version('t', 4, 'four', 'text', '{}', '{}', NULL, NULL, 3, 'x', now())", "55000");
    let msg = expect_error(&mut importer, "SELECT prompt_import_version('t', 2, 'TWO', 'text', '{}', '{}', NULL, 'by the reviewer', 1, 'x', now())", "55000");
    assert!(msg.contains("differs from the imported one (body)"), "{msg}");
}
