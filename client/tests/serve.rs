//! `pgprompt serve` over HTTP against the running cluster: logging in as
//! PostgreSQL roles, sessions, CSRF, what each role sees and may do, the
//! database's errors in words, escaping, limits, and the REST API. Each
//! test starts its own server on a free port, on a database of its own,
//! with login roles of its own (members of pgprompt_web_login, which the
//! local cluster's pg_hba.conf makes authenticate by password).

use std::io::{Read, Write};
use std::process::Command;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{agent, reply, Reply, Roles, Server};
use pgprompt_tests::TestDb;
use serde_json::{json, Value};

mod common;

/// A browser-like client: its cookie and the page's CSRF token.
struct Browser {
    base: String,
    agent: ureq::Agent,
    cookie: Option<String>,
}

impl Browser {
    fn new(server: &Server) -> Browser {
        Browser { base: server.base.clone(), agent: agent(), cookie: None }
    }

    fn get(&self, path: &str) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("pgprompt_session={c}"));
        }
        reply(req.call())
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", format!("pgprompt_session={c}"));
        }
        reply(req.send_form(form.iter().copied()))
    }

    fn login(&mut self, role: &str, password: &str) -> Reply {
        let r = self.post("/login", &[("role", role), ("password", password)]);
        if r.status == 303 {
            let value = r.set_cookie.split(';').next().unwrap().strip_prefix("pgprompt_session=").unwrap();
            self.cookie = Some(value.to_string());
        }
        r
    }

    /// The CSRF token of the session (from any page's logout form).
    fn csrf(&self) -> String {
        let page = self.get("/home").body;
        let at = page.find("name=\"csrf\" value=\"").expect("a page with a form") + 19;
        page[at..at + page[at..].find('"').unwrap()].to_string()
    }

    /// POSTs a form with the session's CSRF token.
    fn act(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        let csrf = self.csrf();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(form);
        self.post(path, &all)
    }
}

/// A test database, its roles, a server on it and a browser logged in as
/// an administrator (whose name is the last element).
fn admin_site(args: &[&str]) -> (TestDb, Roles, Server, Browser, String) {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let server = Server::start(&db.url(), args);
    let mut b = Browser::new(&server);
    assert_eq!(b.login(&admin, &pw).status, 303);
    (db, roles, server, b, admin)
}

fn release(db: &TestDb, name: &str) -> i32 {
    db.connect().query_one("SELECT active_version FROM prompt_templates WHERE name = $1", &[&name]).unwrap().get(0)
}

fn versions(db: &TestDb, name: &str) -> i64 {
    db.connect()
        .query_one("SELECT count(*) FROM prompt_versions v JOIN prompt_templates t ON t.id = v.template_id WHERE t.name = $1", &[&name])
        .unwrap()
        .get(0)
}

#[test]
fn logging_in_checks_the_password_and_says_nothing_about_which_part_was_wrong() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let server = Server::start(&db.url(), &[]);
    let mut b = Browser::new(&server);
    // Not logged in: every page sends to the login page.
    assert_eq!(b.get("/templates").location, "/login");

    let started = Instant::now();
    let wrong = b.login(&admin, "not-the-password");
    assert!(started.elapsed() >= Duration::from_millis(900), "a failed login is answered after a delay");
    assert_eq!(wrong.status, 401);
    let unknown = b.login("no_such_role_anywhere", "whatever");
    assert_eq!(unknown.status, 401);
    let message = "Login failed: that role and password do not match.";
    assert!(wrong.body.contains(message) && unknown.body.contains(message));
    assert!(wrong.set_cookie.is_empty() && b.cookie.is_none());

    let ok = b.login(&admin, &pw);
    assert_eq!((ok.status, ok.location.as_str()), (303, "/"));
    assert!(ok.set_cookie.contains("HttpOnly") && ok.set_cookie.contains("SameSite=Strict"), "{}", ok.set_cookie);
    let page = b.get("/templates");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("data-role=\"{admin}\"")));

    // A forged or altered cookie is refused, and says so.
    let real = b.cookie.clone().unwrap();
    let (id, rest) = real.split_once('.').unwrap();
    // The id is random base64url: change its last character to one it
    // is not (always writing `x` left one id in 64 unaltered).
    let other = if id.ends_with('x') { 'y' } else { 'x' };
    b.cookie = Some(format!("{}{other}.{rest}", &id[..id.len() - 1]));
    assert_eq!(b.get("/templates").location, "/login?why=invalid");
    b.cookie = Some("made-up.9999999999.AAAA".into());
    assert_eq!(b.get("/templates").location, "/login?why=invalid");
    // Logging out ends the session: the same cookie no longer works.
    b.cookie = Some(real.clone());
    let out = b.act("/logout", &[]);
    assert_eq!(out.location, "/login?why=out");
    assert_eq!(b.get("/templates").location, "/login?why=expired");
    assert!(b.get("/login?why=expired").body.contains("Your session expired"));
}

#[test]
fn repeated_failed_logins_are_refused_for_a_while() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let server = Server::start(&db.url(), &["--max-failed-logins", "3"]);
    let mut b = Browser::new(&server);
    for _ in 0..3 {
        assert_eq!(b.login(&admin, "wrong").status, 401);
    }
    // Even the right password waits now.
    let limited = b.login(&admin, &pw);
    assert_eq!(limited.status, 429);
    assert!(limited.body.contains("Too many failed logins"), "{}", limited.body);
}

#[test]
fn logins_sent_at_once_count_together_and_foreign_names_and_messages_are_refused() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let server = Server::start(&db.url(), &["--max-failed-logins", "3"]);
    // Six wrong passwords at once: three are tried, three wait.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let tries: Vec<_> = (0..6)
            .map(|_| {
                let (base, admin) = (server.base.clone(), admin.clone());
                scope.spawn(move || reply(agent().post(format!("{base}/login")).send_form([("role", admin.as_str()), ("password", "wrong")])).status)
            })
            .collect();
        tries.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3, "{statuses:?}");

    // A client trickling its headers is disconnected after the header
    // timeout, and the server goes on.
    let slow = Server::start(&db.url(), &["--header-timeout", "1"]);
    let addr = slow.base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let mut trickle = TcpStream::connect(&addr).unwrap();
    trickle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(trickle, "GET /login HTTP/1.1\r\nHost: {addr}\r\n").unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = trickle.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(5), "disconnected after {:?}", started.elapsed());
    assert_eq!(reply(agent().get(format!("{}/login", slow.base)).call()).status, 200);

    // A request naming another host (DNS rebinding) is refused.
    let foreign = reply(agent().get(format!("{}/login", server.base)).header("Host", "attacker.example:8420").call());
    assert_eq!(foreign.status, 421);

    // A message in a link made elsewhere is not shown; the server's own is.
    let other = Server::start(&db.url(), &[]);
    let mut b = Browser::new(&other);
    assert_eq!(b.login(&admin, &pw).status, 303);
    db.connect().batch_execute("SELECT prompt_save('greet', 'Hello')").unwrap();
    let page = b.get("/template?name=greet&done=Your+session+expired,+enter+your+password+at+evil.example&sig=AAAA");
    assert!(!page.body.contains("evil.example"), "{}", page.body);
    let labelled = b.act("/template/label", &[("name", "greet"), ("label", "staging"), ("version", "1")]);
    assert!(b.get(&labelled.location).body.contains("Label staging names version 1."));
}

