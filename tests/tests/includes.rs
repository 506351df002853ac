//! Composition against a real server: templates include stored templates
//! pinned by label or version; moving the label changes what the includers
//! render from the next statement on, in every session; dependencies are
//! recorded; unknown targets, cycles, depth over 5 and chat templates are
//! refused at save; a child's release re-runs its includers' test cases.

use pgprompt_tests::*;

#[test]
fn includes_follow_their_label_or_stay_pinned() {
    let db = TestDb::new();
    let mut admin = db.connect();
    let mut app = db.connect();
    admin
        .batch_execute(
            r#"SELECT prompt_save('persona', 'You are {{ tutor }}, a patient tutor.');
               SELECT prompt_save('persona', 'You are {{ tutor }}, a cheerful tutor.');
               SELECT prompt_label('persona', 2, 'staging');
               SELECT prompt_save('tutor', '{% include "persona@production" %} Explain {{ topic }}.');
               SELECT prompt_save('tutor_next', '{% include "persona@staging" %} Explain {{ topic }}.');
               SELECT prompt_save('tutor_pinned', '{%- include "persona@1" -%} Explain {{ topic }}.');"#,
        )
        .unwrap();
    let r = |c: &mut Client, t: &str| -> String { one(c, &format!(r#"SELECT prompt_render('{t}', '{{"tutor": "Ada", "topic": "tides"}}')"#)) };
    assert_eq!(r(&mut app, "tutor"), "You are Ada, a patient tutor. Explain tides.");
    assert_eq!(r(&mut app, "tutor_next"), "You are Ada, a cheerful tutor. Explain tides.");
    assert_eq!(r(&mut app, "tutor_pinned"), "You are Ada, a patient tutor.Explain tides.");
    // Releasing the child: the includer renders it from the next statement on, in another session too.
    admin.batch_execute("SELECT prompt_activate('persona', 2)").unwrap();
    assert_eq!(r(&mut app, "tutor"), "You are Ada, a cheerful tutor. Explain tides.");
    assert_eq!(r(&mut app, "tutor_pinned"), "You are Ada, a patient tutor.Explain tides.");
    admin.batch_execute("SELECT prompt_rollback('persona')").unwrap();
    assert_eq!(r(&mut app, "tutor"), "You are Ada, a patient tutor. Explain tides.");
    // Includes of includes, in chat templates and dry runs alike.
    admin
        .batch_execute(
            r#"SELECT prompt_save('greeting', 'Hello {{ student }}. {% include "persona@production" %}');
               SELECT prompt_save('chat', '[{"role": "system", "content": "{% include \"greeting@production\" %}"}, {"role": "user", "content": "{{ topic }}?"}]', kind => 'chat');"#,
        )
        .unwrap();
    let messages: serde_json::Value = one(&mut app, r#"SELECT prompt_render_chat('chat', '{"student": "Bo", "tutor": "Ada", "topic": "tides"}')"#);
    assert_eq!(messages[0]["content"], "Hello Bo. You are Ada, a patient tutor.");
    assert_eq!(
        one::<String>(&mut app, r#"SELECT prompt_render_text('[{% include "persona@2" %}]', '{"tutor": "Cy"}')"#),
        "[You are Cy, a cheerful tutor.]"
    );
    // A missing variable of the included template is named.
    let msg = expect_error(&mut app, r#"SELECT prompt_render('tutor', '{"topic": "tides"}')"#, "42P02");
    assert!(msg.contains("tutor"), "{msg}");
    // Dependencies are recorded.
    let deps: Vec<String> = admin
        .query("SELECT t.name || ' v' || i.version || ' -> ' || i.target FROM prompt_includes i JOIN prompt_templates t ON t.id = i.template_id ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        deps,
        [
            "chat v1 -> greeting@production",
            "greeting v1 -> persona@production",
            "tutor v1 -> persona@production",
            "tutor_next v1 -> persona@staging",
            "tutor_pinned v1 -> persona@1"
        ]
    );
}

#[test]
fn bad_includes_are_refused_at_save() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('a', 'a');
           SELECT prompt_save('b', 'b {% include "a@production" %}');
           SELECT prompt_save('c', 'c {% include "b@production" %}');
           SELECT prompt_save('chatty', '[{"role": "user", "content": "hi"}]', kind => 'chat');"#,
    )
    .unwrap();
    // A chain of five is fine, six is not.
    c.batch_execute("SELECT prompt_save('d1', 'd1')").unwrap();
    for i in 2..=6 {
        c.batch_execute(&format!(r#"SELECT prompt_save('d{i}', 'd{i} {{% include "d{}@production" %}}')"#, i - 1)).unwrap();
    }
    let before = snapshot(&mut c);
    for (body, code, why) in [
        (r#"{% include "nope@production" %}"#, "42704", "template \"nope\" does not exist"),
        (r#"{% include "a@staging" %}"#, "42704", "has no label staging"),
        (r#"{% include "a@9" %}"#, "42704", "has no version 9"),
        (r#"{% include "chatty@production" %}"#, "42809", "only text templates"),
        (r#"{% include "a" %}"#, "42601", "name@label"),
        (r#"{% include some_variable %}"#, "42601", "name@label"),
        (r#"{% include "/etc/passwd@1" %}"#, "42601", "name@label"),
        (r#"{% import "a@production" as m %}"#, "42601", "not available"),
        (r#"{% include "d6@production" %}"#, "54001", "deeper than 5 levels"),
    ] {
        let msg = expect_error(&mut c, &format!("SELECT prompt_save('x', '{}')", body.replace('\'', "''")), code);
        assert!(msg.contains(why), "{body}: {msg}");
    }
    // Cycles: direct, and through three templates (a -> c -> b -> a).
    let msg = expect_error(&mut c, r#"SELECT prompt_save('a', 'a {% include "a@production" %}')"#, "42P17");
    assert!(msg.contains("a -> a"), "{msg}");
    let msg = expect_error(&mut c, r#"SELECT prompt_save('a', 'a {% include "c@production" %}')"#, "42P17");
    assert!(msg.contains("a -> c -> b -> a"), "{msg}");
    assert_eq!(snapshot(&mut c), before, "refused saves write nothing");
}

#[test]
fn releasing_a_child_reruns_its_includers_test_cases() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('persona', 'You are a patient tutor.');
           SELECT prompt_save('persona', 'Arr, ye be a pirate.');
           SELECT prompt_save('tutor', '{% include "persona@production" %} Explain {{ topic }}.');
           SELECT prompt_test_case_save('tutor', 'stays a tutor', '[{"contains": "tutor"}]', '{"topic": "tides"}');
           SELECT prompt_label('persona', 1, 'staging');
           SELECT prompt_save('free', '{% include "persona@staging" %}');
           SELECT prompt_test_case_save('free', 'no pirates', '[{"not_contains": "pirate"}]', '{}');"#,
    )
    .unwrap();
    let msg = expect_error(&mut c, "SELECT prompt_activate('persona', 2)", "PG002");
    assert!(msg.contains("stays a tutor") && msg.contains("tutor"), "{msg}");
    assert_eq!(one::<i32>(&mut c, "SELECT active_version FROM prompt_templates WHERE name = 'persona'"), 1);
    // A label the includer uses is gated too.
    expect_error(&mut c, "SELECT prompt_label('persona', 2, 'staging')", "PG002");
    // Forced: it happens, audited against the includer.
    c.batch_execute("SELECT prompt_activate('persona', 2, force => true)").unwrap();
    let forced: String = one(&mut c, "SELECT object_name || ' ' || (after ->> 'action') FROM prompt_audit_logs WHERE action = 'force'");
    assert!(forced.starts_with("tutor activate of persona (included by version 1 of tutor)"), "{forced}");
    assert_eq!(one::<String>(&mut c, r#"SELECT prompt_render('tutor', '{"topic": "x"}')"#), "Arr, ye be a pirate. Explain x.");
}
