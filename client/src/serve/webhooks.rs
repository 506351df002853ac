//! Webhooks (`pgprompt serve --webhooks`): the server delivers each event
//! the extension records in `prompt_events` (every change and firing
//! alert, also NOTIFYed on `pgprompt_changes` and `pgprompt_alerts`) to the
//! enabled rows of `prompt_webhooks` subscribed to its channel, as an
//! HMAC-SHA256-signed POST, retried with exponential backoff; every attempt
//! is logged in `prompt_webhook_deliveries`. It LISTENs on both channels,
//! but a notification only tells it to read the events committed since its
//! last read: NOTIFY takes no privilege, so any role that may connect could
//! send one, while only the extension writes `prompt_events`. And events
//! committed while the listening connection was down (a restart) are read
//! once it is back. Since last read means what the last read's snapshot
//! did not see, not ids above the last one: ids are taken at insert, and a
//! transaction that took a lower one may commit later. Deliveries run in tasks of
//! their own: a slow or failing receiver never holds up the server or other
//! receivers. Only loopback addresses and the hosts the operator allowed
//! (`--webhook-hosts`) are contacted, and redirects are not followed, so a
//! row in a table cannot make the server reach anywhere else.
//!
//! The listening and logging connections use the server's own connection
//! settings (`--url`, or the libpq variables): a role that may read
//! `prompt_webhooks` and write the log (pgprompt_admin).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pgprompt_client::postgres::Client;
use pgprompt_client::{Error, Result};
use ring::hmac;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::db::Pools;

pub const CHANNELS: [&str; 2] = ["pgprompt_changes", "pgprompt_alerts"];

/// How deliveries are made.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Hosts (names or addresses) that may be contacted besides loopback.
    pub hosts: Vec<String>,
    /// Attempts per event and webhook, the first included.
    pub attempts: u32,
    /// The wait before the first retry; each retry waits twice the last.
    pub backoff: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
}

/// One event of `prompt_events`, with the idempotency key every attempt
/// carries: its id and time, the same for every server delivering it.
#[derive(Clone, Debug)]
pub struct Event {
    pub id: String,
    pub channel: String,
    pub payload: String,
}

/// How often the listener reads new events without being told to (a
/// safety net: every commit that records one also notifies).
const CATCH_UP: Duration = Duration::from_secs(30);
/// How often the listener deletes events older than seven days.
const PRUNE: Duration = Duration::from_secs(3600);
/// How long a check that the log's connection is still alive may take.
const PING: Duration = Duration::from_secs(5);

/// The `X-Pgprompt-Signature` of a body sent at `timestamp` (Unix seconds):
/// `v1=` and the hex HMAC-SHA256 of `timestamp.body` under the secret.
pub fn signature(secret: &str, timestamp: u64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let tag = hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("v1={hex}")
}

/// The wait before attempt `attempt` (2, 3, ...): `first`, then doubling,
/// at most five minutes.
pub fn backoff(attempt: u32, first: Duration) -> Duration {
    let doublings = attempt.saturating_sub(2).min(20);
    (first * 2u32.pow(doublings)).min(Duration::from_secs(300))
}

/// Whether a URL may be contacted: http or https, to a loopback address
/// or `localhost`, or to a host in `hosts`.
pub fn allowed(url: &str, hosts: &[String]) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme {} is not http or https", parsed.scheme()));
    }
    let host = parsed.host_str().ok_or("the URL has no host")?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || hosts.iter().any(|h| h.trim_matches(|c| c == '[' || c == ']').eq_ignore_ascii_case(&host)) {
        Ok(())
    } else {
        Err(format!("host {host} is not loopback and not in --webhook-hosts"))
    }
}

/// The request body: the event as JSON, or Slack's `{"text"}`.
pub fn body(format: &str, e: &Event, sent_at: u64) -> String {
    let payload: Value = serde_json::from_str(&e.payload).unwrap_or_else(|_| Value::String(e.payload.clone()));
    if format == "slack" {
        let what = match e.channel.as_str() {
            "pgprompt_alerts" => format!(
                "pgprompt alert {}: {} = {} (threshold {}, window {})",
                payload["rule"].as_str().unwrap_or("?"),
                payload["metric"].as_str().unwrap_or("?"),
                payload["value"],
                payload["threshold"],
                payload["window"].as_str().unwrap_or("?")
            ),
            _ => format!("pgprompt change: {}", serde_json::to_string(&payload).unwrap_or_default()),
        };
        // Slack reads <...> as links and mentions (<!channel>): escaped.
        let what = what.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        return json!({"text": what}).to_string();
    }
    json!({"event_id": e.id, "channel": e.channel, "payload": payload, "sent_at": sent_at}).to_string()
}

