//! Bearer-token authentication of the admin API, compared in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;

use super::ApiError;

/// The admin API's bearer token. Debug and Display print `***`.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token of at least [`super::settings::MIN_TOKEN_LEN`] characters; the error says why not,
    /// without repeating the value.
    pub fn new(value: String) -> Result<Token, String> {
        let value = value.trim().to_string();
        if value.is_empty() {
            return Err("it is not set".into());
        }
        if value.chars().count() < super::settings::MIN_TOKEN_LEN {
            return Err(format!(
                "it is shorter than {} characters",
                super::settings::MIN_TOKEN_LEN
            ));
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

/// Middleware: lets the request through only with `Authorization: Bearer <token>`.
pub async fn require_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    match presented {
        Some(p) if token.matches(p) => next.run(request).await,
        Some(_) => ApiError::unauthorized("the bearer token is wrong").into_response_with_challenge(),
        None => ApiError::unauthorized("send the API token as `Authorization: Bearer <token>`")
            .into_response_with_challenge(),
    }
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
