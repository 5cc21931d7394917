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

impl ApiSettings {
    /// Each problem of the file itself as (key under `api`, what is wrong). The token's presence
    /// is checked when the daemon starts ([`ApiSettings::token`]), so `config validate` works on a
    /// machine without the secret.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
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

    /// The bearer token from the environment; an error a person can act on when it is missing or
    /// too short. The error names the variable, never its value.
    pub fn token(&self) -> Result<crate::api::auth::Token, String> {
        let value = std::env::var(&self.token_env).unwrap_or_default();
        crate::api::auth::Token::new(value).map_err(|why| {
            format!(
                "the admin API needs a bearer token in ${}: {why}; set it (e.g. `openssl rand -hex 32`) \
                 or disable the API with [api] enabled = false",
                self.token_env
            )
        })
    }
}
