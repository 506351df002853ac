//! Who is logged in: signed session cookies, CSRF tokens, API tokens and
//! the login rate limit. Pure logic over a key and a clock (no HTTP, no
//! database), so it is tested on its own.
//!
//! A cookie is `<session id>.<expiry, Unix seconds>.<HMAC-SHA256 of both>`,
//! base64url. The signature lets the server refuse a forged or altered
//! cookie before looking anything up; the session itself (role, password
//! for the role's connections, CSRF token) stays in this process's memory,
//! so a server restart logs everyone out and nothing secret is ever sent
//! to the browser.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Random bytes from the operating system, base64url: session ids, CSRF
/// and API tokens, the signing key.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new().fill(&mut buf).expect("the system random generator works");
    B64.encode(buf)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Equal in time independent of where two secrets first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Signs and checks cookies with one HMAC-SHA256 key.
pub struct Signer {
    key: hmac::Key,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Signer {
        Signer { key: hmac::Key::new(hmac::HMAC_SHA256, secret) }
    }

    /// The cookie value for a session id valid until `expires` (Unix seconds).
    pub fn cookie(&self, id: &str, expires: u64) -> String {
        let payload = format!("{id}.{expires}");
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!("{payload}.{}", B64.encode(tag.as_ref()))
    }

    /// The session id a cookie carries, if its signature is this key's and
    /// it has not expired at `now`.
    pub fn verify(&self, cookie: &str, now: u64) -> Result<String, CookieError> {
        let mut parts = cookie.rsplitn(2, '.');
        let (Some(tag), Some(payload)) = (parts.next(), parts.next()) else { return Err(CookieError::Forged) };
        let tag = B64.decode(tag).map_err(|_| CookieError::Forged)?;
        hmac::verify(&self.key, payload.as_bytes(), &tag).map_err(|_| CookieError::Forged)?;
        let (id, expires) = payload.split_once('.').ok_or(CookieError::Forged)?;
        let expires: u64 = expires.parse().map_err(|_| CookieError::Forged)?;
        if expires <= now {
            return Err(CookieError::Expired);
        }
        Ok(id.to_string())
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum CookieError {
    /// Not signed by this server (altered, made up, or from before a restart).
    Forged,
    Expired,
}

/// What a logged-in role may do, read once at login from its memberships.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Privileges {
    /// Reads the analytics views (`pgprompt_reader`).
    pub reader: bool,
    /// Reads the configuration: templates, guardrails, experiments (`pgprompt_app`).
    pub app: bool,
    /// Writes the configuration (`pgprompt_admin`).
    pub admin: bool,
    /// Releases what needs approval, moves protected labels (`pgprompt_releaser`).
    pub releaser: bool,
}

/// A logged-in role: a browser session or an API token.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: String,
    pub role: String,
    /// Kept in memory only, to open the role's connections.
    pub password: String,
    pub csrf: String,
    pub expires: u64,
    pub privileges: Privileges,
}

/// The sessions and API tokens of this process.
pub struct Sessions {
    pub signer: Signer,
    pub lifetime: Duration,
    by_id: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    pub fn new(secret: &[u8], lifetime: Duration) -> Sessions {
        Sessions { signer: Signer::new(secret), lifetime, by_id: Mutex::new(HashMap::new()) }
    }

    /// Opens a session for a role whose password the database accepted;
    /// returns it with its cookie value.
    pub fn open(&self, role: &str, password: &str, privileges: Privileges) -> (Session, String) {
        let expires = now_secs() + self.lifetime.as_secs();
        let session = Session {
            id: random_token(24),
            role: role.to_string(),
            password: password.to_string(),
            csrf: random_token(24),
            expires,
            privileges,
        };
        let cookie = self.signer.cookie(&session.id, expires);
        let mut map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| s.expires > now_secs());
        map.insert(session.id.clone(), session.clone());
        (session, cookie)
    }

    /// The session of a cookie (or an API token, which is a cookie value
    /// sent as a bearer token): signed here, unexpired, not logged out.
    pub fn find(&self, cookie: &str) -> Result<Session, CookieError> {
        let id = self.signer.verify(cookie, now_secs())?;
        let map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&id) {
            Some(s) if s.expires > now_secs() => Ok(s.clone()),
            Some(_) => Err(CookieError::Expired),
            // Logged out, or signed by this key before a restart with a
            // fixed secret: the session is gone either way.
            None => Err(CookieError::Expired),
        }
    }

    /// Drops expired sessions; returns the roles left without a session
    /// (their connections can go).
    pub fn sweep(&self) -> Vec<String> {
        let now = now_secs();
        let mut map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        let expired: Vec<String> = map.values().filter(|s| s.expires <= now).map(|s| s.role.clone()).collect();
        map.retain(|_, s| s.expires > now);
        let mut gone: Vec<String> = expired.into_iter().filter(|r| !map.values().any(|s| &s.role == r)).collect();
        gone.sort();
        gone.dedup();
        gone
    }

    /// Signs a message shown after a redirect (`done=`), so a link made
    /// elsewhere cannot put words of its own on a page of this server.
    pub fn sign_text(&self, text: &str) -> String {
        B64.encode(hmac::sign(&self.signer.key, format!("done:{text}").as_bytes()).as_ref())
    }

    /// Whether `sig` is this server's signature of `text`.
    pub fn signed(&self, text: &str, sig: &str) -> bool {
        B64.decode(sig).is_ok_and(|tag| hmac::verify(&self.signer.key, format!("done:{text}").as_bytes(), &tag).is_ok())
    }

    /// Ends a session; true if the role has no other session left (its
    /// connections can go).
    pub fn close(&self, id: &str) -> Option<(String, bool)> {
        let mut map = self.by_id.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.remove(id)?;
        let last = !map.values().any(|o| o.role == s.role);
        Some((s.role, last))
    }
}