/// A webhook subscribed to an event's channel.
#[derive(Clone, Debug)]
struct Target {
    id: i64,
    name: String,
    url: String,
    secret: String,
    format: String,
}

/// One attempt, as the log keeps it.
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    delivered: bool,
    took: Duration,
}

/// The database side: the connection that reads targets and writes the
/// log, reopened when it breaks.
struct Log {
    pools: Arc<Pools>,
    role: String,
    password: String,
    client: Mutex<Option<Client>>,
}

impl Log {
    /// Runs `f` on the connection, opening one when there is none; when
    /// the connection turns out to have broken under `f` (the database
    /// restarted since), once more on a new one.
    fn with<T>(&self, f: impl Fn(&mut Client) -> Result<T>) -> Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let mut retried = false;
        loop {
            if guard.as_ref().map_or(true, |c| c.is_closed()) {
                *guard = Some(self.pools.connect(&self.role, &self.password)?);
            }
            let result = f(guard.as_mut().expect("connected above"));
            if guard.as_ref().is_some_and(|c| c.is_closed()) {
                *guard = None;
                if result.is_err() && !retried {
                    retried = true;
                    continue;
                }
            }
            return result;
        }
    }

    /// Runs `f` once, on a connection first checked to be alive (replaced
    /// when the database restarted since its last use): for writes, which
    /// `with` could repeat after one had committed but its answer was lost.
    fn with_once<T>(&self, f: impl FnOnce(&mut Client) -> Result<T>) -> Result<T> {
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        let alive = |c: &mut Client| !c.is_closed() && c.is_valid(PING).is_ok();
        if !guard.as_mut().is_some_and(alive) {
            *guard = Some(self.pools.connect(&self.role, &self.password)?);
        }
        let result = f(guard.as_mut().expect("connected above"));
        if guard.as_ref().is_some_and(|c| c.is_closed()) {
            *guard = None;
        }
        result
    }

    fn targets(&self, channel: &str) -> Result<Vec<Target>> {
        self.with(|c| {
            Ok(c.query(
                "SELECT id, name, url, secret, format FROM pgprompt.prompt_webhooks WHERE enabled AND $1 = ANY (channels) ORDER BY id",
                &[&channel],
            )?
            .iter()
            .map(|r| Target { id: r.get(0), name: r.get(1), url: r.get(2), secret: r.get(3), format: r.get(4) })
            .collect())
        })
    }

    fn record(&self, t: &Target, e: &Event, attempt: u32, a: &Attempt) -> Result<()> {
        let status = a.status.map(i32::from);
        let ms = a.took.as_millis().min(i32::MAX as u128) as i32;
        self.with_once(|c| {
            c.execute(
                "INSERT INTO pgprompt.prompt_webhook_deliveries
                     (webhook_id, webhook, event_id, channel, payload, attempt, status, error, delivered, duration_ms)
                 VALUES ($1, $2, $3, $4, $5::text::jsonb, $6, $7, $8, $9, $10)",
                &[&t.id, &t.name, &e.id, &e.channel, &json_or_string(&e.payload), &(attempt as i32), &status, &a.error, &a.delivered, &ms],
            )?;
            Ok(())
        })
    }
}

/// A payload as jsonb text (a payload that is not JSON is kept as a string).
fn json_or_string(payload: &str) -> String {
    match serde_json::from_str::<Value>(payload) {
        Ok(_) => payload.to_string(),
        Err(_) => Value::String(payload.to_string()).to_string(),
    }
}

/// Fails unless the role may read `prompt_events` (reads no row).
fn can_read_events(c: &mut Client) -> Result<()> {
    c.execute("SELECT 1 FROM pgprompt.prompt_events LIMIT 0", &[])?;
    Ok(())
}

