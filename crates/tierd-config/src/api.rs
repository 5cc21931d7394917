//! `[api]`: where the admin API listens and where its bearer token comes from.
//!
//! The token itself never sits in the configuration file: only the name of the environment
//! variable holding it (`token_env`), so the file can be committed and the secret lives in the
//! systemd `EnvironmentFile` or the orchestrator's secret store.

use serde::Deserialize;

/// Shortest accepted token: shorter ones are guessable over a network.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[api]`: the admin API.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Serve the admin API at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// Address and port to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The environment variable holding the bearer token (at least 16 characters).
    #[serde(default = "default_token_env")]
    pub token_env: String,
}

fn default_enabled() -> bool {
    true
}
fn default_listen() -> String {
    "127.0.0.1:8686".to_string()
}
fn default_token_env() -> String {
    "TIERD_API_TOKEN".to_string()
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            enabled: default_enabled(),
            listen: default_listen(),
            token_env: default_token_env(),
        }
    }
}

impl crate::Checked for ApiSettings {
    /// Each problem of the file itself. The token's presence is checked when the daemon starts
    /// ([`ApiSettings::token`]), so `config validate` works on a machine without the secret.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            out.push((
                "listen",
                format!(
                    "'{}' is not an address and port such as \"127.0.0.1:8686\"",
                    self.listen
                ),
            ));
        }
        if self.token_env.trim().is_empty() {
            out.push((
                "token_env",
                "must name an environment variable, e.g. \"TIERD_API_TOKEN\"".into(),
            ));
        }
        out
    }
}

impl ApiSettings {
    /// The bearer token from the environment; an error a person can act on when it is missing or
    /// too short. The error names the variable, never its value.
    pub fn token(&self) -> Result<Token, String> {
        let value = std::env::var(&self.token_env).unwrap_or_default();
        Token::new(value).map_err(|why| {
            format!(
                "the admin API needs a bearer token in ${}: {why}; set it (e.g. `openssl rand -hex 32`) \
                 or disable the API with [api] enabled = false",
                self.token_env
            )
        })
    }
}

/// The admin API's bearer token. Debug and Display print `***`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token of at least [`MIN_TOKEN_LEN`] characters; the error says why not,
    /// without repeating the value.
    pub fn new(value: String) -> Result<Token, String> {
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err("it is not set".into());
        }
        if value.chars().count() < MIN_TOKEN_LEN {
            return Err(format!("it is shorter than {} characters", MIN_TOKEN_LEN));
        }
        Ok(Token(value))
    }

    /// Whether `presented` is this token, in time independent of where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Equality whose running time depends on the lengths only, not on the first differing byte, so
/// an attacker timing responses learns nothing about the token's prefix. The length of the
/// expected token is not treated as secret (it is at least 16 characters of entropy anyway).
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    // Always walk the expected token's length, whatever was presented.
    for (i, e) in expected.iter().enumerate() {
        let p = presented.get(i).copied().unwrap_or(!e);
        diff |= e ^ p;
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_whole_values() {
        assert!(constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmno"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b"abcdefghijklmnopq"));
        assert!(!constant_time_eq(b"abcdefghijklmnop", b""));
        // A presented value whose byte equals the filler used past its end still fails.
        assert!(!constant_time_eq(b"a", &[!b'a']));
    }

    #[test]
    fn short_or_missing_tokens_are_refused_without_echoing_them() {
        let err = Token::new("short-secret".into()).expect_err("too short");
        assert!(err.contains("shorter than 16"), "{err}");
        assert!(!err.contains("short-secret"));
        assert!(Token::new("   ".into()).is_err());
        let token = Token::new("0123456789abcdef".into()).expect("16 characters");
        assert_eq!(format!("{token:?} {token}"), "*** ***");
    }
}
