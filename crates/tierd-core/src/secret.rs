//! Credentials (API tokens, OAuth secrets, plugin API keys) that cannot leak by printing.
//!
//! One type for the whole workspace: connectors hold CRM tokens in it, the plugin host its
//! plugins' keys, and plugins (through `tierd-plugin-api`, which re-exports it) their own.

use std::fmt;

/// A credential. Debug and Display print `***`, so it cannot leak through logs, errors or
/// metrics; [`Secret::expose`] is the one way to read it. Deserialises from a plain string.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that must send it (a header, a token request).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether there is no credential at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print_and_read_from_a_plain_string() {
        #[derive(serde::Deserialize)]
        struct Section {
            token: Secret,
        }
        let s = toml::from_str::<Section>("token = \"pat-na1-abc\"")
            .expect("a string")
            .token;
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "pat-na1-abc");
        assert!(!s.is_empty() && Secret::new("").is_empty());
    }
}
