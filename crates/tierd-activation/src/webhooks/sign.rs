//! Standard Webhooks 1.0 symmetric signatures.
//!
//! Checked against the specification (standard-webhooks/standard-webhooks, `spec/standard-webhooks.md`,
//! version 1.0.0): the signed content is `msg_id.timestamp.payload` (the `webhook-id`, the
//! `webhook-timestamp` in integer Unix seconds, and the exact body, joined by full stops); the
//! signature is HMAC-SHA256 with the secret's bytes as key, base64-encoded and prefixed `v1,`;
//! secrets are 24 to 64 random bytes serialised as `whsec_` + base64. The headers are
//! `webhook-id`, `webhook-timestamp` and `webhook-signature` (a space-separated list; tierd sends
//! one signature).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::WebhookSecret;

/// The `webhook-id` header.
pub const ID_HEADER: &str = "webhook-id";
/// The `webhook-timestamp` header.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The `webhook-signature` header.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` value for a message: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn signature(secret: &WebhookSecret, id: &str, timestamp_secs: i64, body: &str) -> String {
    // Any key length is valid for HMAC, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.key()).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp_secs.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_reference_libraries_test_vector() {
        // The message of the reference implementations' tests (libraries/python/tests); the
        // expected signature was computed with Python's hmac, hashlib and base64.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid secret");
        assert_eq!(
            signature(
                &secret,
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                r#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
