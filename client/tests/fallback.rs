//! The client library against the running cluster, reached through a TCP
//! proxy the test can cut: rendering keeps working when the database goes
//! away (the in-process copy, then the overrides, then the defaults).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use pgprompt_client::{Execution, Prompts, ScoreValue, Scored, Source};
use pgprompt_tests::{one, TestDb};
use serde_json::json;

/// Forwards 127.0.0.1:<port> to the database until `cut`.
struct Proxy {
    port: u16,
    stopped: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stopped = Arc::new(AtomicBool::new(false));
        let streams: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (stop, all) = (stopped.clone(), streams.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).unwrap();
                        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
                        all.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                        for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                            thread::spawn(move || {
                                let mut buf = [0u8; 16384];
                                while let Ok(n) = from.read(&mut buf) {
                                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                                to.shutdown(Shutdown::Both).ok();
                            });
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
            // The listener is dropped here: new connections are refused.
        });
        Proxy { port, stopped, streams }
    }

    /// The database "goes down": every connection is cut, new ones refused.
    fn cut(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        for s in self.streams.lock().unwrap().iter() {
            s.shutdown(Shutdown::Both).ok();
        }
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn rendering_survives_the_database_going_away() {
    let db = TestDb::new();
    let mut admin = db.connect();
    admin.batch_execute(r#"SELECT prompt_save('tutor', 'Hi {{ name }}', '{"model": "gpt-4o"}')"#).unwrap();
    let (proxy, prompts) = through_proxy(&db);
    let mut prompts = prompts
        .with_override_json(r#"{"greeting": "Hello {{ name }} from the override"}"#)
        .unwrap()
        .with_defaults(&[("farewell", "Bye {{ name }}"), ("greeting", "never used: the override wins")]);
    let vars = json!({"name": "Ada"});

    let r = prompts.render("tutor", &vars).unwrap();
    assert_eq!((r.text.as_str(), r.version, r.source), ("Hi Ada", Some(1), Source::Database));
    // Errors of the template are errors, not a reason to fall back.
    let e = prompts.render("tutor", &json!({})).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42P02"));
    let e = prompts.render("nope", &vars).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42704"));

    // Another session activates a new version: the next render has it, and so does the copy.
    admin.batch_execute(r#"SELECT prompt_save('tutor', 'Hey {{ name }}!', '{"model": "gpt-4o"}'); SELECT prompt_activate('tutor', 2);"#).unwrap();
    let r = prompts.render("tutor", &vars).unwrap();
    assert_eq!((r.text.as_str(), r.version, r.source), ("Hey Ada!", Some(2), Source::Database));
    assert_eq!(prompts.cached(), [("tutor", 2)]);
    admin.batch_execute("SELECT prompt_rollback('tutor')").unwrap();
    assert_eq!(prompts.render("tutor", &vars).unwrap().text, "Hi Ada");
    assert_eq!(prompts.cached(), [("tutor", 1)]);
    admin.batch_execute("SELECT prompt_activate('tutor', 2)").unwrap();
    assert_eq!(prompts.render("tutor", &vars).unwrap().text, "Hey Ada!");
    assert_eq!(prompts.cached(), [("tutor", 2)]);

    // The rest of the API while the database is up.
    let f = prompts.render_for("tutor", "user-1", &vars).unwrap();
    assert_eq!((f.text.as_str(), f.version, f.experiment), ("Hey Ada!", 2, None));
    assert_eq!(f.config, json!({"model": "gpt-4o"}));
    let id = prompts
        .log_execution(&Execution { template: "tutor", input_tokens: 10, output_tokens: 5, success: true, user_id: Some("user-1"), ..Default::default() })
        .unwrap();
    assert!(id.is_some());
    // Traces and typed scores.
    let root = prompts
        .log_execution(&Execution { template: "tutor", success: true, trace_id: Some("turn-1"), session_id: Some("conv"), ..Default::default() })
        .unwrap()
        .unwrap();
    let child = prompts.log_execution(&Execution { template: "tutor", success: true, parent_id: Some(root), ..Default::default() }).unwrap().unwrap();
    let trace: String = one(&mut admin, &format!("SELECT trace_id || '/' || session_id FROM prompt_executions WHERE id = {child}"));
    assert_eq!(trace, "turn-1/conv");
    admin
        .batch_execute("SELECT prompt_score_define('stars', 'numeric', 1, 5); SELECT prompt_score_define('up', 'boolean');
                        SELECT prompt_score_define('topic', 'categorical', categories => ARRAY['math', 'art'])")
        .unwrap();
    prompts.score(Scored::Execution(root), "stars", ScoreValue::Number(4.5), Some("clear"), None).unwrap();
    prompts.score(Scored::Execution(root), "topic", ScoreValue::Category("math"), None, Some("classifier")).unwrap();
    prompts.score(Scored::Trace("turn-1"), "up", ScoreValue::Bool(true), None, Some("end-user")).unwrap();
    let e = prompts.score(Scored::Execution(root), "up", ScoreValue::Number(1.0), None, None).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("22023"), "{e:?}");
    let stored: String = one(
        &mut admin,
        "SELECT string_agg(concat_ws(' ', name, numeric_value, boolean_value, category, comment, source), '; ' ORDER BY id) FROM prompt_scores",
    );
    assert_eq!(stored, "stars 4.5 clear api; topic math classifier; up t end-user");
    let findings = prompts.scan("write to ada@example.com", "input").unwrap();
    assert_eq!(findings[0].entity, "EMAIL_ADDRESS");
    // Experiments and statistics, typed.
    admin.batch_execute(r#"SELECT prompt_experiment_create('tone', 'tutor', '[{"name": "a", "version": 1, "weight": 50}, {"name": "b", "version": 2, "weight": 50}]')"#).unwrap();
    prompts.experiment_start("tone").unwrap();
    let f = prompts.render_for("tutor", "user-1", &vars).unwrap();
    prompts
        .log_execution(&Execution { template: "tutor", success: true, experiment: f.experiment.as_deref(), variant: f.variant.as_deref(), ..Default::default() })
        .unwrap();
    let results = prompts.experiment_results("tone").unwrap();
    assert_eq!((results[0].variant.as_str(), results[0].is_control), ("a", true));
    assert_eq!(results.iter().map(|r| r.executions).sum::<i64>(), 1);
    assert_eq!(prompts.experiment_start("tone").unwrap_err().sqlstate.as_deref(), Some("55000"));
    prompts.experiment_stop("tone").unwrap();
    assert_eq!(prompts.experiment_promote("tone", Some("b"), false).unwrap_err().sqlstate.as_deref(), Some("55000"));
    assert_eq!(prompts.experiment_promote("tone", Some("b"), true).unwrap(), 2);
    let perf = prompts.performance().unwrap();
    assert_eq!(perf.iter().map(|p| p.executions).sum::<i64>(), 4, "a call, a trace of two, and the experiment's call");

    proxy.cut();
    let r = prompts.render("tutor", &vars).unwrap();
    assert_eq!((r.text.as_str(), r.version, r.source), ("Hey Ada!", Some(2), Source::Cache));
    let r = prompts.render("greeting", &vars).unwrap();
    assert_eq!((r.text.as_str(), r.source), ("Hello Ada from the override", Source::Override));
    let r = prompts.render("farewell", &vars).unwrap();
    assert_eq!((r.text.as_str(), r.source), ("Bye Ada", Source::Default));
    let e = prompts.render("unknown", &vars).unwrap_err();
    assert!(e.message.contains("no cached copy, override or default"), "{e}");
    let e = prompts.render("tutor", &json!({})).unwrap_err();
    assert!(e.message.contains("rendering locally"), "{e}");
    assert!(prompts.log_execution(&Execution { template: "tutor", ..Default::default() }).unwrap_err().message.contains("unreachable"));
}

#[test]
fn overrides_come_from_an_exported_directory() {
    let dir = std::env::temp_dir().join(format!("pgprompt-overrides-{}", std::process::id()));
    let t = dir.join("nlu__topics");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("template.json"), r#"{"name": "nlu/topics", "description": null, "category": null, "release": 2}"#).unwrap();
    let version = |n: u32, body: &str| {
        format!("---\nversion: {n}\nkind: text\nauthor: \"ada\"\ncreated_at: 2026-01-01T00:00:00.000000Z\nconfig: {{}}\noptions: {{\"trim_blocks\": true}}\n---\n{body}")
    };
    std::fs::write(t.join("v1.prompt"), version(1, "old {{ q }}")).unwrap();
    std::fs::write(t.join("v2.prompt"), version(2, "{% if q %}\nTopics of {{ q }}{% endif %}")).unwrap();
    std::fs::write(dir.join("README.md"), "not a template").unwrap();
    let mut cfg = pgprompt_client::postgres::Config::new();
    cfg.host("127.0.0.1").port(1).user("nobody").dbname("none").connect_timeout(Duration::from_secs(2));
    let mut prompts = Prompts::new(cfg).with_override_dir(&dir).unwrap();
    let r = prompts.render("nlu/topics", &json!({"q": "tides"})).unwrap();
    assert_eq!((r.text.as_str(), r.source), ("Topics of tides", Source::Override), "the release, with its render options");
    std::fs::write(t.join("v2.prompt"), "no front matter").unwrap();
    let e = Prompts::new(pgprompt_client::postgres::Config::new()).with_override_dir(&dir).err().unwrap();
    assert!(e.message.contains("v2.prompt: line 1"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Starts a proxy to the test database and a client through it.
fn through_proxy(db: &TestDb) -> (Proxy, Prompts) {
    let upstream = pgprompt_tests::config(&db.name).get_ports().first().copied().unwrap_or(5432);
    let proxy = Proxy::start(upstream);
    let base = pgprompt_tests::config(&db.name);
    let mut cfg = pgprompt_client::postgres::Config::new();
    cfg.host("127.0.0.1").port(proxy.port).dbname(&db.name).user(base.get_user().unwrap_or("postgres"));
    if let Some(pw) = base.get_password() {
        cfg.password(pw);
    }
    (proxy, Prompts::new(cfg))
}

#[test]
fn offline_copies_render_byte_for_byte_as_the_server() {
    let db = TestDb::new();
    let mut admin = db.connect();
    // What differs between template engines: whitespace options, key order,
    // Python's printing and methods, json.dumps, Markup, raw blocks, loop
    // controls, namespaces, lenient and strict undefined.
    let templates = [
        ("chat", r#"{% for m in messages %}
  {% if m.role == 'system' %}{% continue %}{% endif %}
<|{{ m.role }}|>
{{ m.content.strip() }}
{% endfor %}
{% if add_generation_prompt %}<|assistant|>{% endif %}"#, r#"{"trim_blocks": true, "lstrip_blocks": true, "undefined": "lenient"}"#),
        ("tools", r#"{% for t in tools %}{{ t.function|tojson }}
{% for k, v in t.function.parameters.properties|items %}{{ k }}={{ v }};{% endfor %}
{% endfor %}{{ tools[0].function.name.upper() }} {{ 'a,b,c'.rsplit(',', 1) }} {{ '7'.zfill(3) }}"#, "{}"),
        ("python", r#"{{ 1e-6 }} {{ 0.1 + 0.2 }} {{ 2.0 }} {{ [1, 'a', none, true] }} {{ {'k': [1.5]} }} {{ "<b>"|safe + x }} {{ x|e }} {% raw %}
{{ not rendered }}{% endraw %}
{% set ns = namespace(n=0) %}{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }} {{ missing }}|"#, r#"{"trim_blocks": true, "keep_trailing_newline": true, "undefined": "lenient"}"#),
        ("strict", "Hello {{ name }}{% if title is defined %}, {{ title }}{% endif %}{{ suffix|default('!') }}", "{}"),
    ];
    for (name, body, options) in templates {
        admin
            .query_one("SELECT pgprompt.prompt_save($1, $2, options => $3::text::jsonb)", &[&name, &body, &options])
            .unwrap();
    }
    let vars = json!({
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "  Why is the sky blue?  "},
            {"role": "assistant", "content": "Rayleigh scattering."},
        ],
        "add_generation_prompt": true,
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather \"now\"",
                   "parameters": {"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"type": "integer"}}}}}],
        "x": "<i>'quoted' & \"double\"</i>",
        "name": "Ada",
    });
    let (proxy, mut prompts) = through_proxy(&db);
    let mut online = Vec::new();
    for (name, _, _) in templates {
        let r = prompts.render(name, &vars).unwrap();
        assert_eq!(r.source, Source::Database);
        online.push(r.text);
    }
    // The server's renders are what Jinja2 gives (spot checks of the hard parts).
    assert_eq!(online[0], "<|user|>\nWhy is the sky blue?\n<|assistant|>\nRayleigh scattering.\n<|assistant|>");
    assert!(online[1].starts_with(r#"{"name": "get_weather", "description": "Weather \"now\"", "parameters""#), "{}", online[1]);
    assert!(online[1].contains("zeta={'type': 'string'};alpha={'type': 'integer'};"), "{}", online[1]);
    assert!(online[2].starts_with("1e-06 0.30000000000000004 2.0 [1, 'a', None, True] {'k': [1.5]} <b>&lt;i&gt;&#39;quoted&#39; &amp; &#34;double&#34;&lt;/i&gt; "), "{}", online[2]);
    assert_eq!(online[3], "Hello Ada!");
    let strict_error = prompts.render("strict", &json!({})).unwrap_err();
    assert_eq!(strict_error.sqlstate.as_deref(), Some("42P02"));

    proxy.cut();
    for ((name, _, _), want) in templates.iter().zip(&online) {
        let r = prompts.render(name, &vars).unwrap();
        assert_eq!(r.source, Source::Cache, "{name}");
        assert_eq!(&r.text, want, "{name}: the offline copy renders as the server did");
    }
    let e = prompts.render("strict", &json!({})).unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("42P02"), "{e}");
}