#[test]
fn roles_the_server_trusts_and_roles_without_privileges_get_an_explanation() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    // Not in pgprompt_web_login: the local cluster trusts it over TCP, so
    // any password would do; the server refuses to log it in.
    let (trusted, pw) = roles.add(&db, "trusted", Some("pgprompt_admin"), false);
    let (nobody, nobody_pw) = roles.add(&db, "nobody", None, true);
    let server = Server::start(&db.url(), &[]);
    let mut b = Browser::new(&server);
    let r = b.login(&trusted, &pw);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("without checking its password"), "{}", r.body);

    assert_eq!(b.login(&nobody, &nobody_pw).status, 303);
    assert_eq!(b.get("/templates").location, "/home");
    let home = b.get("/home");
    assert!(home.body.contains("id=\"no-privileges\"") && home.body.contains("GRANT pgprompt_reader TO"), "{}", home.body);
    assert!(!home.body.contains("href=\"/templates\""));
}

#[test]
fn an_administrator_edits_previews_releases_rolls_back_and_a_second_role_approves() {
    let (db, mut roles, server, b, admin) = admin_site(&[]);
    let (releaser, pw2) = roles.add(&db, "releaser", Some("pgprompt_releaser"), true);
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('greet', 'Hello {{ name }}!', message => 'first');
         SELECT prompt_test_case_save('greet', 'says hello', '[{\"contains\": \"Hello\"}]', '{\"name\": \"Ada\"}');",
    )
    .unwrap();

    // The editor, its live preview (rendered by the extension, nothing kept).
    let editor = b.get("/template/edit?name=greet");
    assert!(editor.body.contains("Hello {{ name }}!"), "{}", editor.body);
    let csrf = b.csrf();
    let preview_as = |name: &str, kind: &str, body: &str, vars: Value| -> Value {
        let r = agent()
            .post(format!("{}/template/preview", server.base))
            .header("Cookie", format!("pgprompt_session={}", b.cookie.as_ref().unwrap()))
            .header("X-CSRF-Token", &csrf)
            .send_json(json!({"name": name, "body": body, "kind": kind, "vars": vars}));
        reply(r).json()
    };
    let preview = |body: &str, vars: Value| preview_as("greet", "text", body, vars);
    let p = preview("Hi {{ name }} from {{ place }}", json!({"name": "Ada"}));
    assert_eq!(p["variables"], json!(["name", "place"]));
    assert_eq!(p["error"]["sqlstate"], "42P02", "{p}");
    assert!(p["error"]["message"].as_str().unwrap().contains("missing variable \"place\""));
    let p = preview("Hi {{ name }} from {{ place }}", json!({"name": "Ada", "place": "<Paris>"}));
    assert_eq!(p["output"], "Hi Ada from <Paris>");
    let p = preview("Hi {{ name ", json!({}));
    assert_eq!(p["error"]["sqlstate"], "42601");
    assert!(p["error"]["message"].as_str().unwrap().contains("line 1, column"), "{p}");
    // A chat body previews as its messages, a new template's too.
    let chat = r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "{{ q }}"}]"#;
    let p = preview_as("new_chat", "chat", chat, json!({"q": "Why <b>?"}));
    assert_eq!(p["output"], json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why <b>?"}]), "{p}");
    assert_eq!(versions(&db, "greet"), 1, "previews keep nothing");
    assert_eq!(versions(&db, "new_chat"), 0);

    // Save a version that fails the release gate.
    let saved = b.act("/template/save", &[("name", "greet"), ("body", "Hi {{ name }}."), ("kind", "text"), ("config", ""), ("message", "shorter")]);
    assert_eq!(saved.status, 303, "{}", saved.body);
    assert!(saved.location.starts_with("/template?name=greet&done=Saved+version+2"), "{}", saved.location);
    let gate = b.act("/template/activate", &[("name", "greet"), ("version", "2")]);
    assert_eq!(gate.status, 409);
    assert!(gate.body.contains("The release gate refused") && gate.body.contains("says hello") && gate.body.contains("PG002"), "{}", gate.body);
    assert_eq!(release(&db, "greet"), 1);

    // A version that passes: activate, then roll back.
    b.act("/template/save", &[("name", "greet"), ("body", "Hello, {{ name }}."), ("message", "comma")]);
    let act = b.act("/template/activate", &[("name", "greet"), ("version", "3")]);
    assert_eq!(act.status, 303);
    assert_eq!(release(&db, "greet"), 3);
    let page = b.get(&act.location);
    assert!(page.body.contains("Version 3 is the release."));
    let back = b.act("/template/rollback", &[("name", "greet")]);
    assert_eq!(back.status, 303);
    assert_eq!(release(&db, "greet"), 1);

    // Labels, and the diff between two of them.
    assert_eq!(b.act("/template/label", &[("name", "greet"), ("label", "staging"), ("version", "3")]).status, 303);
    let diff = b.get("/template/diff?name=greet&from=production&to=staging");
    assert_eq!(diff.status, 200);
    assert!(diff.body.contains("<span class=\"del\">-Hello {{ name }}!</span>") && diff.body.contains("<span class=\"add\">+Hello, {{ name }}.</span>"), "{}", diff.body);

    // Approving one's own version is the database's 42501, in words.
    let own = b.act("/template/approve", &[("name", "greet"), ("version", "3")]);
    assert_eq!(own.status, 403);
    assert!(own.body.contains("Your role is not allowed to do this.") && own.body.contains("42501"), "{}", own.body);
    // A second role approves; the page lists it.
    let mut b2 = Browser::new(&server);
    assert_eq!(b2.login(&releaser, &pw2).status, 303);
    assert_eq!(b2.act("/template/approve", &[("name", "greet"), ("version", "3"), ("comment", "looks right")]).status, 303);
    let page = b.get("/template?name=greet");
    assert!(page.body.contains(&format!("✓ {releaser}: looks right")), "{}", page.body);
    let actor: String = c.query_one("SELECT actor FROM prompt_audit_logs WHERE action = 'activate' ORDER BY id DESC LIMIT 1", &[]).unwrap().get(0);
    assert_eq!(actor, admin, "the audit log names the role that clicked");
}

#[test]
fn a_read_only_role_sees_no_edit_controls_and_cannot_change_anything() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (app, pw) = roles.add(&db, "app", Some("pgprompt_app"), true);
    db.connect().batch_execute("SELECT prompt_save('greet', 'Hello'); SELECT prompt_save('greet', 'Hi');").unwrap();
    let server = Server::start(&db.url(), &[]);
    let mut b = Browser::new(&server);
    assert_eq!(b.login(&app, &pw).status, 303);
    let page = b.get("/template?name=greet");
    assert_eq!(page.status, 200);
    for control in ["admin-actions", "activate-", "approve-", "id=\"delete\"", "id=\"edit\""] {
        assert!(!page.body.contains(control), "{control} shown to a read-only role");
    }
    assert!(!b.get("/templates").body.contains("new-template"));
    // Posting anyway: the database refuses, in words.
    let r = b.act("/template/activate", &[("name", "greet"), ("version", "2")]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Your role is not allowed to do this.") && r.body.contains("permission denied"), "{}", r.body);
    assert_eq!(release(&db, "greet"), 1);
}

