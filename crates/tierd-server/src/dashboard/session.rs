//! Signed-in sessions of the dashboard: a person signs in with the admin token once and then
//! holds a random session id in an `HttpOnly; SameSite=Strict` cookie (`Secure` behind TLS); the
//! token itself never travels again, and never in a URL. Each session has its own CSRF token,
//! which every form that changes something carries. Sessions live in this process's memory: a
//! restart signs everyone out, which is the safe default for an admin surface.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "tierd_session";
/// A session ends this long after sign-in.
const LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions held at most; the oldest goes first (a client looping on sign-in cannot fill memory).
const MAX_SESSIONS: usize = 1024;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token its forms carry.
    pub csrf: String,
    expires: Instant,
}

/// The sessions of this process.
#[derive(Default)]
pub struct Sessions {
    by_id: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex, from the operating system's generator.
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares two secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Sessions {
    /// Starts a session; returns its id (the cookie's value).
    pub fn start(&self) -> Result<String, getrandom::Error> {
        let id = random_hex()?;
        let session = Session {
            csrf: random_hex()?,
            expires: Instant::now() + LIFETIME,
        };
        let mut map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The live session with this id.
    pub fn get(&self, id: &str) -> Option<Session> {
        let map = self.by_id.lock().unwrap_or_else(|p| p.into_inner());
        map.iter()
            .find(|(k, s)| same(k, id) && s.expires > Instant::now())
            .map(|(_, s)| s.clone())
    }

    /// Ends the session with this id.
    pub fn end(&self, id: &str) {
        self.by_id.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(session: &Session, presented: &str) -> bool {
        same(&session.csrf, presented)
    }
}

/// The session id in a `Cookie` header, if any.
pub fn cookie_value(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value that holds `id`; `secure` when the page was served over TLS.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_ends() {
        let sessions = Sessions::default();
        let id = sessions.start().expect("random");
        assert_eq!(id.len(), 64);
        let s = sessions.get(&id).expect("live");
        assert!(Sessions::csrf_ok(&s, &s.csrf.clone()));
        assert!(!Sessions::csrf_ok(&s, "0"));
        assert!(sessions.get("nope").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn cookies_are_parsed_and_set_with_their_flags() {
        assert_eq!(cookie_value("a=1; tierd_session=abc; b=2"), Some("abc"));
        assert_eq!(cookie_value("a=1"), None);
        assert_eq!(
            set_cookie("abc", true),
            "tierd_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure"
        );
        assert!(!set_cookie("abc", false).contains("Secure"));
    }
}
