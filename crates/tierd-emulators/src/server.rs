//! What every emulator shares: binding and graceful shutdown, the fault gate in front of
//! the vendor routes, the `/__admin` routes, request statistics and small JSON helpers.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context as _;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{splitmix, FaultAction, FaultPatch, Faults};
use crate::writes::WriteCounter;

/// What an emulator served, for `GET /__admin/stats` and the Rust API.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EmulatorStats {
    /// Requests received on the vendor routes (admin routes excluded).
    pub requests: u64,
    /// 429 answers, from rate limits and storms.
    pub rate_limited: u64,
    /// 5xx answers injected by faults.
    pub server_errors: u64,
    /// Connections dropped by faults.
    pub dropped: u64,
    /// Record writes applied (see [`crate::WriteLog`]).
    pub writes: u64,
    /// The most requests admitted within one rolling rate-limit window (HubSpot: the
    /// ten-second window or the search second), 0 while no limit is on: what a client
    /// pacing itself to the limit is judged by, without timing it.
    pub busiest_window: u64,
    /// The most vendor requests being answered at once: how many a client had in flight.
    pub most_in_flight: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Stats {
    requests: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    server_errors: AtomicU64,
    dropped: AtomicU64,
    correlation: AtomicU64,
    busiest_window: AtomicU64,
    in_flight: AtomicU64,
    most_in_flight: AtomicU64,
}

impl Stats {
    pub(crate) fn snapshot(&self, writes: &WriteCounter) -> EmulatorStats {
        EmulatorStats {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            server_errors: self.server_errors.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            writes: writes.total(),
            busiest_window: self.busiest_window.load(Ordering::Relaxed),
            most_in_flight: self.most_in_flight.load(Ordering::Relaxed),
        }
    }

    /// Records that a rate-limit window now holds `admitted` requests.
    pub(crate) fn count_window(&self, admitted: usize) {
        self.busiest_window.fetch_max(admitted as u64, Ordering::Relaxed);
    }

    pub(crate) fn count_rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    /// A fresh UUID-shaped id for error bodies (HubSpot's `correlationId`).
    pub(crate) fn correlation_id(&self) -> String {
        let n = self.correlation.fetch_add(1, Ordering::Relaxed);
        let (a, b) = (splitmix(n), splitmix(n ^ 0xabcdef));
        format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            b >> 52,
            b & 0xffff_ffff_ffff
        )
    }
}

/// How one vendor answers injected faults.
pub(crate) struct Gate {
    pub(crate) faults: Faults,
    pub(crate) stats: Arc<Stats>,
    pub(crate) rate_limited: fn(&Stats) -> Response,
    pub(crate) server_error: fn(&Stats) -> Response,
}

/// The outermost layer on vendor routes: counts the request, then applies latency, storms,
/// 5xx and drops before the request reaches auth, rate limits or the handler (so a faulted
/// request never writes anything).
pub(crate) async fn fault_gate(State(gate): State<Arc<Gate>>, req: Request, next: Next) -> Response {
    gate.stats.requests.fetch_add(1, Ordering::Relaxed);
    let _in_flight = InFlight::enter(&gate.stats);
    let (latency, action) = gate.faults.next_action();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match action {
        FaultAction::Pass => next.run(req).await,
        FaultAction::RateLimited => {
            gate.stats.count_rate_limited();
            (gate.rate_limited)(&gate.stats)
        }
        FaultAction::ServerError => {
            gate.stats.server_errors.fetch_add(1, Ordering::Relaxed);
            (gate.server_error)(&gate.stats)
        }
        FaultAction::Drop => {
            gate.stats.dropped.fetch_add(1, Ordering::Relaxed);
            dropped_connection()
        }
    }
}

/// One request being answered, counted in [`Stats`] until it is dropped (answered or abandoned).
struct InFlight<'a>(&'a Stats);

impl<'a> InFlight<'a> {
    fn enter(stats: &'a Stats) -> Self {
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.most_in_flight.fetch_max(now, Ordering::Relaxed);
        InFlight(stats)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A response whose body fails at once: hyper then aborts the connection, so the client
/// sees it closed before a complete response arrived.
fn dropped_connection() -> Response {
    let failing = futures_util::stream::once(async {
        Err::<Bytes, io::Error>(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "fault injection: dropped",
        ))
    });
    Response::new(Body::from_stream(failing))
}

/// `GET /__admin/stats`, `GET|POST /__admin/faults`: unauthenticated, never faulted.
pub(crate) fn admin_routes(faults: Faults, stats: Arc<Stats>, writes: WriteCounter) -> Router {
    let f2 = faults.clone();
    Router::new()
        .route(
            "/__admin/stats",
            get(move || {
                let s = stats.snapshot(&writes);
                async move { Json(s) }
            }),
        )
        .route(
            "/__admin/faults",
            get(move || {
                let s = f2.settings();
                async move { Json(s) }
            })
            .post(move |body: Bytes| async move {
                let patch: FaultPatch = match serde_json::from_slice(&body) {
                    Ok(p) => p,
                    Err(e) => {
                        return (
                            StatusCode::BAD_REQUEST,
                            format!("fault settings are not valid JSON: {e}"),
                        )
                            .into_response()
                    }
                };
                match faults.apply(&patch) {
                    Ok(s) => Json(s).into_response(),
                    Err(e) => (StatusCode::BAD_REQUEST, e).into_response(),
                }
            }),
        )
}

/// A running emulator's HTTP server.
#[derive(Debug)]
pub(crate) struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<io::Result<()>>,
}

impl Running {
    /// Binds 127.0.0.1:`port` (0 = any free port) and serves `router` until [`Running::shutdown`].
    pub(crate) async fn start(router: Router, port: u16, what: &str) -> anyhow::Result<Running> {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} for the {what} emulator"))?;
        let addr = listener
            .local_addr()
            .context("cannot read the emulator's bound address")?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Running { addr, stop, task })
    }

    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("emulator on {} stopped with an error: {e}", self.addr),
            Err(e) => tracing::warn!("emulator task on {} failed: {e}", self.addr),
        }
    }
}

/// A JSON response from an already serialised body.
pub(crate) fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    r
}

/// A JSON response from a value.
pub(crate) fn json_value(status: StatusCode, v: &serde_json::Value) -> Response {
    json_bytes(status, serde_json::to_vec(v).unwrap_or_default())
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Decodes `application/x-www-form-urlencoded` text (form bodies, query strings).
pub(crate) fn form_pairs(s: &str) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_pairs_decode_plus_and_percent() {
        let p = form_pairs("q=SELECT+Id%2C+Name+FROM+Account&x=%zz&y");
        assert_eq!(p[0], ("q".into(), "SELECT Id, Name FROM Account".into()));
        assert_eq!(p[1], ("x".into(), "%zz".into()));
        assert_eq!(p[2], ("y".into(), String::new()));
    }

    #[test]
    fn json_strings_are_escaped_only_when_needed() {
        let mut out = Vec::new();
        push_json_str(&mut out, "plain");
        push_json_str(&mut out, "a\"b");
        assert_eq!(String::from_utf8(out).unwrap(), r#""plain""a\"b""#);
    }
}