#[test]
fn forms_without_the_csrf_token_or_from_another_site_change_nothing() {
    let (db, _roles, server, b, _admin) = admin_site(&[]);
    db.connect().batch_execute("SELECT prompt_save('greet', 'Hello'); SELECT prompt_save('greet', 'Hi');").unwrap();
    let missing = b.post("/template/activate", &[("name", "greet"), ("version", "2")]);
    assert_eq!(missing.status, 403);
    assert!(missing.body.contains("security token is missing"));
    let wrong = b.post("/template/activate", &[("csrf", "not-the-token"), ("name", "greet"), ("version", "2")]);
    assert_eq!(wrong.status, 403);
    let csrf = b.csrf();
    let foreign = reply(
        agent()
            .post(format!("{}/template/activate", server.base))
            .header("Cookie", format!("pgprompt_session={}", b.cookie.as_ref().unwrap()))
            .header("Origin", "http://evil.example")
            .send_form([("csrf", csrf.as_str()), ("name", "greet"), ("version", "2")]),
    );
    assert_eq!(foreign.status, 403);
    assert_eq!(release(&db, "greet"), 1);
    assert_eq!(b.act("/template/activate", &[("name", "greet"), ("version", "2")]).status, 303);
    assert_eq!(release(&db, "greet"), 2);
}

#[test]
fn script_in_bodies_messages_names_and_errors_is_shown_as_text() {
    let (db, _roles, server, b, _admin) = admin_site(&[]);
    let evil = "<script>alert(1)</script>";
    db.connect()
        .execute(
            "SELECT prompt_save('x', $1, message => $1, description => $1, category => $1)",
            &[&format!("{evil} {{{{ v }}}}")],
        )
        .unwrap();
    let pages = [
        b.get("/templates"),
        b.get("/template?name=x"),
        b.get("/template/edit?name=x"),
        b.get("/template/diff?name=x&from=1&to=latest"),
        // An error message quoting what was typed.
        b.act("/template/label", &[("name", "x"), ("label", evil), ("version", "1")]),
        b.get(&format!("/template?name={}", "%3Cscript%3Ealert(1)%3C%2Fscript%3E")),
        // The audit log shows the saved body, message and description.
        b.get("/audit?object=x"),
    ];
    for p in &pages {
        assert!(!p.body.contains("<script>alert"), "unescaped: {}", p.body);
    }
    assert!(pages[1].body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(pages[4].body.contains("&lt;script&gt;"), "{}", pages[4].body);
    // (JSON in the audit page is escaped as JSON in HTML is: \u003c.)
    assert!(pages[6].body.contains("\\u003cscript\\u003ealert(1)"), "{}", pages[6].body);
    // And no page allows inline script at all.
    let csp = agent().get(format!("{}/login", server.base)).call().unwrap();
    assert!(csp.headers().get("content-security-policy").unwrap().to_str().unwrap().contains("script-src 'self'"));
}

#[test]
fn oversized_bodies_are_refused_before_reaching_the_database() {
    let (db, _roles, server, b, _admin) = admin_site(&[]);
    // A 10 MB form announced by its Content-Length: the answer comes before
    // the body is sent (a client sending it all at once may see the
    // connection close instead of reading the answer: the server stops
    // reading at the limit).
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /template/save HTTP/1.1\r\nHost: {addr}\r\nCookie: pgprompt_session={}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\nname=huge&body=aaaa",
        b.cookie.as_ref().unwrap(),
        10 << 20
    )
    .unwrap();
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 413");
    assert_eq!(versions(&db, "huge"), 0);
    // The server still serves.
    assert_eq!(b.get("/templates").status, 200);
}

#[test]
fn https_serves_with_a_certificate_from_files_and_marks_cookies_secure() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let dir = std::env::temp_dir().join(format!("pgprompt-tls-{}-{}", std::process::id(), db.name));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA, and a certificate for 127.0.0.1 it signs (as the cluster's).
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    let script = format!(
        "cd '{}' && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj '/CN=test CA' -keyout ca.key -out ca.pem &&
         openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout key.pem -out cert.csr &&
         printf 'subjectAltName=IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\n' > ext &&
         openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out cert.pem",
        dir.display()
    );
    let made = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let server = Server::start(&db.url(), &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let pem = std::fs::read(&ca).unwrap();
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![ureq::tls::Certificate::from_pem(&pem).unwrap()]));
    let https: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
        .build()
        .into();
    assert_eq!(reply(https.get(format!("{}/login", server.base)).call()).status, 200);
    let login = reply(https.post(format!("{}/login", server.base)).send_form([("role", admin.as_str()), ("password", pw.as_str())]));
    assert_eq!(login.status, 303);
    assert!(login.set_cookie.contains("; Secure"), "{}", login.set_cookie);
    // With the __Host- prefix, and a page served with it.
    let value = login.set_cookie.split(';').next().unwrap().strip_prefix("__Host-pgprompt_session=").expect("a __Host- cookie");
    let home = reply(https.get(format!("{}/home", server.base)).header("Cookie", format!("__Host-pgprompt_session={value}")).call());
    assert_eq!(home.status, 200, "{}", home.body);
    // The unprefixed name is not the session over HTTPS.
    let other = reply(https.get(format!("{}/home", server.base)).header("Cookie", format!("pgprompt_session={value}")).call());
    assert_eq!(other.location, "/login");
    // Plain HTTP to the HTTPS port gets no page.
    assert!(agent().get(server.base.replace("https://", "http://") + "/login").call().is_err());
    // Certificates that cannot be read stop the server with a message.
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
        .args(["--url", &db.url(), "serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem", "--tls-key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("could not read \"/nonexistent.pem\""));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TCP relay to the cluster that can be cut and restored, to see the
/// database "restart" under a running server without touching the
/// cluster other tests use.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn start(target: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                open2.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[test]
fn pages_say_when_the_database_is_away_and_recover_when_it_is_back() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    db.connect().batch_execute("SELECT prompt_save('greet', 'Hello')").unwrap();
    let port = pgprompt_tests::config("postgres").get_ports()[0];
    let relay = Relay::start(port);
    let server = Server::start(&format!("postgresql://127.0.0.1:{}/{}", relay.port, db.name), &[]);
    let mut b = Browser::new(&server);
    assert_eq!(b.login(&admin, &pw).status, 303);
    assert_eq!(b.get("/template?name=greet").status, 200);
    relay.cut();
    let down = b.get("/template?name=greet");
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.body.contains("The database cannot be reached right now"), "{}", down.body);
    relay.restore();
    let back = b.get("/template?name=greet");
    assert_eq!(back.status, 200, "{}", back.body);
    assert!(back.body.contains("id=\"template-name\">greet<"));
}

