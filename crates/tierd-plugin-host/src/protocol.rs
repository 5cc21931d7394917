//! The stdio protocol between the host and an isolated child or exec plugin
//! (specified for plugin authors in `docs/plugin-protocol.md`).
//!
//! Framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON. Length-delimited
//! rather than newline-delimited so a reader knows a message's size before reading it, and can
//! refuse an oversized one without buffering it.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tierd_plugin_api::{DnsAnswer, DnsQuery, HttpRequest, HttpResponse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Protocol version, sent in `init`.
pub const PROTOCOL_VERSION: u32 = 1;

/// What the host offers, sent in `init` (`capabilities`): a plugin sends `dns` only to a host
/// listing it (hosts before it send no list).
pub const CAPABILITIES: &[&str] = &["http", "dns"];

/// Host to plugin.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ToPlugin {
    /// First message: the plugin's config. Answer: `ok` (any body) or `error`.
    Init {
        /// Always [`PROTOCOL_VERSION`] for now.
        protocol: u32,
        /// The `[plugins.<name>.config]` table, secrets resolved.
        config: Value,
        /// The host's capabilities ([`CAPABILITIES`]); absent from hosts before DNS.
        #[serde(default)]
        capabilities: Vec<String>,
    },
    /// Answer: `ok` with a `Description` body.
    Describe,
    /// Answer: `ok` with an `EnrichResponse` body.
    Enrich {
        /// An `EnrichRequest`.
        request: Value,
    },
    /// The answer to the plugin's `http` message, responses in request order.
    HttpResult {
        /// One per request.
        responses: Vec<HttpResponse>,
    },
    /// The answer to the plugin's `dns` message, answers in query order.
    DnsResult {
        /// One per query.
        answers: Vec<DnsAnswer>,
    },
    /// Last message; the plugin exits (the host kills it after a grace period).
    Shutdown,
}

/// Plugin to host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FromPlugin {
    /// The answer to the current request.
    Ok {
        /// The answer's JSON.
        #[serde(default)]
        body: Value,
    },
    /// The current request failed.
    Error {
        /// Why, for people.
        error: String,
    },
    /// A log line; may come at any time while a request is in progress.
    Log {
        /// `error`, `warn`, `info`, `debug` or `trace`.
        #[serde(default = "default_level")]
        level: String,
        /// The line.
        message: String,
    },
    /// Asks the host to run HTTP requests; the host answers with `http_result` before anything else.
    Http {
        /// Run concurrently.
        requests: Vec<HttpRequest>,
    },
    /// Asks the host to resolve DNS queries; the host answers with `dns_result` before anything else.
    Dns {
        /// Resolved concurrently.
        queries: Vec<DnsQuery>,
    },
}

fn default_level() -> String {
    "info".to_owned()
}

/// Why a frame could not be read.
#[derive(Debug)]
pub(crate) enum FrameError {
    /// The stream ended (between frames or inside one).
    Closed,
    /// A frame announced more than the limit.
    Oversized {
        len: usize,
        max: usize,
    },
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Closed => f.write_str("the plugin closed its output (exited or crashed)"),
            FrameError::Oversized { len, max } => write!(
                f,
                "the plugin sent a {len}-byte message, over the {max}-byte limit (max_message_bytes)"
            ),
            FrameError::Io(e) => write!(f, "reading from the plugin failed: {e}"),
        }
    }
}

fn closed_or(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Closed
    } else {
        FrameError::Io(e)
    }
}

pub(crate) fn encode(message: &impl Serialize) -> Vec<u8> {
    let body = serde_json::to_vec(message).unwrap_or_default();
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    frame
}

/// An `enrich` message around an already encoded `EnrichRequest`, without re-parsing it.
pub(crate) fn encode_enrich(request: &[u8]) -> Vec<u8> {
    const HEAD: &[u8] = br#"{"kind":"enrich","request":"#;
    let len = HEAD.len() + request.len() + 1;
    let mut frame = Vec::with_capacity(4 + len);
    frame.extend_from_slice(&(len as u32).to_be_bytes());
    frame.extend_from_slice(HEAD);
    frame.extend_from_slice(request);
    frame.push(b'}');
    frame
}

pub(crate) async fn read_frame(r: &mut (impl AsyncRead + Unpin), max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).await.map_err(closed_or)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(closed_or)?;
    Ok(body)
}

pub(crate) async fn write_frame(
    w: &mut (impl AsyncWrite + Unpin),
    message: &impl Serialize,
) -> io::Result<()> {
    w.write_all(&encode(message)).await?;
    w.flush().await
}

pub(crate) fn read_frame_sync(r: &mut impl Read, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len).map_err(closed_or)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(closed_or)?;
    Ok(body)
}

pub(crate) fn write_frame_sync(w: &mut impl Write, message: &impl Serialize) -> io::Result<()> {
    w.write_all(&encode(message))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_oversize() {
        let frame = encode(&FromPlugin::Error { error: "x".into() });
        assert_eq!(&frame[..4], &(frame.len() as u32 - 4).to_be_bytes());
        let body = read_frame_sync(&mut &frame[..], 1024).unwrap();
        let back: FromPlugin = serde_json::from_slice(&body).unwrap();
        assert!(matches!(back, FromPlugin::Error { error } if error == "x"));
        assert!(matches!(
            read_frame_sync(&mut &frame[..], 3),
            Err(FrameError::Oversized { max: 3, .. })
        ));
        assert!(matches!(
            read_frame_sync(&mut &frame[..6], 1024),
            Err(FrameError::Closed)
        ));
    }

    #[test]
    fn enrich_frames_wrap_the_request_verbatim() {
        let frame = encode_enrich(br#"{"as_of":"2026-11-24","accounts":[]}"#);
        let body = read_frame_sync(&mut &frame[..], 1024).unwrap();
        let m: ToPlugin = serde_json::from_slice(&body).unwrap();
        assert!(matches!(m, ToPlugin::Enrich { request } if request["as_of"] == "2026-11-24"));
    }

    #[test]
    fn messages_use_the_documented_json() {
        let m = serde_json::to_value(ToPlugin::Describe).unwrap();
        assert_eq!(m, serde_json::json!({"kind": "describe"}));
        let dns: FromPlugin =
            serde_json::from_str(r#"{"kind":"dns","queries":[{"name":"acme.test","type":"MX"}]}"#).unwrap();
        assert!(matches!(dns, FromPlugin::Dns { queries } if queries[0] == DnsQuery::mx("acme.test")));
        let init: ToPlugin = serde_json::from_str(r#"{"kind":"init","protocol":1,"config":{}}"#).unwrap();
        assert!(matches!(init, ToPlugin::Init { capabilities, .. } if capabilities.is_empty()));
        let log: FromPlugin = serde_json::from_str(r#"{"kind":"log","message":"hi"}"#).unwrap();
        assert!(matches!(log, FromPlugin::Log { level, .. } if level == "info"));
    }
}
