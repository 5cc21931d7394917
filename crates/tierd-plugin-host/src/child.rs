//! The child side of `isolated` mode: `tierd plugin-host --library PATH` loads one plugin library
//! and serves the stdio protocol for it, so a crash or hang in the plugin kills only this process.
//!
//! HTTP requests and DNS queries are relayed to the parent rather than run here: the parent owns the one HTTP
//! client, so the allowlist, rate limit and counters hold across restarts and across the several
//! children of one plugin, and the child needs no async runtime or TLS stack.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tierd_plugin_api::{DnsBatch, DnsResults, HttpBatch, HttpResults};

use crate::library::{HostCallbacks, PluginLibrary};
use crate::protocol::{read_frame_sync, write_frame_sync, FromPlugin, ToPlugin};

/// Largest message the child accepts from its parent (the parent is trusted; this only bounds
/// memory on a corrupted stream).
const MAX_FROM_PARENT: usize = 1 << 30;

struct Channel {
    input: BufReader<Box<dyn Read + Send>>,
    output: BufWriter<File>,
}

impl Channel {
    fn send(&mut self, message: &FromPlugin) -> io::Result<()> {
        write_frame_sync(&mut self.output, message)
    }

    fn receive(&mut self) -> io::Result<Option<ToPlugin>> {
        match read_frame_sync(&mut self.input, MAX_FROM_PARENT) {
            Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("bad message from host: {e}"))
            }),
            Err(crate::protocol::FrameError::Closed) => Ok(None),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }
}

struct Relay {
    channel: Arc<Mutex<Channel>>,
}

fn level_name(level: u32) -> &'static str {
    match level {
        0 => "error",
        1 => "warn",
        2 => "info",
        3 => "debug",
        _ => "trace",
    }
}

impl HostCallbacks for Relay {
    fn log(&self, level: u32, message: &str) {
        let mut channel = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        let _ = channel.send(&FromPlugin::Log {
            level: level_name(level).to_owned(),
            message: message.to_owned(),
        });
    }

    fn http(&self, batch: &[u8]) -> Result<Vec<u8>, String> {
        let batch: HttpBatch = serde_json::from_slice(batch).map_err(|e| format!("bad HTTP batch: {e}"))?;
        // The lock is held until the answer arrives: the parent answers an `http` message before
        // anything else, so nothing else may be read in between.
        let mut channel = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        channel
            .send(&FromPlugin::Http {
                requests: batch.requests,
            })
            .map_err(|e| format!("cannot reach the host: {e}"))?;
        match channel.receive() {
            Ok(Some(ToPlugin::HttpResult { responses })) => {
                serde_json::to_vec(&HttpResults { responses }).map_err(|e| e.to_string())
            }
            Ok(Some(other)) => Err(format!("host answered an http request with {other:?}")),
            Ok(None) => Err("the host closed the channel".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn dns(&self, batch: &[u8]) -> Result<Vec<u8>, String> {
        let batch: DnsBatch = serde_json::from_slice(batch).map_err(|e| format!("bad DNS batch: {e}"))?;
        // As for HTTP: the lock is held until the answer arrives.
        let mut channel = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        channel
            .send(&FromPlugin::Dns {
                queries: batch.queries,
            })
            .map_err(|e| format!("cannot reach the host: {e}"))?;
        match channel.receive() {
            Ok(Some(ToPlugin::DnsResult { answers })) => {
                serde_json::to_vec(&DnsResults { answers }).map_err(|e| e.to_string())
            }
            Ok(Some(other)) => Err(format!("host answered a dns request with {other:?}")),
            Ok(None) => Err("the host closed the channel".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Takes the process's stdout for the protocol and points file descriptor 1 at stderr, so a
/// plugin that prints cannot corrupt the protocol stream.
#[cfg(unix)]
fn protocol_output() -> io::Result<File> {
    use std::os::fd::AsFd as _;
    extern "C" {
        fn dup2(old: i32, new: i32) -> i32;
    }
    let out = io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on two descriptors this process owns (stderr onto stdout); no memory involved.
    if unsafe { dup2(2, 1) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(out))
}

#[cfg(not(unix))]
fn protocol_output() -> io::Result<File> {
    use std::os::windows::io::AsHandle as _;
    Ok(File::from(io::stdout().as_handle().try_clone_to_owned()?))
}

/// Serves the plugin library at `library` over stdin/stdout until the parent says `shutdown` or
/// closes stdin. A library that cannot be loaded is reported as the answer to every request.
pub fn serve_stdio(library: &Path) -> io::Result<()> {
    let output = protocol_output()?;
    let channel = Arc::new(Mutex::new(Channel {
        input: BufReader::new(Box::new(io::stdin())),
        output: BufWriter::new(output),
    }));
    let relay = Arc::new(Relay {
        channel: channel.clone(),
    });
    let plugin = PluginLibrary::open(library, relay).map_err(|e| e.to_string());

    loop {
        let message = channel.lock().unwrap_or_else(|p| p.into_inner()).receive()?;
        let Some(message) = message else { return Ok(()) };
        let answer = match (&plugin, message) {
            (_, ToPlugin::Shutdown) => {
                if let Ok(p) = &plugin {
                    p.shutdown();
                }
                return Ok(());
            }
            (Err(load_error), _) => Err(load_error.clone()),
            (Ok(p), message) => handle(p, message),
        };
        let reply = match answer {
            Ok(body) => FromPlugin::Ok { body },
            Err(error) => FromPlugin::Error { error },
        };
        channel.lock().unwrap_or_else(|p| p.into_inner()).send(&reply)?;
    }
}

fn handle(plugin: &PluginLibrary, message: ToPlugin) -> Result<Value, String> {
    let parse = |bytes: Vec<u8>| {
        serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("the plugin answered invalid JSON: {e}"))
    };
    match message {
        ToPlugin::Init { config, .. } => {
            let config = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
            plugin.init(&config)?;
            let (abi_major, abi_minor, name, version) = plugin.identity();
            Ok(json!({"abi_major": abi_major, "abi_minor": abi_minor, "name": name, "version": version}))
        }
        ToPlugin::Describe => parse(plugin.describe()?),
        ToPlugin::Enrich { request } => {
            let request = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
            parse(plugin.enrich(&request)?)
        }
        ToPlugin::HttpResult { .. } => Err("unexpected http_result: no HTTP request is pending".to_owned()),
        ToPlugin::DnsResult { .. } => Err("unexpected dns_result: no DNS query is pending".to_owned()),
        ToPlugin::Shutdown => Ok(Value::Null),
    }
}