/// One user's burst of requests shares that role's few connections
/// (--db-connections-per-role): a request waits for one and is answered
/// 503 when none is freed in time, instead of opening connection after
/// connection until the database refuses everyone.
#[test]
fn a_roles_requests_share_a_bounded_number_of_connections() {
    let (db, _roles, _server, b, admin) = admin_site(&["--db-connections-per-role", "1", "--db-wait", "1"]);
    let mut c = db.connect();
    c.batch_execute("SELECT prompt_save('greet', 'Hello')").unwrap();
    assert_eq!(b.get("/templates").status, 200);
    // The templates held by another session: a request for them waits on
    // the lock, holding the role's one connection.
    let mut tx = c.transaction().unwrap();
    tx.batch_execute("LOCK TABLE prompt_templates IN ACCESS EXCLUSIVE MODE").unwrap();
    let b = &b;
    std::thread::scope(|s| {
        let first = s.spawn(move || b.get("/templates"));
        std::thread::sleep(Duration::from_millis(500));
        let asked = Instant::now();
        let second = b.get("/templates");
        let waited = asked.elapsed();
        assert_eq!(second.status, 503, "{}", second.body);
        assert!(second.body.contains("The server is busy"), "{}", second.body);
        assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(8), "{waited:?}");
        let open: i64 = tx
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND application_name = 'pgprompt serve'", &[&admin])
            .unwrap()
            .get(0);
        assert_eq!(open, 1, "one connection for the role, however many requests");
        tx.commit().unwrap();
        assert_eq!(first.join().unwrap().status, 200);
    });
    // Free again: the next request is served.
    assert_eq!(b.get("/templates").status, 200);
}

#[test]
fn analytics_charts_and_csv_follow_the_logged_calls_and_a_reader_sees_only_them() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (reader, pw) = roles.add(&db, "reader", Some("pgprompt_reader"), true);
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('greet', 'Hello', config => '{\"model\": \"gemini-2.0-flash-lite\"}');
         SELECT prompt_log_execution('greet', input_tokens => 1000000, output_tokens => 1000000, latency_ms => 100,
                                     executed_at => now() - interval '1 day')
           FROM generate_series(1, 3);
         SELECT prompt_log_execution('greet', input_tokens => 10, output_tokens => 10, latency_ms => 900, success => false);",
    )
    .unwrap();
    let server = Server::start(&db.url(), &[]);
    let mut b = Browser::new(&server);
    assert_eq!(b.login(&reader, &pw).status, 303);
    let page = b.get("/analytics?days=7");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body.matches("<svg").count(), 4);
    assert!(page.body.contains("4 calls"), "{}", page.body);
    // The CSV has the same numbers as the database.
    let costs = b.get("/analytics/costs.csv?days=7");
    let lines: Vec<&str> = costs.body.lines().collect();
    assert_eq!(lines[0], "day,template,executions,cost_usd,unpriced_executions");
    let total: f64 = lines[1..].iter().map(|l| l.split(',').nth(3).unwrap().parse::<f64>().unwrap()).sum();
    let expected: f64 = c.query_one("SELECT sum(cost_usd)::float8 FROM prompt_executions", &[]).unwrap().get(0);
    assert!((total - expected).abs() < 1e-9 && (expected - 3.0 * 0.375).abs() < 1e-3, "{total} {expected}");
    let daily = b.get("/analytics/daily.csv?days=7").body;
    assert!(daily.contains(",3,0,0.0,") && daily.contains(",1,1,1.0,"), "{daily}");
    // Latency quantiles from the sketch: within 1% of the logged 900 ms.
    let p95: f64 = daily.lines().find(|l| l.contains(",1,1,1.0,")).unwrap().rsplit(',').next().unwrap().parse().unwrap();
    assert!((p95 - 900.0).abs() <= 9.0, "{p95}");
    // Nothing else: templates and the audit log are not the reader's.
    assert_eq!(b.get("/templates").location, "/home");
    let audit = b.get("/audit");
    assert_eq!(audit.status, 403);
    assert!(audit.body.contains("permission denied"), "{}", audit.body);
}

#[test]
fn looking_at_the_alerts_page_notifies_no_one() {
    let (db, _roles, _server, b, _admin) = admin_site(&[]);
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('greet', 'Hello', config => '{\"model\": \"m\"}');
         SELECT prompt_log_execution('greet', latency_ms => 10, success => false) FROM generate_series(1, 30);",
    )
    .unwrap();
    let mut listener = db.connect();
    listener.batch_execute("LISTEN pgprompt_alerts").unwrap();
    let page = b.get("/alerts");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("FIRING"), "{}", page.body);
    let heard = |l: &mut pgprompt_tests::Client| {
        l.batch_execute("SELECT 1").unwrap();
        use pgprompt_tests::postgres::fallible_iterator::FallibleIterator;
        l.notifications().timeout_iter(Duration::from_millis(500)).count().unwrap()
    };
    assert_eq!(heard(&mut listener), 0, "the page's check was rolled back");
    // The same check from SQL does notify: the listener would have heard it.
    c.batch_execute("SELECT * FROM prompt_check_alerts()").unwrap();
    assert!(heard(&mut listener) > 0);
}

#[test]
fn experiments_start_and_stop_from_their_page_and_the_playground_marks_findings() {
    let (db, _roles, _server, b, _admin) = admin_site(&[]);
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('greet', 'Hello', config => '{\"model\": \"m\"}'); SELECT prompt_save('greet', 'Hi');
         SELECT prompt_experiment_create('hi_or_hello', 'greet', '[{\"version\": 1, \"weight\": 50}, {\"version\": 2, \"weight\": 50}]',
                                         primary_metric => 'latency_ms');",
    )
    .unwrap();
    assert!(b.get("/experiments").body.contains("hi_or_hello"));
    assert!(b.get("/experiment?name=hi_or_hello").body.contains("No calls logged for this experiment yet."));
    let started = b.act("/experiment/start", &[("name", "hi_or_hello")]);
    assert_eq!(started.status, 303, "{}", started.body);
    let status: String = c.query_one("SELECT status FROM ab_test_experiments", &[]).unwrap().get(0);
    assert_eq!(status, "running");
    c.batch_execute("SELECT prompt_log_execution('greet', version => prompt_assign('greet', 'u' || i), user_id => 'u' || i, latency_ms => i,
                                                 experiment => 'hi_or_hello', variant => 'v' || prompt_assign('greet', 'u' || i))
                       FROM generate_series(1, 40) i").unwrap();
    let page = b.get("/experiment?name=hi_or_hello");
    assert!(page.body.contains("id=\"metric-success_rate\"") && page.body.contains("<svg"), "{}", page.body);
    let metrics = b.get("/experiment/metrics.csv?name=hi_or_hello").body;
    assert!(metrics.starts_with("metric,variant,version,is_control,n,value") && metrics.contains("latency_ms,v1,1,true,"), "{metrics}");
    // The primary metric's evolution: latency here, a mean per variant with its interval.
    let evolution = b.get("/experiment/evolution.csv?name=hi_or_hello").body;
    let rows: Vec<&str> = evolution.lines().collect();
    assert_eq!(rows[0], "day,variant,n,value,ci_low,ci_high");
    let calls: i64 = rows[1..].iter().map(|r| r.split(',').nth(2).unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(calls, 40, "{evolution}");
    for r in &rows[1..] {
        let f: Vec<f64> = r.split(',').skip(3).map(|v| v.parse().unwrap()).collect();
        assert!(f[1] <= f[0] && f[0] <= f[2] && f[0] > 0.0 && f[0] < 41.0, "{r}");
    }
    assert_eq!(b.act("/experiment/stop", &[("name", "hi_or_hello")]).status, 303);
    // A second start of a stopped experiment resumes it; an unknown action is a 404.
    assert_eq!(b.act("/experiment/promote-everything", &[("name", "hi_or_hello")]).status, 404);

    let scanned = b.act("/guardrails", &[("text", "<script>alert(1)</script> write to ada@example.com"), ("direction", "input")]);
    assert_eq!(scanned.status, 200);
    assert!(!scanned.body.contains("<script>alert"), "{}", scanned.body);
    assert!(scanned.body.contains(">ada@example.com</mark>"), "{}", scanned.body);
    let bad = b.act("/guardrails", &[("text", "x"), ("direction", "sideways")]);
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("22023"), "{}", bad.body);
}