/// What `start_checked` prepared: run it on the runtime.
pub struct Dispatcher {
    http: reqwest::Client,
    log: Arc<Log>,
    settings: Settings,
    rx: mpsc::Receiver<Event>,
}

/// Checks the role can read `prompt_webhooks` and `prompt_events` (failing
/// at start, not at the first event) and starts the listening thread. Blocking: call it off the
/// async threads.
pub fn start_checked(pools: Arc<Pools>, role: String, password: String, settings: Settings) -> Result<Dispatcher> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(settings.timeout)
        .user_agent(concat!("pgprompt/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::local(format!("the webhook client: {e}")))?;
    let log = Arc::new(Log { pools: pools.clone(), role: role.clone(), password: password.clone(), client: Mutex::new(None) });
    log.targets(CHANNELS[0]).map_err(|e| Error { message: format!("webhooks: {}", e.message), ..e })?;
    log.with(can_read_events).map_err(|e| Error { message: format!("webhooks: {}", e.message), ..e })?;
    let (tx, rx) = mpsc::channel::<Event>(1024);
    std::thread::Builder::new()
        .name("pgprompt-listen".into())
        .spawn(move || listen(&pools, &role, &password, &tx))
        .map_err(|e| Error::local(e.to_string()))?;
    Ok(Dispatcher { http, log, settings, rx })
}

impl Dispatcher {
    /// Delivers events as they come, each webhook in a task of its own, at
    /// most `IN_FLIGHT` at once (the rest wait their turn).
    pub fn run(mut self) {
        const IN_FLIGHT: usize = 64;
        let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(event) = self.rx.recv().await {
                let (l, channel) = (self.log.clone(), event.channel.clone());
                let found = tokio::task::spawn_blocking(move || l.targets(&channel)).await;
                let targets = match found {
                    Ok(Ok(t)) => t,
                    Ok(Err(e)) => {
                        eprintln!("pgprompt serve: webhooks: could not read prompt_webhooks: {e}");
                        continue;
                    }
                    Err(_) => continue,
                };
                for t in targets {
                    let Ok(permit) = permits.clone().acquire_owned().await else { return };
                    let (http, log, settings, event) = (self.http.clone(), self.log.clone(), self.settings.clone(), event.clone());
                    tokio::spawn(async move {
                        deliver(http, log, settings, t, event).await;
                        drop(permit);
                    });
                }
            }
        });
    }
}

/// LISTENs forever, reconnecting after the database went away; after each
/// notification, each reconnection and every `CATCH_UP`, reads the events
/// the last read's snapshot did not see (`read_events`). The first connection starts from the
/// newest event: what happened before the server started is not sent.
fn listen(pools: &Pools, role: &str, password: &str, tx: &mpsc::Sender<Event>) {
    let mut wait = Duration::from_millis(500);
    let mut cursor: Option<Cursor> = None;
    loop {
        // Connected, listening and able to read the events; else wait
        // longer each time and try again.
        let ready = pools.connect(role, password).and_then(|mut client| {
            client.batch_execute(&CHANNELS.map(|c| format!("LISTEN {c};")).concat())?;
            can_read_events(&mut client)?;
            Ok(client)
        });
        let mut client = match ready {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pgprompt serve: webhooks: cannot listen ({e}); retrying in {} s", wait.as_secs_f32());
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        wait = Duration::from_millis(500);
        let mut pruned: Option<Instant> = None;
        loop {
            match read_events(&mut client, &mut cursor, |e| tx.blocking_send(e).is_ok()) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    eprintln!("pgprompt serve: webhooks: cannot read prompt_events: {e}");
                    break;
                }
            }
            // Old events go here, not where they are written (a DELETE
            // there would make concurrent changes wait on each other).
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE) {
                if let Err(e) = client.execute("DELETE FROM pgprompt.prompt_events WHERE created_at < now() - interval '7 days'", &[]) {
                    eprintln!("pgprompt serve: webhooks: cannot prune prompt_events: {e}");
                }
                pruned = Some(Instant::now());
            }
            // Wait for a notification (whatever it says) or the catch-up.
            use pgprompt_client::postgres::fallible_iterator::FallibleIterator;
            {
                let mut notes = client.notifications();
                if notes.timeout_iter(CATCH_UP).next().is_err() {
                    break;
                }
                // Several notifications at once need one read.
                while let Ok(Some(_)) = notes.iter().next() {}
            }
            if client.is_closed() {
                break;
            }
        }
    }
}

