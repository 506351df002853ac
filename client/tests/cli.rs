//! The `pgprompt` binary end to end against the running cluster (see
//! .ci/test): spawn it, check stdout, stderr and the exit status.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use pgprompt_tests::{one, TestDb};

fn pgprompt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgprompt")).args(args).env_remove("DATABASE_URL").output().expect("the binary runs")
}

fn with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `pgprompt --url <db> args...`, expecting success; returns stdout.
fn ok(db: &TestDb, args: &[&str]) -> String {
    let url = db.url();
    let mut all = vec!["--url", url.as_str()];
    all.extend_from_slice(args);
    let out = pgprompt(&all);
    assert!(out.status.success(), "{args:?}: {}{}", text(&out), String::from_utf8_lossy(&out.stderr));
    text(&out)
}

/// Runs it expecting exit status `code`; returns stderr.
fn fails(db: &TestDb, args: &[&str], code: i32) -> String {
    let url = db.url();
    let mut all = vec!["--url", url.as_str()];
    all.extend_from_slice(args);
    let out = pgprompt(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}{stderr}", text(&out));
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn status_prints_server_and_extension_versions() {
    let db = TestDb::new();
    let stdout = ok(&db, &["status"]);
    let version: String = one(&mut db.connect(), "SELECT split_part(current_setting('server_version'), ' ', 1)");
    assert!(stdout.contains(&format!("server    PostgreSQL {version}")), "{stdout}");
    assert!(stdout.contains(&format!("pgprompt  {}", env!("CARGO_PKG_VERSION"))), "{stdout}");
}

#[test]
fn status_says_when_the_extension_is_missing_and_commands_refuse() {
    let db = TestDb::empty();
    assert!(ok(&db, &["status"]).contains("not installed"));
    let err = fails(&db, &["template", "list"], 1);
    assert!(err.contains("not installed in database") && err.contains("CREATE EXTENSION pgprompt"), "{err}");
}

#[test]
fn connection_errors_exit_1_without_a_panic() {
    let out = pgprompt(&["--url", "postgresql://nobody@127.0.0.1:1/none", "template", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr, "pgprompt: connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n");
    let out = pgprompt(&["--url", "postgresql://nobody@/none?host=/nonexistent-socket-dir&port=5999", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("connection to server on socket \"/nonexistent-socket-dir/.s.PGSQL.5999\" failed: No such file or directory"), "{stderr}");
    let out = pgprompt(&["--url", "postgresql://x@host:99999/db", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid connection string: invalid value for option `port`"));
    let out = pgprompt(&["--url", "postgresql://nobody@/none?host=/nonexistent-socket-dir", "doctor"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("FAIL  connection"), "{}", text(&out));
}

/// `pgprompt ... | head`: the reader goes away; the command ends quietly
/// (as Unix tools do, by SIGPIPE), not with a panic and exit 101.
#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('t' || i, 'body ' || i) FROM generate_series(1, 300) i").unwrap();
    for args in [vec!["completions", "bash"], vec!["--url", &db.url(), "template", "list"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
            .args(&args)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{args:?}");
    }
}

/// Passwords and settings come from where psql finds them: the URL,
/// PGPASSWORD beside a URL without one, the password file, a service.
/// The role authenticates by password over TCP (see .ci/lib.sh).
#[test]
fn passwords_come_from_where_psql_finds_them() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "DO $$ BEGIN CREATE ROLE pgprompt_pw_test LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER ROLE pgprompt_pw_test PASSWORD 's3cret:pw'",
    )
    .unwrap();
    let port: String = one(&mut c, "SELECT current_setting('port')");
    let run = |envs: &[(&str, &str)], args: &[&str]| -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgprompt"));
        cmd.args(args).env_remove("DATABASE_URL").env_remove("PGPASSWORD").env_remove("PGSERVICE").env("PGPASSFILE", "/nonexistent");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let url = format!("postgresql://pgprompt_pw_test@127.0.0.1:{port}/{}", db.name);
    let status = |o: &Output| (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned());

    // No password where one is needed; a wrong one.
    let (code, err) = status(&run(&[], &["--url", &url, "status"]));
    assert_eq!(code, Some(1));
    assert!(err.contains(&format!("connection to server at \"127.0.0.1\", port {port} failed: fe_sendauth: no password supplied")), "{err}");
    let (code, err) = status(&run(&[("PGPASSWORD", "wrong")], &["--url", &url, "status"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("failed: FATAL:  password authentication failed for user \"pgprompt_pw_test\""), "{err}");
    // PGPASSWORD beside a URL without a password.
    let out = run(&[("PGPASSWORD", "s3cret:pw")], &["--url", &url, "status"]);
    assert!(out.status.success(), "{:?}", status(&out));
    // The password file: only its owner may read it, and the escaped colon counts.
    let dir = std::env::temp_dir().join(format!("{}-conn", db.name));
    std::fs::create_dir_all(&dir).unwrap();
    let pgpass = dir.join("pgpass");
    std::fs::write(&pgpass, format!("# ours\nelsewhere:*:*:*:no\n127.0.0.1:{port}:*:pgprompt_pw_test:s3cret\\:pw\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = status(&run(&[("PGPASSFILE", pgpass.to_str().unwrap())], &["--url", &url, "status"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("has group or world access") && err.contains("no password supplied"), "{err}");
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run(&[("PGPASSFILE", pgpass.to_str().unwrap())], &["--url", &url, "status"]);
    assert!(out.status.success(), "{:?}", status(&out));
    // A service: host, port, database and user from the service file, the password from the password file.
    let services = dir.join("pg_service.conf");
    std::fs::write(&services, format!("[other]\nhost=nowhere\n\n[prompts]\nhost=127.0.0.1\nport={port}\ndbname={}\nuser=pgprompt_pw_test\n", db.name)).unwrap();
    let envs = [("PGSERVICE", "prompts"), ("PGSERVICEFILE", services.to_str().unwrap()), ("PGPASSFILE", pgpass.to_str().unwrap())];
    let out = run(&envs, &["status"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("pgprompt  "), "{:?}", status(&out));
    let (code, err) = status(&run(&[("PGSERVICE", "missing"), ("PGSERVICEFILE", services.to_str().unwrap())], &["status"]));
    assert_eq!(code, Some(1));
    assert!(err.contains("definition of service \"missing\" not found"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// TLS as libpq's sslmode means it, against the cluster (TLS on, with a
/// certificate for localhost signed by a CA .ci/lib.sh made) and its
/// replica (TLS off).
#[test]
fn tls_is_used_and_verified_as_sslmode_says() {
    let db = TestDb::new();
    let port: String = one(&mut db.connect(), "SELECT current_setting('port')");
    // make test names the cluster's CA when its server was built with TLS;
    // on one built without (the PostgreSQL 18 wheel), what can be checked
    // is that TLS is refused when required and skipped when preferred.
    let Ok(ca) = std::env::var("PGPROMPT_TLS_ROOT_CERT") else {
        let ssl: String = one(&mut db.connect(), "SELECT current_setting('ssl')");
        assert_eq!(ssl, "off", "PGPROMPT_TLS_ROOT_CERT names the cluster's CA (make test sets it when the server has TLS)");
        let url = format!("postgresql://postgres@127.0.0.1:{port}/{}", db.name);
        let out = pgprompt(&["--url", &format!("{url}?sslmode=require"), "status"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("port {port} failed: server does not support SSL, but SSL was required")), "{err}");
        assert!(pgprompt(&["--url", &format!("{url}?sslmode=prefer"), "status"]).status.success());
        return;
    };
    let url = |host: &str, params: &str| format!("postgresql://postgres@{host}:{port}/{}?{params}", db.name);
    let ssl_used = |u: &str| -> String {
        let out = pgprompt(&["--url", u, "status"]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if out.status.success() { "ok".into() } else { err }
    };
    assert_eq!(ssl_used(&url("127.0.0.1", "sslmode=require")), "ok");
    assert_eq!(ssl_used(&url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"))), "ok");
    assert_eq!(ssl_used(&url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"))), "ok");
    // The certificate is for localhost, not 127.0.0.1.
    let err = ssl_used(&url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}")));
    assert!(err.contains("connection to server at \"127.0.0.1\"") && err.contains("not valid for name"), "{err}");
    // No root certificate to verify with.
    let err = ssl_used(&url("127.0.0.1", "sslmode=verify-ca&sslrootcert=/nonexistent/root.crt"));
    assert!(err.contains("could not read root certificate file \"/nonexistent/root.crt\""), "{err}");
    assert!(ssl_used(&url("127.0.0.1", "sslmode=sometimes")).contains("invalid sslmode value: \"sometimes\""));
    // A role the server admits by client certificate only (pg_hba `cert`;
    // client.crt, signed by the same CA, for CN=pgprompt_cert_test).
    let dir = std::path::Path::new(&ca).parent().unwrap();
    let (cert, key) = (dir.join("client.crt"), dir.join("client.key"));
    db.connect()
        .batch_execute("DO $$ BEGIN CREATE ROLE pgprompt_cert_test LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        .unwrap();
    let as_cert = |params: &str| format!("postgresql://pgprompt_cert_test@localhost:{port}/{}?sslmode=verify-full&sslrootcert={ca}{params}", db.name);
    let with_cert = as_cert(&format!("&sslcert={}&sslkey={}", cert.display(), key.display()));
    assert_eq!(ssl_used(&with_cert), "ok", "a client certificate the server accepts");
    // None to send (and none in ~/.postgresql): the server says why not.
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .args(["--url", &as_cert(""), "status"])
        .env_remove("DATABASE_URL")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("connection requires a valid client certificate"), "no certificate sent: {err}");
    let err = ssl_used(&as_cert("&sslcert=/nonexistent/client.crt&sslkey=/nonexistent/client.key"));
    assert!(err.contains("could not read client certificate file \"/nonexistent/client.crt\""), "{err}");
    // From the environment, as libpq reads them.
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .args(["--url", &as_cert(""), "status"])
        .env_remove("DATABASE_URL")
        .env("PGSSLCERT", &cert)
        .env("PGSSLKEY", &key)
        .output()
        .unwrap();
    assert!(out.status.success(), "PGSSLCERT and PGSSLKEY: {}", String::from_utf8_lossy(&out.stderr));
    // A server without TLS: required is refused, preferred goes on without.
    if let Ok(replica) = std::env::var("PGPROMPT_REPLICA_URL") {
        let replica_port = replica.rsplit(':').next().and_then(|p| p.split('/').next()).unwrap().to_string();
        let on_replica = |params: &str| ssl_used(&format!("postgresql://postgres@127.0.0.1:{replica_port}/postgres?{params}"));
        let err = on_replica("sslmode=require");
        assert!(err.contains(&format!("port {replica_port} failed: server does not support SSL, but SSL was required")), "{err}");
        let out = pgprompt(&["--url", &format!("postgresql://postgres@127.0.0.1:{replica_port}/postgres?sslmode=prefer"), "status"]);
        assert!(out.status.success());
    }
}

#[test]
fn unix_socket_and_tcp_urls_both_work() {
    let db = TestDb::new();
    let cfg = pgprompt_tests::config(&db.name);
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres").to_string();
    let socket_dir = std::env::var("PGHOST").ok().filter(|h| h.starts_with('/')).unwrap_or_else(|| "/tmp".into());
    for url in [
        format!("postgresql://{user}@/{}?host={socket_dir}&port={port}", db.name),
        format!("postgresql://{user}@127.0.0.1:{port}/{}", db.name),
    ] {
        let out = pgprompt(&["--url", &url, "status"]);
        assert!(out.status.success(), "{url}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text(&out).contains(&format!("pgprompt  {}", env!("CARGO_PKG_VERSION"))), "{url}");
    }
    // And from the libpq environment.
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .arg("status")
        .env_remove("DATABASE_URL")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", &user)
        .env("PGDATABASE", &db.name)
        .output()
        .unwrap();
    assert!(text(&out).contains(&format!("pgprompt  {}", env!("CARGO_PKG_VERSION"))), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(pgprompt(&["no-such-command"]).status.code(), Some(2));
    // --json on a command that writes: refused, not ignored (nothing is done).
    for args in [vec!["--json", "template", "activate", "t", "2"], vec!["template", "delete", "t", "--yes", "--json"], vec!["--json", "status"]] {
        let out = pgprompt(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--json is for the commands that read"), "{args:?}");
    }
    let db = TestDb::new();
    let err = fails(&db, &["template", "render", "tutor", "--var", "novalue"], 2);
    assert!(err.contains("expected key=value"), "{err}");
    fails(&db, &["experiment", "create", "e", "--template", "t", "--variant", "a=1"], 2);
    let help = text(&pgprompt(&["--help"]));
    assert!(help.contains("Examples:") && help.contains("pgprompt template render"), "{help}");
}

#[test]
fn templates_from_the_command_line() {
    let db = TestDb::new();
    let out = with_stdin(&["--url", &db.url(), "template", "new", "tutor", "--config", r#"{"model": "gpt-4o"}"#, "--description", "Explains"], "Explain {{ topic }} for grade {{ grade }}.\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text(&out), "saved version 1 of tutor\n");
    let file = std::env::temp_dir().join(format!("{}-v2.j2", db.name));
    std::fs::write(&file, "Explain {{ topic }} simply, for grade {{ grade }}.\nUse one example.\n").unwrap();
    assert_eq!(
        ok(&db, &["template", "new", "tutor", "--file", file.to_str().unwrap(), "--message", "simpler", "--config", "{}"]),
        "saved version 2 of tutor\n"
    );
    std::fs::remove_file(&file).ok();

    let list = ok(&db, &["template", "list"]);
    assert!(list.lines().nth(2).unwrap().starts_with("tutor  1        2"), "{list}");
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["template", "list", "--json"])).unwrap();
    assert_eq!((json[0]["name"].as_str(), json[0]["release"].as_i64(), json[0]["newest"].as_i64()), (Some("tutor"), Some(1), Some(2)));

    assert_eq!(ok(&db, &["template", "render", "tutor", "--var", "topic=gravity", "--var", "grade=8"]), "Explain gravity for grade 8.\n");
    let vars = std::env::temp_dir().join(format!("{}-vars.json", db.name));
    std::fs::write(&vars, r#"{"topic": "tides", "grade": 5}"#).unwrap();
    assert_eq!(ok(&db, &["template", "render", "tutor", "--vars-file", vars.to_str().unwrap(), "--var", "grade=6", "--version", "2"]),
               "Explain tides simply, for grade 6.\nUse one example.\n");
    std::fs::write(&vars, "not json").unwrap();
    assert!(fails(&db, &["template", "render", "tutor", "--vars-file", vars.to_str().unwrap()], 1).contains("not valid JSON"));
    std::fs::write(&vars, r#"{"topic": "a", "grade": 1, "topic": "b"}"#).unwrap();
    let err = fails(&db, &["template", "render", "tutor", "--vars-file", vars.to_str().unwrap()], 1);
    assert!(err.contains("vars repeat the key \"topic\""), "{err}");
    // Render options, and a vars file's key order kept.
    let out = with_stdin(
        &["--url", &db.url(), "template", "new", "walk", "--options", r#"{"trim_blocks": true, "undefined": "lenient"}"#],
        "{% for k, v in p|items %}\n{{ k }}={{ v }}{{ missing }};\n{% endfor %}",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&vars, r#"{"p": {"zeta": 1, "alpha": 2}}"#).unwrap();
    assert_eq!(ok(&db, &["template", "render", "walk", "--vars-file", vars.to_str().unwrap()]), "zeta=1;\nalpha=2;\n\n");
    let show = ok(&db, &["template", "show", "walk"]);
    assert!(show.contains(r#"options         {"undefined": "lenient", "trim_blocks": true, "lstrip_blocks": false, "keep_trailing_newline": false}"#), "{show}");
    let err = fails(&db, &["template", "new", "walk", "--file", "/dev/null", "--options", r#"{"trim": true}"#], 1);
    assert!(err.contains("unknown render option \"trim\"") && err.contains("SQLSTATE 22023"), "{err}");
    // A version with an input schema (the options inherited): vars that do
    // not match are refused, naming the path.
    let out = with_stdin(
        &["--url", &db.url(), "template", "new", "walk", "--input-schema", r#"{"required": ["p"], "properties": {"p": {"type": "object"}}}"#],
        "{% for k, v in p|items %}{{ k }}{% endfor %}",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = fails(&db, &["template", "render", "walk", "--version", "2", "--var", "p=3"], 1);
    assert!(err.contains("vars do not match the input schema at /p") && err.contains("SQLSTATE 22023"), "{err}");
    assert_eq!(ok(&db, &["template", "render", "walk", "--version", "2", "--vars-file", vars.to_str().unwrap()]), "zetaalpha\n");
    let diff = ok(&db, &["template", "diff", "walk", "1", "2"]);
    assert!(diff.contains("--- walk v1 input_schema\n+++ walk v2 input_schema\n") && diff.contains("+  \"required\": ["), "{diff}");
    assert!(!diff.contains("options"), "the options were inherited: {diff}");
    std::fs::remove_file(&vars).ok();
    let err = fails(&db, &["template", "render", "tutor", "--var", "topic=x"], 1);
    assert!(err.contains("SQLSTATE 42P02"), "{err}");

    assert_eq!(ok(&db, &["template", "variables", "tutor"]), "variable\n--------\ngrade\ntopic\n");
    assert_eq!(ok(&db, &["template", "activate", "tutor", "2"]), "version 2 of tutor is the release (production)\n");
    assert_eq!(ok(&db, &["template", "label", "tutor", "1", "staging"]), "staging of tutor is version 1\n");
    let diff = ok(&db, &["template", "diff", "tutor", "1", "2"]);
    assert_eq!(
        diff,
        "--- tutor v1\n+++ tutor v2\n@@ -1 +1,2 @@\n-Explain {{ topic }} for grade {{ grade }}.\n+Explain {{ topic }} simply, for grade {{ grade }}.\n+Use one example.\n\
         --- tutor v1 config\n+++ tutor v2 config\n@@ -1,3 +1 @@\n-{\n-  \"model\": \"gpt-4o\"\n-}\n+{}\n",
        "version 2 was saved with an empty configuration"
    );
    // By label, and with the model configuration and render options that changed.
    let mut admin = db.connect();
    admin
        .batch_execute(
            r#"SELECT prompt_save('tutor', 'Explain {{ topic }} simply, for grade {{ grade }}.
Use one example.', '{"model": "gpt-4o", "temperature": 0.7}', options => '{"trim_blocks": true}')"#,
        )
        .unwrap();
    let diff = ok(&db, &["template", "diff", "tutor", "staging", "3"]);
    assert!(diff.starts_with("--- tutor staging (v1)\n+++ tutor v3\n"), "{diff}");
    assert!(diff.contains("--- tutor staging (v1) config\n+++ tutor v3 config\n"), "{diff}");
    assert!(diff.contains("+  \"temperature\": 0.7") && diff.contains("--- tutor staging (v1) options\n"), "{diff}");
    assert!(diff.contains("-  \"trim_blocks\": false,\n") && diff.contains("+  \"trim_blocks\": true,\n"), "{diff}");
    // As JSON: each part as it is, config and options as objects.
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["template", "diff", "tutor", "staging", "3", "--json"])).unwrap();
    assert_eq!(json["from"], serde_json::json!({"selector": "staging", "version": 1}));
    assert_eq!(json["to"], serde_json::json!({"selector": "3", "version": 3}));
    assert_eq!(json["changed"], serde_json::json!(["body", "config", "options"]));
    assert_eq!(json["config"]["to"], serde_json::json!({"model": "gpt-4o", "temperature": 0.7}));
    assert_eq!(json["options"]["to"]["trim_blocks"], serde_json::json!(true));
    assert_eq!(json["body"]["from"].as_str().map(str::trim_end), Some("Explain {{ topic }} for grade {{ grade }}."));
    assert!(json["body"]["unified"].as_str().unwrap().starts_with("--- tutor staging (v1)\n"), "{json}");
    assert_eq!(json["kind"], serde_json::json!({"from": "text", "to": "text"}));
    // The same version: no section for settings.
    let same = ok(&db, &["template", "diff", "tutor", "2", "2"]);
    assert!(!same.contains("config") && !same.contains("options"), "{same}");
    let err = fails(&db, &["template", "diff", "tutor", "nolabel", "2"], 1);
    assert!(err.contains("SQLSTATE 42704"), "{err}");
    let show = ok(&db, &["template", "show", "tutor"]);
    // --json: settings as objects, not text.
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["template", "show", "tutor", "--json"])).unwrap();
    assert!(json["template"]["config"].is_object() && json["template"]["options"]["trim_blocks"].is_boolean(), "{json}");
    assert!(json["history"].as_array().is_some_and(|h| h.len() == 3), "{json}");
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["guardrail", "show", "pii_detection_basic", "--json"])).unwrap();
    assert!(json[0]["config"].is_object(), "{json}");
    assert!(show.contains("version         2") && show.contains("release         true") && show.contains("description     Explains"), "{show}");
    assert!(show.contains("1        false    staging") && show.contains("simpler"), "{show}");
    assert!(show.contains("2        true     production"), "the release is production: {show}");
    let diff = ok(&db, &["template", "diff", "tutor", "staging", "production"]);
    assert!(diff.starts_with("--- tutor staging (v1)\n+++ tutor production (v2)\n"), "{diff}");
    assert_eq!(ok(&db, &["template", "rollback", "tutor"]), "version 1 of tutor is the release (production) again\n");
    // The versions here were saved by the test's superuser: approving one's
    // own version is refused, whoever one is.
    let err = fails(&db, &["template", "approve", "tutor", "2", "--comment", "fine"], 1);
    assert!(err.contains("its author cannot approve it") && err.contains("SQLSTATE 42501"), "{err}");

    // One version or label shown; the audit trail; unlabel; delete.
    let staging = ok(&db, &["template", "show", "tutor", "--label", "staging"]);
    assert!(staging.contains("version         1") && staging.contains("labels          production, staging"), "{staging}");
    let v2 = ok(&db, &["template", "show", "tutor", "--version", "2"]);
    assert!(v2.contains("version         2") && v2.contains("release         false"), "{v2}");
    let history = ok(&db, &["template", "history", "tutor"]);
    assert!(history.contains("rollback") && history.contains("label_set") && history.contains("tutor@staging"), "{history}");
    assert_eq!(ok(&db, &["template", "unlabel", "tutor", "staging"]), "removed label staging of tutor\n");
    assert!(fails(&db, &["template", "unlabel", "tutor", "staging"], 1).contains("has no label"));
    assert!(fails(&db, &["template", "unlabel", "tutor", "production"], 1).contains("SQLSTATE 55000"));
    let out = with_stdin(&["--url", &db.url(), "template", "new", "scratch"], "throwaway");
    assert!(out.status.success());
    assert!(fails(&db, &["template", "delete", "scratch"], 1).contains("pass --yes"));
    assert_eq!(ok(&db, &["template", "delete", "scratch", "--yes"]), "deleted template scratch\n");
    assert!(ok(&db, &["template", "history", "scratch"]).contains("delete"), "the trail outlives the template");
    assert!(fails(&db, &["template", "history", "never"], 1).contains("never did"));

    let err = fails(&db, &["template", "show", "nope"], 1);
    assert!(err.contains("template \"nope\" does not exist") && err.contains("SQLSTATE 42704"), "{err}");
    fails(&db, &["template", "activate", "nope", "1"], 1);

    // Test cases from the command line.
    assert_eq!(
        ok(&db, &["template", "case-save", "tutor", "short", "--assertions", r#"[{"max_length": 500}]"#, "--vars", r#"{"topic": "x", "grade": 1}"#]),
        "saved test case short of tutor\n"
    );
    assert!(ok(&db, &["template", "cases", "tutor"]).contains("[{\"max_length\": 500}]"));
    let err = fails(&db, &["template", "case-save", "tutor", "bad", "--assertions", r#"[{"sounds_good": true}]"#], 1);
    assert!(err.contains("SQLSTATE 22023"), "{err}");
    assert_eq!(ok(&db, &["template", "case-delete", "tutor", "short"]), "deleted test case short of tutor\n");
    assert!(fails(&db, &["template", "case-delete", "tutor", "short"], 1).contains("has no test case"));

    // Test cases: failing ones exit 1 and are listed.
    let mut c = db.connect();
    c.batch_execute(r#"SELECT prompt_test_case_save('tutor', 'short', '[{"max_length": 40}]', '{"topic": "x", "grade": 1}')"#).unwrap();
    let out = pgprompt(&["--url", &db.url(), "template", "test", "tutor", "--version", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("short  false   max_length"), "{}", text(&out));
    assert!(ok(&db, &["template", "test", "tutor", "--version", "1"]).contains("short  true"));
}

#[test]
fn sql_metacharacters_are_stored_and_shown_verbatim() {
    let db = TestDb::new();
    let nasty_body = "Robert'); DROP TABLE pgprompt.prompt_templates; -- $1 $$ \\ \"q\" {{ x }}";
    let out = with_stdin(&["--url", &db.url(), "template", "new", "o_brien", "--description", "it's \"$$\"; DROP"], nasty_body);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(ok(&db, &["template", "render", "o_brien", "--var", "x='; SELECT 1; --"]),
               format!("{}\n", nasty_body.replace("{{ x }}", "'; SELECT 1; --")));
    let mut c = db.connect();
    assert_eq!(one::<String>(&mut c, "SELECT body FROM prompt_versions"), nasty_body);
    assert_eq!(one::<String>(&mut c, "SELECT description FROM prompt_templates"), "it's \"$$\"; DROP");
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["template", "list", "--json"])).unwrap();
    assert_eq!(json[0]["description"], "it's \"$$\"; DROP");
    ok(&db, &["guardrail", "add", "quote_watch", "--kind", "keywords", "--config", r#"{"keywords": ["o'brien; --"]}"#]);
    let found = ok(&db, &["guardrail", "check", "--json", "ask o'brien; -- now"]);
    assert!(found.contains(r#""found": "o'brien; --""#), "{found}");
}

#[test]
fn guardrails_experiments_prices_and_stats() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        r#"SELECT prompt_save('tutor', 'Explain {{ topic }}', '{"model": "gpt-4o"}');
           SELECT prompt_save('tutor', 'Explain {{ topic }} simply', '{"model": "gpt-4o"}');"#,
    )
    .unwrap();
    // Guardrails.
    assert!(ok(&db, &["guardrail", "list"]).contains("pii_detection_basic"));
    ok(&db, &["guardrail", "add", "order_ids", "--kind", "regex", "--action", "redact", "--config", r#"{"patterns": ["ORD-[0-9]{6}"]}"#]);
    assert_eq!(ok(&db, &["guardrail", "disable", "order_ids"]), "disabled guardrail order_ids\n");
    assert!(ok(&db, &["guardrail", "show", "order_ids"]).contains("false"));
    ok(&db, &["guardrail", "enable", "order_ids"]);
    ok(&db, &["guardrail", "update", "order_ids", "--severity", "high"]);
    assert!(ok(&db, &["guardrail", "show", "order_ids", "--json"]).contains(r#""severity": "high""#));
    let found = with_stdin(&["--url", &db.url(), "guardrail", "check"], "order ORD-123456 for jane@example.com");
    assert_eq!(found.status.code(), Some(1), "a block guardrail fired: exit 1");
    let found = text(&found);
    assert!(found.contains("EMAIL_ADDRESS") && found.contains("jane@example.com") && found.contains("ORD-123456"), "{found}");
    let err = fails(&db, &["guardrail", "add", "bad", "--kind", "regex", "--config", r#"{"patterns": ["(unclosed"]}"#], 1);
    assert!(err.contains("SQLSTATE 22023"), "{err}");
    assert!(fails(&db, &["guardrail", "enable", "nope"], 1).contains("does not exist"));

    // Experiments.
    assert_eq!(
        ok(&db, &["experiment", "create", "tone", "--template", "tutor", "--variant", "control=1:50", "--variant", "simple=2:50", "--min-sample-size", "10"]),
        "created experiment tone (id 1, draft)\n"
    );
    ok(&db, &["experiment", "start", "tone"]);
    c.batch_execute(
        "SELECT prompt_log_execution('tutor', input_tokens => 100, success => i % 5 <> 0, experiment => 'tone', variant => 'control') FROM generate_series(1, 100) i;
         SELECT prompt_log_execution('tutor', input_tokens => 100, success => true, experiment => 'tone', variant => 'simple') FROM generate_series(1, 100) i;",
    )
    .unwrap();
    let results = ok(&db, &["experiment", "results", "tone"]);
    assert!(results.contains("seq_p_value") && results.contains("latency_ms") && results.contains("cost_usd"), "{results}");
    assert!(results.contains("decision (running on success_rate, sequential test, safe to check at any time): simple better than the control"), "{results}");
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["experiment", "results", "tone", "--json"])).unwrap();
    let row = json.as_array().unwrap().iter().find(|r| r["metric"] == "success_rate" && r["variant"] == "simple").unwrap();
    assert_eq!((row["role"].as_str(), row["verdict"].as_str()), (Some("primary"), Some("better")));
    // Numbers in full, intervals as [low, high].
    let (value, low, high, p): (f64, f64, f64, f64) = {
        let r = c
            .query_one(
                "SELECT value, ci_low, ci_high, seq_p_value FROM v_ab_test_metrics WHERE experiment = 'tone' AND metric = 'success_rate' AND variant = 'simple'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1), r.get(2), r.get(3))
    };
    assert_eq!(row["value"].as_f64(), Some(value));
    assert_eq!((row["ci"][0].as_f64(), row["ci"][1].as_f64(), row["ci"].as_array().map(Vec::len)), (Some(low), Some(high), Some(2)));
    assert_eq!(row["seq_p_value"].as_f64(), Some(p));
    // Metrics on the command line.
    let err = fails(&db, &["experiment", "create", "x", "--template", "tutor", "--variant", "a=1:50", "--variant", "b=2:50", "--metric", "revenue"], 1);
    assert!(err.contains("unknown metric \"revenue\"") && err.contains("22023"), "{err}");
    ok(&db, &["experiment", "create", "y", "--template", "tutor", "--variant", "a=1:50", "--variant", "b=2:50", "--metric", "latency_ms",
              "--guardrail", "cost_usd", "--guardrail", "error_rate"]);
    let (metric, guards): (String, Vec<String>) = {
        let r = c.query_one("SELECT primary_metric, guardrail_metrics FROM ab_test_experiments WHERE name = 'y'", &[]).unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((metric.as_str(), guards), ("latency_ms", vec!["cost_usd".to_string(), "error_rate".to_string()]));
    assert!(ok(&db, &["experiment", "list"]).contains("running"));
    assert_eq!(ok(&db, &["experiment", "promote", "tone"]), "experiment tone concluded: version 2 is the release (production)\n");
    assert!(fails(&db, &["experiment", "stop", "tone"], 1).contains("SQLSTATE 55000"));
    assert!(fails(&db, &["experiment", "results", "nope"], 1).contains("does not exist"));

    // Prices.
    ok(&db, &["price", "set", "house-model", "--input", "1.5", "--output", "2.5", "--from", "2024-01-01"]);
    assert!(ok(&db, &["price", "list", "--model", "house"]).contains("1.5"));
    let litellm = std::env::temp_dir().join(format!("{}-prices.json", db.name));
    std::fs::write(&litellm, r#"{"acme-1": {"input_cost_per_token": 0.000001, "output_cost_per_token": 0.000002}}"#).unwrap();
    assert_eq!(ok(&db, &["price", "import", litellm.to_str().unwrap()]), "1 model prices imported\n");
    std::fs::remove_file(&litellm).ok();
    assert_eq!(one::<String>(&mut c, "SELECT prompt_cost('acme-1', 1000000, 1000000)::text"), "3");

    // Stats.
    let perf = ok(&db, &["stats", "performance", "--json"]);
    let perf: serde_json::Value = serde_json::from_str(&perf).unwrap();
    assert_eq!(perf.as_array().unwrap().iter().map(|r| r["executions"].as_i64().unwrap()).sum::<i64>(), 200);
    assert!(ok(&db, &["stats", "costs", "--days", "7"]).contains("tutor"));
    assert!(ok(&db, &["stats", "errors"]).contains("tutor"));
    // Alert rules from the command line.
    assert_eq!(
        ok(&db, &["stats", "rule-set", "slow_tutor", "--metric", "p95_latency_ms", "--threshold", "2000", "--window", "10 minutes", "--template", "tutor"]),
        "saved alert rule slow_tutor\n"
    );
    let rules = ok(&db, &["stats", "rules"]);
    assert!(rules.contains("slow_tutor") && rules.contains("00:10:00") && rules.contains("tutor"), "{rules}");
    assert_eq!(ok(&db, &["stats", "rule-enable", "slow_tutor", "--enabled", "false"]), "disabled alert rule slow_tutor\n");
    let err = fails(&db, &["stats", "rule-set", "odd", "--metric", "happiness", "--threshold", "1", "--window", "1 hour"], 1);
    assert!(err.contains("SQLSTATE 22023"), "{err}");
    assert_eq!(ok(&db, &["stats", "rule-delete", "slow_tutor"]), "deleted alert rule slow_tutor\n");
    assert!(fails(&db, &["stats", "rule-delete", "slow_tutor"], 1).contains("does not exist"));
    // 10% errors in the last 15 minutes: the error-rate alert (over 5%) fires, exit 1.
    let out = pgprompt(&["--url", &db.url(), "stats", "alerts"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("error_rate"), "{}", text(&out));
}

/// Every file under `dir`, path and bytes, sorted.
fn tree(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(tree(&p).into_iter().map(|(n, b)| (format!("{}/{n}", p.file_name().unwrap().to_str().unwrap()), b)));
        } else {
            out.push((p.file_name().unwrap().to_str().unwrap().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn export_then_import_reproduces_every_template_byte_for_byte() {
    let source = TestDb::new();
    let mut c = source.connect();
    pgprompt_tests::load_examples(&mut c);
    c.batch_execute(
        r#"SELECT prompt_save('nested/name:x', 'Hi {{ who }}', '{"model": "gpt-4o"}', description => 'line one
line two', category => 'demo');
           SELECT prompt_save('nlu_topic_extraction', 'v2 {{ student_query }}', message => E'shorter\nand kinder');
           SELECT prompt_save('nlu_topic_extraction', 'v3 {{ student_query }}', parent => 1, input_schema => '{"required": ["student_query"]}');
           SELECT prompt_activate('nlu_topic_extraction', 2);
           SELECT prompt_label('nlu_topic_extraction', 3, 'staging');
           SELECT prompt_test_case_save('nlu_topic_extraction', 'short', '[{"max_length": 500}]', '{"student_query": "q"}', 'stays short');
           SELECT prompt_save('chat_demo', '[{"role": "system", "content": "Be {{ tone }}"}]', kind => 'chat');
           SELECT prompt_save('hf_chat', E'{% for m in messages %}\n{{ m.content }}\n{% endfor %}',
                              options => '{"trim_blocks": true, "lstrip_blocks": true, "undefined": "lenient"}');"#,
    )
    .unwrap();
    // An approval, by another role than the author.
    let mut reviewer = source.login("admin");
    reviewer.batch_execute("SELECT prompt_approve('nlu_topic_extraction', 2, 'fine')").unwrap();

    let base = std::env::temp_dir().join(format!("{}-export", source.name));
    let (first, second) = (base.join("first"), base.join("second"));
    let out = ok(&source, &["export", first.to_str().unwrap()]);
    assert!(out.ends_with(&format!("templates written to {}\n", first.display())), "{out}");
    let nlu = std::fs::read_to_string(first.join("nlu_topic_extraction/template.json")).unwrap();
    assert!(nlu.contains("\"release\": 2") && nlu.contains("\"staging\": 3") && nlu.contains("\"name\": \"short\""), "{nlu}");
    let v2 = std::fs::read_to_string(first.join("nlu_topic_extraction/v2.prompt")).unwrap();
    assert!(v2.contains("\nmessage: \"shorter\\nand kinder\"\n") && v2.contains("\"comment\":\"fine\""), "{v2}");
    assert!(first.join("nested__name:x/v1.prompt").exists());

    // Into an empty database: a dry run first, which writes nothing.
    let target = TestDb::new();
    let mut r = target.connect();
    let before = pgprompt_tests::snapshot(&mut r);
    let dry = ok(&target, &["import", "--dry-run", first.to_str().unwrap()]);
    assert!(dry.contains("nlu_topic_extraction: new version 3") && dry.contains("nlu_topic_extraction: release 1 -> 2"), "{dry}");
    assert!(dry.contains("nlu_topic_extraction: approval of version 2") && dry.ends_with("nothing written\n"), "{dry}");
    assert_eq!(pgprompt_tests::snapshot(&mut r), before);
    ok(&target, &["import", first.to_str().unwrap()]);
    // Exported again: the same files, byte for byte.
    ok(&target, &["export", second.to_str().unwrap()]);
    assert_eq!(tree(&second), tree(&first));
    // The imported approval is history, not an approval here.
    assert_eq!(one::<serde_json::Value>(&mut r, "SELECT approvals FROM prompt_get('nlu_topic_extraction', 2)"), serde_json::json!([]));
    assert_eq!(one::<String>(&mut r, r#"SELECT prompt_render('nlu_topic_extraction', label => 'staging', vars => '{"student_query": "q"}')"#), "v3 q");

    // Idempotent: nothing changes the second time, not even the audit log.
    let audit: i64 = one(&mut r, "SELECT count(*) FROM prompt_audit_logs");
    let n: i64 = one(&mut c, "SELECT count(*) FROM prompt_templates");
    assert_eq!(ok(&target, &["import", first.to_str().unwrap()]), format!("{n} templates: 0 changes\n"));
    assert_eq!(one::<i64>(&mut r, "SELECT count(*) FROM prompt_audit_logs"), audit);

    // A new version in the source: imported as the next version; --no-activate keeps the release.
    c.batch_execute("SELECT prompt_save('nested/name:x', 'Hello {{ who }}'); SELECT prompt_activate('nested/name:x', 2);").unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    ok(&source, &["export", first.to_str().unwrap()]);
    let out = ok(&target, &["import", "--no-activate", first.to_str().unwrap()]);
    assert_eq!(out, format!("nested/name:x: new version 2\n{n} templates: 1 changes\n"));
    assert_eq!(one::<i32>(&mut r, "SELECT active_version FROM prompt_templates WHERE name = 'nested/name:x'"), 1);

    // A history that forked is refused, naming what differs; nothing is written.
    let forked = TestDb::new();
    forked.connect().batch_execute("SELECT prompt_save('hf_chat', 'something else')").unwrap();
    let mut f = forked.connect();
    let before = pgprompt_tests::snapshot(&mut f);
    let err = fails(&forked, &["import", first.to_str().unwrap()], 1);
    assert!(err.contains("hf_chat: version 1 of template \"hf_chat\" differs from the imported one (body, options)") && err.contains("SQLSTATE 55000"), "{err}");
    assert_eq!(pgprompt_tests::snapshot(&mut f), before);

    // Two directories holding one template, or a malformed file: refused before anything is written.
    std::fs::create_dir_all(first.join("copy")).unwrap();
    std::fs::copy(first.join("hf_chat/template.json"), first.join("copy/template.json")).unwrap();
    let err = fails(&forked, &["import", first.to_str().unwrap()], 1);
    assert!(err.contains("copy") && err.contains("hf_chat") && err.contains("both hold template \"hf_chat\""), "{err}");
    std::fs::remove_dir_all(first.join("copy")).unwrap();
    std::fs::write(first.join("hf_chat/v1.prompt"), "---\nversion: 1\nconfig: {oops}\n---\nbody").unwrap();
    let err = fails(&forked, &["import", first.to_str().unwrap()], 1);
    assert!(err.contains("v1.prompt: line 3: config is not valid JSON"), "{err}");
    assert_eq!(pgprompt_tests::snapshot(&mut f), before);
    std::fs::remove_dir_all(&base).ok();
}

#[test]
fn doctor_checks_the_installation() {
    let db = TestDb::new();
    let out = ok(&db, &["doctor"]);
    let extension = format!("ok    extension: pgprompt {}", env!("CARGO_PKG_VERSION"));
    for line in [extension.as_str(), "ok    tables: 14 of 14", "ok    views: 10 of 10", "ok    seed triggers: 3 of 3",
                 "ok    default guardrail: pii_detection_basic (critical, block)", "ok    default alert rules: 4 of 4", "ok    roles: 3 of 3"] {
        assert!(out.contains(line), "{line}\n{out}");
    }
    let mut c = db.connect();
    c.batch_execute(
        r#"UPDATE prompt_guardrails SET enabled = false WHERE name = 'toxic_content_filter';
           SELECT prompt_save('tutor', 'a long answer');
           SELECT prompt_test_case_save('tutor', 'tiny', '[{"max_length": 3}]');"#,
    )
    .unwrap();
    // Policy changed on purpose (audited): warnings, exit 0.
    let out = ok(&db, &["doctor"]);
    assert!(out.contains("WARN  default guardrail: toxic_content_filter (high, warn, disabled); the default is high, warn, enabled"), "{out}");
    assert!(out.contains("WARN  test cases: active version 1 of tutor fails: tiny (released with force)"), "{out}");
    assert!(!out.contains("FAIL"), "{out}");
    c.batch_execute("UPDATE prompt_alert_rules SET enabled = false WHERE name = (SELECT min(name) FROM prompt_alert_rules WHERE builtin)").unwrap();
    assert!(ok(&db, &["doctor"]).contains("WARN  default alert rules: 4 of 4, 3 enabled"));
    // A broken installation: a failure, exit 1, in text and in JSON.
    c.batch_execute("DROP TRIGGER trigger_enforce_single_active_template ON prompt_templates").unwrap();
    let url = db.url();
    let out = pgprompt(&["--url", &url, "doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let out = text(&out);
    assert!(out.contains("FAIL  seed triggers: 2 of 3; missing trigger_enforce_single_active_template"), "{out}");
    let out = pgprompt(&["--url", &url, "doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let checks: serde_json::Value = serde_json::from_str(&text(&out)).unwrap();
    let status = |check: &str| -> Vec<String> {
        checks.as_array().unwrap().iter().filter(|c| c["check"] == check).map(|c| c["status"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(status("seed triggers"), ["fail"]);
    assert_eq!(status("tables"), ["ok"]);
    assert_eq!(status("default alert rules"), ["warn"]);
    assert!(status("default guardrail").contains(&"warn".to_string()), "{checks}");
}

/// On a terminal (a pseudo-terminal made by script(1)): colour unless
/// NO_COLOR, tables cut to COLUMNS, output longer than LINES through PAGER.
/// Into a pipe: none of it.
#[test]
fn terminals_get_colour_fitted_tables_and_a_pager() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('t' || i, 'A template with a rather long description', description => repeat('long words ', 10))
           FROM generate_series(1, 5) i",
    )
    .unwrap();
    let url = db.url();
    let on_terminal = |env: &[(&str, &str)]| -> String {
        let command = format!("{} --url '{url}' template list", env!("CARGO_BIN_EXE_pgprompt"));
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &command, "/dev/null"]).env_remove("DATABASE_URL").env_remove("NO_COLOR").env_remove("PAGER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("script(1) runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    };
    let out = on_terminal(&[("COLUMNS", "60"), ("LINES", "100"), ("TERM", "xterm")]);
    assert!(out.contains("\x1b[1mname"), "a bold header: {out:?}");
    for line in out.lines().skip(1) {
        assert!(line.chars().count() <= 60, "{line:?} is wider than the terminal");
    }
    assert!(out.contains('…'), "the description is cut: {out}");
    let plain = on_terminal(&[("COLUMNS", "60"), ("LINES", "100"), ("NO_COLOR", "1"), ("TERM", "xterm")]);
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    let paged = on_terminal(&[("COLUMNS", "200"), ("LINES", "4"), ("PAGER", "sed 's/^/paged: /'"), ("TERM", "xterm")]);
    assert!(paged.lines().filter(|l| !l.is_empty()).all(|l| l.starts_with("paged: ")), "{paged}");
    assert!(paged.contains("t5"), "{paged}");
    // Short output is not paged.
    let short = on_terminal(&[("COLUMNS", "200"), ("LINES", "100"), ("PAGER", "sed 's/^/paged: /'"), ("TERM", "xterm")]);
    assert!(!short.contains("paged: "), "{short}");
    // A pipe: everything, uncut, uncoloured, whatever COLUMNS says.
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .args(["--url", &url, "template", "list"])
        .env("COLUMNS", "20")
        .env("LINES", "2")
        .env("PAGER", "false")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let piped = text(&out);
    assert!(!piped.contains('\x1b') && !piped.contains('…') && piped.contains("long words long words"), "{piped}");
}

#[test]
fn completions_know_the_database() {
    // The registration script, which calls pgprompt back at each <Tab>.
    let out = pgprompt(&["completions", "bash"]);
    assert!(out.status.success());
    let script = text(&out);
    assert!(script.contains("_CLAP_COMPLETE_INDEX") && script.contains("complete ") && script.contains("pgprompt"), "{script}");
    assert!(pgprompt(&["completions", "zsh"]).status.success());
    assert_eq!(pgprompt(&["completions", "tcsh"]).status.code(), Some(2));

    let db = TestDb::new();
    db.connect()
        .batch_execute(
            "SELECT prompt_save('tutor', 'a'); SELECT prompt_save('tutor_v2', 'b'); SELECT prompt_save('summarise', 'c');
             SELECT prompt_experiment_create('tone', 'tutor', '[{\"name\": \"a\", \"version\": 1, \"weight\": 100}]')",
        )
        .unwrap();
    let url = db.url();
    // What bash runs for `pgprompt --url URL <words>` with the cursor on the last word.
    let complete = |words: &[&str], env_url: Option<&str>| -> Vec<String> {
        let mut args = vec!["--", "pgprompt"];
        args.extend_from_slice(words);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pgprompt"));
        cmd.args(&args)
            .env("COMPLETE", "bash")
            .env("_CLAP_COMPLETE_INDEX", words.len().to_string())
            .env("_CLAP_COMPLETE_COMP_TYPE", "9")
            .env("_CLAP_IFS", "\n")
            .env_remove("DATABASE_URL");
        if let Some(u) = env_url {
            cmd.env("DATABASE_URL", u);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        text(&out).lines().map(str::to_string).filter(|l| !l.is_empty()).collect()
    };
    assert_eq!(complete(&["--url", &url, "template", "show", "tu"], None), ["tutor", "tutor_v2"]);
    assert_eq!(complete(&["template", "render", "s"], Some(&url)), ["summarise"], "from DATABASE_URL");
    let names: Vec<String> = complete(&["--url", &url, "experiment", "results", ""], None).into_iter().filter(|c| !c.starts_with('-')).collect();
    assert_eq!(names, ["tone"], "with the options, which an empty word completes too");
    assert!(complete(&["--url", &url, "guardrail", "show", "pii"], None).contains(&"pii_detection_basic".to_string()));
    // Subcommands complete without a database; an unreachable one gives no names, quickly.
    assert!(complete(&["templ"], None).contains(&"template".to_string()));
    let started = std::time::Instant::now();
    assert!(complete(&["--url", "postgresql://x@127.0.0.1:1/none", "template", "show", "tu"], None).is_empty());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn scores_and_traces_from_the_command_line() {
    let db = TestDb::new();
    let mut c = db.connect();
    c.batch_execute(r#"SELECT prompt_save('route', 'r', '{"model": "gpt-4o-mini"}'); SELECT prompt_save('answer', 'a', '{"model": "gpt-4o"}')"#)
        .unwrap();
    let out = ok(&db, &["score", "define", "helpfulness", "--kind", "numeric", "--min", "1", "--max", "5", "--description", "Rated by the user"]);
    assert!(out.contains("score \"helpfulness\" defined"), "{out}");
    ok(&db, &["score", "define", "outcome", "--kind", "categorical", "--category", "resolved", "--category", "escalated"]);
    let stderr = fails(&db, &["score", "define", "bad", "--kind", "boolean", "--min", "-1"], 1);
    assert!(stderr.contains("only numeric scores take min_value") && stderr.contains("22023"), "{stderr}");
    let root: i64 = one(&mut c, "SELECT prompt_log_execution('route', input_tokens => 10, latency_ms => 50, trace_id => 'turn-9', session_id => 's1')");
    c.batch_execute(&format!(
        "SELECT prompt_score({root}, 'helpfulness', 4);
         SELECT prompt_log_execution('answer', input_tokens => 100, output_tokens => 20, latency_ms => 900, parent_id => {root})"
    ))
    .unwrap();
    let list = ok(&db, &["score", "list"]);
    let line = list.lines().find(|l| l.starts_with("helpfulness")).unwrap_or_else(|| panic!("{list}"));
    assert!(line.contains("numeric") && line.contains("1..5") && line.contains(" 1 ") && line.contains("Rated by the user"), "{list}");
    assert!(list.contains("resolved, escalated"), "{list}");

    let shown = ok(&db, &["trace", "show", "turn-9"]);
    let lines: Vec<&str> = shown.lines().collect();
    let route = lines.iter().position(|l| l.contains(" route ")).unwrap_or_else(|| panic!("{shown}"));
    let answer = lines.iter().position(|l| l.contains("   answer ")).unwrap_or_else(|| panic!("the child is indented under its parent:\n{shown}"));
    assert!(route < answer, "{shown}");
    assert!(shown.contains("total: 2 calls, 110 input + 20 output tokens") && shown.contains("950 ms waiting on models"), "{shown}");
    let json: serde_json::Value = serde_json::from_str(&ok(&db, &["--json", "trace", "show", "turn-9"])).unwrap();
    assert_eq!(json.as_array().map(Vec::len), Some(2));
    let stderr = fails(&db, &["trace", "show", "nope"], 1);
    assert!(stderr.contains("no logged call has trace_id \"nope\""), "{stderr}");
}