/// A local webhook receiver: records each request (headers and body) and
/// answers with the statuses given in turn (the last one repeating), after
/// a delay.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<(Vec<(String, String)>, String)>>>,
}

impl Receiver {
    fn start(statuses: &[u16], delay: Duration) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/hook", listener.local_addr().unwrap().port());
        let got: Arc<Mutex<Vec<(Vec<(String, String)>, String)>>> = Arc::default();
        let (got2, statuses) = (got.clone(), statuses.to_vec());
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().flatten().enumerate() {
                let (got, status) = (got2.clone(), statuses[n.min(statuses.len() - 1)]);
                std::thread::spawn(move || {
                    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                    let mut headers = Vec::new();
                    let mut line = String::new();
                    use std::io::BufRead;
                    reader.read_line(&mut line).unwrap();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                            break;
                        }
                        let (k, v) = line.trim().split_once(':').unwrap();
                        headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
                    }
                    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
                    let mut body = vec![0u8; len];
                    reader.read_exact(&mut body).unwrap();
                    got.lock().unwrap().push((headers, String::from_utf8(body).unwrap()));
                    std::thread::sleep(delay);
                    let mut out = stream;
                    let _ = write!(out, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                });
            }
        });
        Receiver { url, got }
    }

    fn requests(&self) -> Vec<(Vec<(String, String)>, String)> {
        self.got.lock().unwrap().clone()
    }

    /// Whether an event of template `name` arrives within 20 s.
    fn got_template(&self, name: &str) -> bool {
        let started = Instant::now();
        let needle = format!(r#""template":"{name}""#);
        while started.elapsed() < Duration::from_secs(20) {
            if self.requests().iter().any(|(_, body)| body.contains(&needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

fn header<'a>(h: &'a [(String, String)], k: &str) -> &'a str {
    h.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
}

#[test]
fn webhooks_deliver_signed_events_retry_with_backoff_and_log_every_attempt() {
    let db = TestDb::new();
    let ok = Receiver::start(&[200], Duration::ZERO);
    let flaky = Receiver::start(&[500, 200], Duration::ZERO);
    let slow = Receiver::start(&[200], Duration::from_secs(3));
    let slack = Receiver::start(&[200], Duration::ZERO);
    let mut c = db.connect();
    for (name, url, format) in [("ok", &ok.url, "json"), ("flaky", &flaky.url, "json"), ("slow", &slow.url, "json"), ("slack", &slack.url, "slack")] {
        c.execute(
            "INSERT INTO prompt_webhooks (name, url, secret, format, channels) VALUES ($1, $2, 'a-secret-of-16-chars', $3, '{pgprompt_changes}')",
            &[&name, url, &format],
        )
        .unwrap();
    }
    c.execute("INSERT INTO prompt_webhooks (name, url, secret) VALUES ('outside', 'http://192.0.2.1/hook', 'a-secret-of-16-chars')", &[]).unwrap();
    let server = Server::start(
        &db.url(),
        &["--webhooks", "--webhook-attempts", "3", "--webhook-backoff-ms", "100", "--webhook-timeout-ms", "500"],
    );
    // Give the listener a moment to LISTEN. A role that may connect but not
    // change anything sends a notification of its own (NOTIFY takes no
    // privilege): it is not delivered. Then one real change.
    std::thread::sleep(Duration::from_millis(500));
    let mut roles = Roles::new(&db);
    let (app, pw) = roles.add(&db, "app", Some("pgprompt_app"), true);
    let mut forger = pgprompt_tests::config(&db.name);
    forger.user(&app).password(&pw);
    let mut forger = forger.connect(pgprompt_tests::NoTls).unwrap();
    forger.batch_execute(r#"NOTIFY pgprompt_changes, '{"template": "forged", "action": "activate"}'"#).unwrap();
    // Nor is one from a session that is gone before the server could ask
    // who sent it: what is delivered is what the extension recorded.
    let mut quick = pgprompt_tests::config(&db.name);
    quick.user(&app).password(&pw);
    let mut quick = quick.connect(pgprompt_tests::NoTls).unwrap();
    quick.batch_execute(r#"NOTIFY pgprompt_changes, '{"template": "forged", "action": "activate"}'"#).unwrap();
    drop(quick);
    std::thread::sleep(Duration::from_millis(500));
    c.batch_execute("SELECT prompt_save('greet', 'Hello')").unwrap();
    let started = Instant::now();
    let attempts = |c: &mut pgprompt_tests::Client| -> i64 { c.query_one("SELECT count(*) FROM prompt_webhook_deliveries", &[]).unwrap().get(0) };
    // ok 1, flaky 2, slow 3, slack 1 (outside: pgprompt_changes only for the
    // four above; it subscribes to both, so 1 refused attempt).
    while attempts(&mut c) < 8 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // The server answered pages all along.
    assert_eq!(reply(agent().get(format!("{}/login", server.base)).call()).status, 200);
    let log: Vec<(String, i32, Option<i32>, bool, Option<String>, String)> = c
        .query("SELECT webhook, attempt, status, delivered, error, event_id FROM prompt_webhook_deliveries ORDER BY webhook, attempt", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
        .collect();
    let of = |w: &str| log.iter().filter(|l| l.0 == w).collect::<Vec<_>>();
    assert_eq!(of("ok").len(), 1, "{log:?}");
    assert!(of("ok")[0].3 && of("ok")[0].2 == Some(200));
    let f = of("flaky");
    assert_eq!((f.len(), f[0].2, f[0].3, f[1].2, f[1].3), (2, Some(500), false, Some(200), true), "{log:?}");
    let s = of("slow");
    assert_eq!(s.len(), 3, "{log:?}");
    assert!(s.iter().all(|a| !a.3 && a.4.as_deref().unwrap_or("").contains("timed out")), "{log:?}");
    let out = of("outside");
    assert_eq!(out.len(), 1, "a host that is not allowed is not retried: {log:?}");
    assert!(out[0].4.as_deref().unwrap().contains("not loopback and not in --webhook-hosts"));
    // One event (the forged one was not delivered): one idempotency key everywhere.
    let key = &log[0].5;
    assert!(log.iter().all(|l| &l.5 == key), "{log:?}");
    assert!(ok.requests().iter().all(|(_, body)| !body.contains("forged")));
    drop(forger);

    // What the receivers got: signed JSON, the same key on each retry.
    let r = ok.requests();
    let (h, body) = &r[0];
    assert_eq!(header(h, "idempotency-key"), key);
    assert_eq!(header(h, "x-pgprompt-event"), "pgprompt_changes");
    let ts = header(h, "x-pgprompt-timestamp");
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"a-secret-of-16-chars");
    let sig: String = ring::hmac::sign(&k, format!("{ts}.{body}").as_bytes()).as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header(h, "x-pgprompt-signature"), format!("v1={sig}"));
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!((event["channel"].as_str(), event["event_id"].as_str()), (Some("pgprompt_changes"), Some(key.as_str())));
    assert!(event["payload"].is_object(), "{event}");
    let retried = flaky.requests();
    assert_eq!(retried.len(), 2);
    assert_eq!(header(&retried[0].0, "idempotency-key"), header(&retried[1].0, "idempotency-key"));
    let text: Value = serde_json::from_str(&slack.requests()[0].1).unwrap();
    assert!(text["text"].as_str().unwrap().starts_with("pgprompt change: "), "{text}");
}

/// A change committed while the server's connection to the database is
/// down (a network cut, a restart) is delivered once it is back: events are
/// read from prompt_events, not only heard.
#[test]
fn webhooks_deliver_what_was_committed_while_the_database_was_away() {
    let db = TestDb::new();
    let ok = Receiver::start(&[200], Duration::ZERO);
    let mut c = db.connect();
    c.execute("INSERT INTO prompt_webhooks (name, url, secret) VALUES ('ok', $1, 'a-secret-of-16-chars')", &[&ok.url]).unwrap();
    c.batch_execute("SELECT prompt_save('before', 'Made before the server started')").unwrap();
    let port = pgprompt_tests::config("postgres").get_ports()[0];
    let relay = Relay::start(port);
    let _server = Server::start(&format!("postgresql://postgres@127.0.0.1:{}/{}", relay.port, db.name), &["--webhooks"]);
    std::thread::sleep(Duration::from_millis(500));
    relay.cut();
    c.batch_execute("SELECT prompt_save('greet', 'Hello')").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    relay.restore();
    let started = Instant::now();
    while ok.requests().is_empty() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: Vec<String> = ok.requests().into_iter().map(|(_, body)| body).collect();
    assert!(!got.is_empty() && got.iter().all(|b| b.contains(r#""template":"greet""#)), "{got:?}");
    // What happened before the server started is not sent.
    assert!(got.iter().all(|b| !b.contains("before")), "{got:?}");
}

/// Ids are taken at insert, commits come in any order: an event whose
/// transaction commits after a later one's is still delivered.
#[test]
fn webhooks_deliver_events_whose_transactions_commit_late() {
    let db = TestDb::new();
    let ok = Receiver::start(&[200], Duration::ZERO);
    let mut c = db.connect();
    c.execute("INSERT INTO prompt_webhooks (name, url, secret, channels) VALUES ('ok', $1, 'a-secret-of-16-chars', '{pgprompt_changes}')", &[&ok.url])
        .unwrap();
    let _server = Server::start(&db.url(), &["--webhooks"]);
    std::thread::sleep(Duration::from_millis(500));
    let delivered = |name: &str| ok.got_template(name);
    // The slow change takes its event id first and commits last.
    let mut slow = db.connect();
    let mut t = slow.transaction().unwrap();
    t.batch_execute("SELECT prompt_save('slow', 'x')").unwrap();
    c.batch_execute("SELECT prompt_save('fast', 'x')").unwrap();
    assert!(delivered("fast"));
    t.commit().unwrap();
    assert!(delivered("slow"), "{:?}", ok.requests().iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
    // Each once.
    let bodies: Vec<String> = ok.requests().into_iter().map(|(_, b)| b).collect();
    assert_eq!(bodies.iter().filter(|b| b.contains(r#""template":"slow""#)).count(), 1, "{bodies:?}");
    assert_eq!(bodies.iter().filter(|b| b.contains(r#""template":"fast""#)).count(), 1, "{bodies:?}");
}

/// The extension dropped and created again while the server runs (as a
/// restore does): the new events table numbers its events from 1 again, and
/// they are delivered all the same.
#[test]
fn webhooks_go_on_when_the_extension_is_made_anew() {
    let db = TestDb::new();
    let ok = Receiver::start(&[200], Duration::ZERO);
    let mut c = db.connect();
    let hook = "INSERT INTO prompt_webhooks (name, url, secret, channels) VALUES ('ok', $1, 'a-secret-of-16-chars', '{pgprompt_changes}')";
    c.execute(hook, &[&ok.url]).unwrap();
    let _server = Server::start(&db.url(), &["--webhooks"]);
    std::thread::sleep(Duration::from_millis(500));
    let delivered = |name: &str| ok.got_template(name);
    c.batch_execute("SELECT prompt_save('one', 'x'); SELECT prompt_save('two', 'x'); SELECT prompt_save('three', 'x')").unwrap();
    assert!(delivered("three"));
    c.batch_execute("DROP EXTENSION pgprompt CASCADE; CREATE EXTENSION pgprompt").unwrap();
    c.execute(hook, &[&ok.url]).unwrap();
    c.batch_execute("SELECT prompt_save('anew', 'x')").unwrap();
    assert!(delivered("anew"), "{:?}", ok.requests().iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());
}

#[test]
fn webhooks_need_a_role_that_may_read_them_and_keep_secrets_out_of_the_audit_log() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (app, pw) = roles.add(&db, "app", Some("pgprompt_app"), true);
    let url = db.url().replace("postgres@", &format!("{app}:{pw}@"));
    let out = Command::new(env!("CARGO_BIN_EXE_pgprompt")).args(["--url", &url, "serve", "--listen", "127.0.0.1:0", "--webhooks"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("webhooks: permission denied for table prompt_webhooks"), "{err}");
    let mut c = db.connect();
    c.batch_execute("INSERT INTO prompt_webhooks (name, url, secret) VALUES ('w', 'http://127.0.0.1:9/', 'first-secret-0123456789');
                     UPDATE prompt_webhooks SET secret = 'second-secret-0123456789';").unwrap();
    let audit: String = c.query_one("SELECT string_agg(coalesce(before::text, '') || after::text, ' ') FROM prompt_audit_logs WHERE object_type = 'webhook'", &[]).unwrap().get(0);
    assert!(!audit.contains("first-secret") && !audit.contains("second-secret") && audit.contains("sha256:"), "{audit}");
    let updates: i64 = c.query_one("SELECT count(*) FROM prompt_audit_logs WHERE object_type = 'webhook' AND action = 'update'", &[]).unwrap().get(0);
    assert_eq!(updates, 1, "a rotation is audited");
    // Bad definitions are refused by the table.
    for bad in ["INSERT INTO prompt_webhooks (name, url, secret) VALUES ('x', 'file:///etc/passwd', 'a-secret-of-16-chars')",
                "INSERT INTO prompt_webhooks (name, url, secret) VALUES ('x', 'http://127.0.0.1/', 'short')",
                "INSERT INTO prompt_webhooks (name, url, secret, channels) VALUES ('x', 'http://127.0.0.1/', 'a-secret-of-16-chars', '{pg_other}')"] {
        assert_eq!(pgprompt_tests::sqlstate(c.execute(bad, &[])), "23514", "{bad}");
    }
}

// ---------------------------------------------------------------- REST API

struct Api {
    base: String,
    token: String,
}

impl Api {
    fn login(server: &Server, role: &str, password: &str) -> Api {
        let r = reply(agent().post(format!("{}/api/v1/auth/token", server.base)).send_json(json!({"role": role, "password": password})));
        assert_eq!(r.status, 200, "{}", r.body);
        Api { base: server.base.clone(), token: r.json()["token"].as_str().unwrap().to_string() }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}/api/v1/admin/prompts{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let a = agent();
        reply(match (method, body) {
            ("GET", _) => a.get(url).header("Authorization", auth).call(),
            ("DELETE", _) => a.delete(url).header("Authorization", auth).call(),
            ("PUT", b) => a.put(url).header("Authorization", auth).send_json(b.unwrap_or(json!({}))),
            (_, b) => a.post(url).header("Authorization", auth).send_json(b.unwrap_or(json!({}))),
        })
    }
}

#[test]
fn the_rest_api_manages_templates_as_the_token_s_role() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let (app, app_pw) = roles.add(&db, "app", Some("pgprompt_app"), true);
    let server = Server::start(&db.url(), &[]);
    let api = Api::login(&server, &admin, &pw);

    let created = api.call("POST", "/templates", Some(json!({"name": "tutor/intro", "body": "Explain {{ topic }}.", "config": {"model": "gpt-4o"}, "message": "first"})));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json(), json!({"name": "tutor/intro", "version": 1}));
    let updated = api.call("PUT", "/templates/tutor%2Fintro", Some(json!({"body": "Explain {{ topic }} simply.", "message": "simpler"})));
    assert_eq!(updated.json()["version"], 2, "{}", updated.body);
    let list = api.call("GET", "/templates?q=tutor", None).json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!((list[0]["active_version"].clone(), list[0]["latest_version"].clone()), (json!(1), json!(2)));
    let shown = api.call("GET", "/templates/tutor%2Fintro?version=2", None).json();
    assert_eq!(shown["selected"]["body"], "Explain {{ topic }} simply.");
    assert_eq!(shown["selected"]["config"], json!({"model": "gpt-4o"}), "config inherited from the parent");
    assert_eq!(shown["versions"][0]["message"], "simpler");

    assert_eq!(api.call("POST", "/templates/tutor%2Fintro/activate", Some(json!({"version": 2}))).json()["active_version"], 2);
    assert_eq!(api.call("POST", "/templates/tutor%2Fintro/rollback", None).json()["active_version"], 1);
    assert_eq!(api.call("POST", "/templates/tutor%2Fintro/labels", Some(json!({"label": "staging", "version": 2}))).status, 200);
    let rendered = api.call("POST", "/test", Some(json!({"template": "tutor/intro", "label": "staging", "vars": {"topic": "tides"}})));
    assert_eq!(rendered.json(), json!({"output": "Explain tides simply."}));
    let adhoc = api.call("POST", "/test", Some(json!({"body": "{{ a }}-{{ b }}", "vars": {"a": 1, "b": "x"}})));
    assert_eq!(adhoc.json(), json!({"output": "1-x"}));
    assert_eq!(api.call("DELETE", "/templates/tutor%2Fintro/labels/staging", None).status, 204);
    assert_eq!(api.call("DELETE", "/templates/tutor%2Fintro/labels/staging", None).status, 404);

    // The database's errors, with their SQLSTATE and a status.
    let missing = api.call("GET", "/templates/nope", None);
    assert_eq!(missing.status, 404);
    let bad = api.call("POST", "/templates", Some(json!({"name": "broken", "body": "{{ x "})));
    assert_eq!((bad.status, bad.json()["error"]["sqlstate"].clone()), (422, json!("42601")), "{}", bad.body);
    let own = api.call("POST", "/templates/tutor%2Fintro/approve", Some(json!({"version": 2})));
    assert_eq!((own.status, own.json()["error"]["sqlstate"].clone()), (403, json!("42501")));
    let nothing = api.call("POST", "/test", Some(json!({"vars": {}})));
    assert_eq!(nothing.status, 400);

    // The app role reads but cannot write.
    let reader = Api::login(&server, &app, &app_pw);
    assert_eq!(reader.call("GET", "/templates", None).status, 200);
    let refused = reader.call("POST", "/templates/tutor%2Fintro/activate", Some(json!({"version": 2})));
    assert_eq!((refused.status, refused.json()["error"]["sqlstate"].clone()), (403, json!("42501")));

    assert_eq!(api.call("DELETE", "/templates/tutor%2Fintro", None).status, 204);
    assert_eq!(api.call("GET", "/templates", None).json(), json!([]));
}

#[test]
fn the_rest_api_manages_guardrails_experiments_scores_and_reports_analytics() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let mut c = db.connect();
    c.batch_execute(
        "SELECT prompt_save('greet', 'Hello', config => '{\"model\": \"m\"}'); SELECT prompt_save('greet', 'Hi');
         SELECT prompt_score_define('helpful', 'numeric', 1, 5);",
    )
    .unwrap();
    let server = Server::start(&db.url(), &[]);
    let api = Api::login(&server, &admin, &pw);

    // Guardrails.
    let rule = json!({"name": "no_tickets", "kind": "regex", "action": "block", "config": {"patterns": ["TICKET-[0-9]+"], "entity": "TICKET"}});
    assert_eq!(api.call("POST", "/guardrails", Some(rule)).status, 201);
    let found = api.call("POST", "/guardrails/scan", Some(json!({"text": "see TICKET-42 now"}))).json();
    let f = found["findings"].as_array().unwrap().iter().find(|f| f["guardrail"] == "no_tickets").cloned().unwrap();
    assert_eq!((f["entity"].clone(), f["start_pos"].clone(), f["end_pos"].clone()), (json!("TICKET"), json!(4), json!(13)));
    assert_eq!(api.call("PUT", "/guardrails/no_tickets", Some(json!({"severity": "high"}))).status, 200);
    assert_eq!(api.call("GET", "/guardrails/no_tickets", None).json()["severity"], "high");
    assert_eq!(api.call("POST", "/guardrails/no_tickets/deactivate", None).json()["enabled"], false);
    let found = api.call("POST", "/guardrails/scan", Some(json!({"text": "see TICKET-42 now"}))).json();
    assert!(found["findings"].as_array().unwrap().iter().all(|f| f["guardrail"] != "no_tickets"));
    let invalid = api.call("POST", "/guardrails", Some(json!({"name": "empty", "kind": "regex"})));
    assert_eq!((invalid.status, invalid.json()["error"]["sqlstate"].clone()), (422, json!("22023")), "{}", invalid.body);
    let builtin = api.call("DELETE", "/guardrails/pii_detection_basic", None);
    assert_eq!((builtin.status, builtin.json()["error"]["sqlstate"].clone()), (409, json!("55000")), "{}", builtin.body);
    assert_eq!(api.call("DELETE", "/guardrails/no_tickets", None).status, 204);
    assert_eq!(api.call("GET", "/guardrails/no_tickets", None).status, 404);
    assert!(api.call("GET", "/guardrails", None).json().as_array().unwrap().len() >= 3);

    // Experiments: create, start, results, stop, promote.
    let x = json!({"name": "hi_test", "template": "greet", "variants": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}], "min_sample_size": 5});
    let created = api.call("POST", "/experiments", Some(x.clone()));
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(api.call("POST", "/experiments", Some(x)).json()["error"]["sqlstate"], "42710");
    assert_eq!(api.call("POST", "/experiments/hi_test/start", None).json()["status"], "running");
    c.batch_execute("SELECT prompt_log_execution('greet', version => prompt_assign('greet', 'u' || i), user_id => 'u' || i, latency_ms => i,
                                                 experiment => 'hi_test', variant => 'v' || prompt_assign('greet', 'u' || i))
                       FROM generate_series(1, 60) i").unwrap();
    let results = api.call("GET", "/experiments/hi_test/results", None).json();
    let calls: i64 = results["results"].as_array().unwrap().iter().map(|r| r["executions"].as_i64().unwrap()).sum();
    assert_eq!(calls, 60);
    assert_eq!(api.call("GET", "/experiments", None).json()[0]["status"], "running");
    assert_eq!(api.call("POST", "/experiments/hi_test/stop", None).status, 200);
    let promoted = api.call("POST", "/experiments/hi_test/promote", Some(json!({"version": 2, "force": true})));
    assert_eq!(promoted.json()["active_version"], 2, "{}", promoted.body);
    assert_eq!(release(&db, "greet"), 2);

    // Scores.
    let id: i64 = c.query_one("SELECT max(id) FROM prompt_executions", &[]).unwrap().get(0);
    assert_eq!(api.call("POST", "/scores", Some(json!({"execution": id, "name": "helpful", "value": 4}))).status, 201);
    let out_of_range = api.call("POST", "/scores", Some(json!({"execution": id, "name": "helpful", "value": 9})));
    assert_eq!((out_of_range.status, out_of_range.json()["error"]["sqlstate"].clone()), (422, json!("22023")));
    assert_eq!(api.call("POST", "/scores", Some(json!({"name": "helpful", "value": 3}))).status, 400);
    let scored: i64 = c.query_one("SELECT count(*) FROM prompt_scores", &[]).unwrap().get(0);
    assert_eq!(scored, 1);

    // Analytics: every day of the range, and the calls just logged.
    let a = api.call("GET", "/analytics?days=7", None).json();
    assert_eq!(a["days"].as_array().unwrap().len(), 7);
    assert_eq!(a["daily"].as_array().unwrap().iter().map(|d| d["calls"].as_i64().unwrap()).sum::<i64>(), 60);
    let one = api.call("GET", "/analytics/greet?days=1", None).json();
    assert!(one["performance"].as_array().unwrap().iter().all(|p| p["template"] == "greet"));
    assert_eq!(api.call("GET", "/analytics/nothing?days=1", None).json()["daily"], json!([]));
}

#[test]
fn the_rest_api_refuses_bad_tokens_malformed_json_and_cross_origin_writes() {
    let db = TestDb::new();
    let mut roles = Roles::new(&db);
    let (admin, pw) = roles.add(&db, "admin", Some("pgprompt_admin"), true);
    let server = Server::start(&db.url(), &[]);
    let url = format!("{}/api/v1/admin/prompts/templates", server.base);
    let none = reply(agent().get(&url).call());
    assert_eq!(none.status, 401);
    assert!(none.json()["error"]["message"].as_str().unwrap().contains("bearer token"));
    let forged = reply(agent().get(&url).header("Authorization", "Bearer abc.9999999999.AAAA").call());
    assert_eq!(forged.status, 401);
    let wrong = reply(agent().post(format!("{}/api/v1/auth/token", server.base)).send_json(json!({"role": admin, "password": "nope"})));
    assert_eq!(wrong.status, 401);
    assert!(wrong.json()["error"]["message"].is_string());

    let api = Api::login(&server, &admin, &pw);
    let malformed = reply(
        agent().post(&url).header("Authorization", format!("Bearer {}", api.token)).header("Content-Type", "application/json").send("{\"name\": \"x\", "),
    );
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert!(malformed.json()["error"]["message"].as_str().unwrap().contains("not what this endpoint takes"));
    let unknown_field = api.call("POST", "/templates", Some(json!({"name": "x", "body": "y", "colour": "red"})));
    assert_eq!(unknown_field.status, 400);
    let cross = reply(
        agent()
            .post(&url)
            .header("Authorization", format!("Bearer {}", api.token))
            .header("Origin", "http://evil.example")
            .send_json(json!({"name": "x", "body": "y"})),
    );
    assert_eq!(cross.status, 403);
    assert_eq!(versions(&db, "x"), 0);
    // Revoked tokens stop working.
    let revoke = reply(agent().delete(format!("{}/api/v1/auth/token", server.base)).header("Authorization", format!("Bearer {}", api.token)).call());
    assert_eq!(revoke.status, 204);
    assert_eq!(api.call("GET", "/templates", None).status, 401);
}

#[test]
fn the_openapi_document_describes_every_endpoint() {
    let db = TestDb::new();
    let server = Server::start(&db.url(), &[]);
    let doc = reply(agent().get(format!("{}/api/openapi.json", server.base)).call()).json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let t = "/api/v1/admin/prompts/templates";
    for (path, methods) in [
        ("/api/v1/auth/token", &["post", "delete"][..]),
        (t, &["get", "post"]),
        (&format!("{t}/{{name}}"), &["get", "put", "delete"]),
        (&format!("{t}/{{name}}/activate"), &["post"]),
        (&format!("{t}/{{name}}/rollback"), &["post"]),
        (&format!("{t}/{{name}}/labels"), &["post"]),
        (&format!("{t}/{{name}}/labels/{{label}}"), &["delete"]),
        (&format!("{t}/{{name}}/approve"), &["post"]),
        ("/api/v1/admin/prompts/test", &["post"]),
        ("/api/v1/admin/prompts/guardrails", &["get", "post"]),
        ("/api/v1/admin/prompts/guardrails/scan", &["post"]),
        ("/api/v1/admin/prompts/guardrails/{name}", &["get", "put", "delete"]),
        ("/api/v1/admin/prompts/guardrails/{name}/activate", &["post"]),
        ("/api/v1/admin/prompts/guardrails/{name}/deactivate", &["post"]),
        ("/api/v1/admin/prompts/analytics", &["get"]),
        ("/api/v1/admin/prompts/analytics/{template}", &["get"]),
        ("/api/v1/admin/prompts/experiments", &["get", "post"]),
        ("/api/v1/admin/prompts/experiments/{name}", &["get"]),
        ("/api/v1/admin/prompts/experiments/{name}/results", &["get"]),
        ("/api/v1/admin/prompts/experiments/{name}/start", &["post"]),
        ("/api/v1/admin/prompts/experiments/{name}/stop", &["post"]),
        ("/api/v1/admin/prompts/experiments/{name}/promote", &["post"]),
        ("/api/v1/admin/prompts/scores", &["post"]),
    ] {
        for m in methods {
            assert!(paths.get(path).and_then(|p| p.get(*m)).is_some(), "{m} {path} missing");
        }
    }
    assert_eq!(reply(agent().get(format!("{}/api/v1/nothing", server.base)).call()).status, 404);
}