/// Where the listener is: the events table (its OID: a new one when the
/// extension was made anew, by DROP and CREATE EXTENSION or a restore), the
/// snapshot of its last read (the events it did not see are new), and how
/// far ids are settled, so a read scans only above that.
struct Cursor {
    table: u32,
    seen: String,
    /// Every event with an id at or below this was committed (and seen)
    /// or never will be.
    floor: i64,
    /// Per read not yet settled: its snapshot's xmax and the highest id
    /// allocated just before it. Once every transaction below that xmax has
    /// ended, no id at or below that one can still appear.
    pending: VecDeque<(u64, i64)>,
}

/// Reads the events committed since the last read and hands each to
/// `send` (false: stop, nobody receives them any more); Ok(false) when
/// `send` refused. The first read sends none: what happened before the
/// server started is not sent. In an events table made anew, every event is
/// new. The cursor moves only after a read that succeeded and was sent.
fn read_events(client: &mut Client, cursor: &mut Option<Cursor>, mut send: impl FnMut(Event) -> bool) -> Result<bool> {
    // The highest id allocated so far, read before the snapshot: every id
    // up to it belongs to a transaction that is committed in the snapshot
    // or running in it.
    let allocated: i64 =
        client.query_one("SELECT coalesce(pg_catalog.pg_sequence_last_value('pgprompt.prompt_events_id_seq'), 0)", &[])?.get(0);
    let mut tx = client
        .build_transaction()
        .isolation_level(pgprompt_client::postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let now = tx.query_one(
        "SELECT 'pgprompt.prompt_events'::regclass::oid, s::text, pg_catalog.pg_snapshot_xmin(s)::text, pg_catalog.pg_snapshot_xmax(s)::text
           FROM pg_catalog.pg_current_snapshot() s",
        &[],
    )?;
    let (table, snapshot): (u32, String) = (now.get(0), now.get(1));
    let number = |i: usize| -> Result<u64> { now.get::<_, String>(i).parse().map_err(|e| Error::local(format!("a transaction id: {e}"))) };
    let (xmin, xmax) = (number(2)?, number(3)?);
    let (floor, seen) = match cursor.as_ref() {
        None => {
            tx.commit()?;
            *cursor = Some(Cursor { table, seen: snapshot, floor: 0, pending: VecDeque::from([(xmax, allocated)]) });
            return Ok(true);
        }
        Some(c) if c.table != table => (0, None),
        Some(c) => (c.floor, Some(c.seen.clone())),
    };
    let rows = tx.query(
        "SELECT id, channel, payload::text, (extract(epoch FROM created_at) * 1000)::bigint
           FROM pgprompt.prompt_events
          WHERE id > $1 AND ($2::text IS NULL OR NOT pg_catalog.pg_visible_in_snapshot(xid, $2::text::pg_catalog.pg_snapshot))
          ORDER BY id",
        &[&floor, &seen],
    )?;
    tx.commit()?;
    for r in &rows {
        let (id, at): (i64, i64) = (r.get(0), r.get(3));
        if !send(Event { id: format!("evt_{id}_{at}"), channel: r.get(1), payload: r.get(2) }) {
            return Ok(false);
        }
    }
    let c = cursor.as_mut().expect("set on the first read");
    if c.table != table {
        *c = Cursor { table, seen: String::new(), floor: 0, pending: VecDeque::new() };
    }
    c.seen = snapshot;
    c.pending.push_back((xmax, allocated));
    while let Some(&(x, id)) = c.pending.front() {
        if x > xmin {
            break;
        }
        c.floor = c.floor.max(id);
        c.pending.pop_front();
    }
    Ok(true)
}

/// Delivers one event to one webhook: attempts with backoff, each logged.
async fn deliver(http: reqwest::Client, log: Arc<Log>, settings: Settings, t: Target, e: Event) {
    for attempt in 1..=settings.attempts.max(1) {
        if attempt > 1 {
            tokio::time::sleep(backoff(attempt, settings.backoff)).await;
        }
        let started = Instant::now();
        let outcome = match allowed(&t.url, &settings.hosts) {
            Err(why) => Attempt { status: None, error: Some(why), delivered: false, took: started.elapsed() },
            Ok(()) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                let payload = body(&t.format, &e, now);
                let sent = http
                    .post(&t.url)
                    .header("Content-Type", "application/json")
                    .header("Idempotency-Key", &e.id)
                    .header("X-Pgprompt-Event", &e.channel)
                    .header("X-Pgprompt-Timestamp", now.to_string())
                    .header("X-Pgprompt-Signature", signature(&t.secret, now, &payload))
                    .body(payload)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Attempt { status: Some(r.status().as_u16()), error: None, delivered: true, took: started.elapsed() },
                    Ok(r) => Attempt { status: Some(r.status().as_u16()), error: Some(format!("HTTP {}", r.status())), delivered: false, took: started.elapsed() },
                    Err(err) => {
                        let why = if err.is_timeout() { format!("timed out after {} ms", settings.timeout.as_millis()) } else { innermost(&err) };
                        Attempt { status: None, error: Some(why), delivered: false, took: started.elapsed() }
                    }
                }
            }
        };
        let (l, target, event, done, refused) = (log.clone(), t.clone(), e.clone(), outcome.delivered, outcome.error.as_deref().is_some_and(|w| w.contains("not loopback")));
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(err) = l.record(&target, &event, attempt, &outcome) {
                eprintln!("pgprompt serve: webhooks: could not log a delivery: {err}");
            }
        })
        .await;
        // Delivered, or a host that will never be allowed: no more attempts.
        if done || refused {
            return;
        }
    }
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231 test case 2 with the timestamp-dot-body message built in.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        let expected: String = hmac::sign(&key, b"what do ya want for nothing?").as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(expected, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
        let s = signature("Jefe", 1700000000, "{}");
        let direct: String = hmac::sign(&key, b"1700000000.{}").as_ref().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(s, format!("v1={direct}"));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes() {
        let first = Duration::from_secs(1);
        assert_eq!(backoff(2, first), Duration::from_secs(1));
        assert_eq!(backoff(3, first), Duration::from_secs(2));
        assert_eq!(backoff(5, first), Duration::from_secs(8));
        assert_eq!(backoff(40, first), Duration::from_secs(300));
    }

    #[test]
    fn only_loopback_and_allowed_hosts_are_contacted() {
        let hosts = vec!["hooks.slack.com".to_string(), "10.1.2.3".to_string()];
        for ok in ["http://127.0.0.1:9/x", "http://localhost/x", "http://[::1]:8080/", "https://hooks.slack.com/services/T/B/X", "http://10.1.2.3/"] {
            assert_eq!(allowed(ok, &hosts), Ok(()), "{ok}");
        }
        for bad in ["http://169.254.169.254/latest", "https://example.com/", "ftp://127.0.0.1/", "http://evil.com@127.0.0.2.evil.com/", "not a url"] {
            assert!(allowed(bad, &hosts).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_carry_the_event_or_a_slack_text() {
        let e = Event { id: "k1".into(), channel: "pgprompt_alerts".into(), payload: r#"{"rule": "error_rate", "metric": "error_rate", "value": 0.2, "threshold": 0.05, "window": "00:15:00"}"#.into() };
        let v: Value = serde_json::from_str(&body("json", &e, 5)).unwrap();
        assert_eq!((v["event_id"].as_str(), v["payload"]["rule"].as_str(), v["sent_at"].as_u64()), (Some("k1"), Some("error_rate"), Some(5)));
        let s: Value = serde_json::from_str(&body("slack", &e, 5)).unwrap();
        assert_eq!(s["text"], "pgprompt alert error_rate: error_rate = 0.2 (threshold 0.05, window 00:15:00)");
        let sneaky = Event { id: "k2".into(), channel: "pgprompt_changes".into(), payload: r#""<!channel> <https://x|y> & co""#.into() };
        let s: Value = serde_json::from_str(&body("slack", &sneaky, 5)).unwrap();
        assert_eq!(s["text"], "pgprompt change: \"&lt;!channel&gt; &lt;https://x|y&gt; &amp; co\"");
    }
}