/// Failed logins per client address: after `max_failures` within
/// `window`, logins from that address are refused until the oldest ages
/// out. Each failure is also answered only after a delay (in the handler),
/// so guessing is slow even under the limit.
pub struct LoginLimiter {
    pub max_failures: usize,
    pub window: Duration,
    failures: Mutex<HashMap<IpAddr, Vec<SystemTime>>>,
}

impl LoginLimiter {
    pub fn new(max_failures: usize, window: Duration) -> LoginLimiter {
        LoginLimiter { max_failures, window, failures: Mutex::new(HashMap::new()) }
    }

    /// Counts a login attempt from `addr` before it is made (so attempts
    /// sent at once count together), or says how long `addr` must wait.
    /// A successful login clears the count (`succeeded`).
    pub fn attempt(&self, addr: IpAddr, now: SystemTime) -> Result<(), Duration> {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(addr).or_default();
        list.retain(|t| now.duration_since(*t).map(|d| d < self.window).unwrap_or(true));
        if list.len() >= self.max_failures {
            let oldest = list.iter().min().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest).unwrap_or_default()).max(Duration::from_secs(1)));
        }
        list.push(now);
        Ok(())
    }

    pub fn succeeded(&self, addr: IpAddr) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&addr);
    }

    /// Forgets addresses whose attempts have all aged out.
    pub fn sweep(&self, now: SystemTime) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, list| {
            list.retain(|t| now.duration_since(*t).map(|d| d < self.window).unwrap_or(true));
            !list.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_verify_only_unaltered_and_unexpired() {
        let s = Signer::new(b"key one");
        let c = s.cookie("abc", 2000);
        assert_eq!(s.verify(&c, 1000), Ok("abc".to_string()));
        assert_eq!(s.verify(&c, 2000), Err(CookieError::Expired));
        // Another key, a changed expiry, a changed id, garbage.
        assert_eq!(Signer::new(b"key two").verify(&c, 1000), Err(CookieError::Forged));
        assert_eq!(s.verify(&c.replace(".2000.", ".9999."), 1000), Err(CookieError::Forged));
        assert_eq!(s.verify(&c.replacen("abc", "abd", 1), 1000), Err(CookieError::Forged));
        for bad in ["", ".", "..", "abc.2000", "abc.2000.!!", "a.b.c.d"] {
            assert_eq!(s.verify(bad, 1000), Err(CookieError::Forged), "{bad}");
        }
    }

    #[test]
    fn sessions_open_find_and_close() {
        let sessions = Sessions::new(b"k", Duration::from_secs(60));
        let (a, cookie) = sessions.open("alice", "pw", Privileges::default());
        let (_, other) = sessions.open("alice", "pw2", Privileges::default());
        assert_eq!(sessions.find(&cookie).unwrap().role, "alice");
        assert_eq!(sessions.close(&a.id), Some(("alice".to_string(), false)));
        assert_eq!(sessions.find(&cookie).unwrap_err(), CookieError::Expired);
        let id = sessions.signer.verify(&other, now_secs()).unwrap();
        assert_eq!(sessions.close(&id), Some(("alice".to_string(), true)));
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "ab"));
        assert_ne!(random_token(24), random_token(24));
    }

    #[test]
    fn the_limiter_counts_attempts_as_they_start_then_forgets() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        // Three attempts at once (none finished yet): the fourth waits.
        for i in 0..3 {
            assert_eq!(l.attempt(ip, t0 + Duration::from_secs(i)), Ok(()));
        }
        assert_eq!(l.attempt(ip, t0 + Duration::from_secs(10)), Err(Duration::from_secs(50)));
        assert_eq!(l.attempt(ip, t0 + Duration::from_secs(61)), Ok(()), "the oldest attempt aged out");
        l.succeeded(ip);
        assert_eq!(l.attempt(ip, t0 + Duration::from_secs(62)), Ok(()));
        l.sweep(t0 + Duration::from_secs(200));
        assert!(l.failures.lock().unwrap().is_empty(), "aged-out addresses are forgotten");
    }
}
