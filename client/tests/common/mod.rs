//! What the web tests share: a `pgprompt serve` process, login roles, and
//! an HTTP client that follows no redirects.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pgprompt_tests::TestDb;
use serde_json::Value;

/// A running `pgprompt serve`, stopped when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    pub fn start(url: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pgprompt"))
            .args(["--url", url, "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("DATABASE_URL")
            .env_remove("PGPASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("pgprompt serve starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.split("listening on ").nth(1).and_then(|r| r.split('/').take(3).collect::<Vec<_>>().join("/").into()).unwrap();
        assert!(base.starts_with("http://127.0.0.1:") || base.starts_with("https://127.0.0.1:"), "{line}");
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Login roles for a test database: `<db>_<suffix>` with password
/// `pw-<suffix>`, granted `grant` (a pgprompt role, or none), dropped at the end.
pub struct Roles {
    db: String,
    made: Vec<String>,
}

impl Roles {
    pub fn new(db: &TestDb) -> Roles {
        let mut c = db.connect();
        c.batch_execute(
            "DO $$ BEGIN CREATE ROLE pgprompt_web_login NOLOGIN;
                  EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$",
        )
        .unwrap();
        Roles { db: db.name.clone(), made: Vec::new() }
    }

    pub fn add(&mut self, db: &TestDb, suffix: &str, grant: Option<&str>, web_login: bool) -> (String, String) {
        let name = format!("{}_{suffix}", self.db);
        let password = format!("pw-{suffix}");
        let mut c = db.connect();
        c.batch_execute(&format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'")).unwrap();
        if let Some(g) = grant {
            c.batch_execute(&format!("GRANT {g} TO {name}")).unwrap();
        }
        if web_login {
            c.batch_execute(&format!("GRANT pgprompt_web_login TO {name}")).unwrap();
        }
        c.batch_execute(&format!("GRANT CONNECT ON DATABASE {} TO {name}", self.db)).unwrap();
        self.made.push(name.clone());
        (name, password)
    }
}

impl Drop for Roles {
    fn drop(&mut self) {
        if let Ok(mut c) = pgprompt_tests::config("postgres").connect(pgprompt_tests::NoTls) {
            // The database first: the roles hold privileges on it.
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db));
            for r in &self.made {
                let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS {r}"));
            }
        }
    }
}

/// What a response was: status, Location, Set-Cookie and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub location: String,
    pub set_cookie: String,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

pub fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("the server answers");
    let h = |k: &str| r.headers().get(k).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (location, set_cookie) = (h("location"), h("set-cookie"));
    let body = r.body_mut().with_config().limit(50 << 20).read_to_string().unwrap_or_default();
    Reply { status: r.status().as_u16(), location, set_cookie, body }
}

