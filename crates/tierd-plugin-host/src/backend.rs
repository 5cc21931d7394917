//! Running one plugin in its mode: in the host process, or in child processes speaking the
//! stdio protocol (`isolated` children are `tierd plugin-host`; `exec` children are the plugin).
//!
//! A backend answers one question: "here is an enrich request, what did the plugin say?" Failures
//! come back as text for the batch; batching, caching and fact checks live in `set`.

use std::ffi::OsString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::{Deserialize, DeserializeOwned};
use serde_json::Value;
use tierd_plugin_api::{Description, DnsBatch, DnsResults, HttpBatch, HttpResults};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::{oneshot, Semaphore};

use crate::dns::DnsCapability;
use crate::error::HostError;
use crate::http::HttpCapability;
use crate::library::{HostCallbacks, PluginLibrary};
use crate::protocol::{
    encode, encode_enrich, read_frame, write_frame, FromPlugin, ToPlugin, CAPABILITIES, PROTOCOL_VERSION,
};
use crate::secret::Redactor;
use crate::{Mode, PluginConfig};

/// Writes a plugin's log line into tracing under its name.
pub(crate) fn emit_log(plugin: &str, level: &str, message: &str) {
    match level {
        "error" => tracing::error!(plugin, "{message}"),
        "warn" => tracing::warn!(plugin, "{message}"),
        "info" => tracing::info!(plugin, "{message}"),
        "debug" => tracing::debug!(plugin, "{message}"),
        _ => tracing::trace!(plugin, "{message}"),
    }
}

fn level_name(level: u32) -> &'static str {
    ["error", "warn", "info", "debug"]
        .get(level as usize)
        .copied()
        .unwrap_or("trace")
}

/// How the host starts the child of `isolated` mode.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Program and leading arguments; `--library PATH` is appended.
    /// [default: this executable with `plugin-host`, i.e. `tierd plugin-host`]
    pub child_command: Vec<OsString>,
}

impl Default for HostOptions {
    fn default() -> Self {
        let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tierd"));
        HostOptions {
            child_command: vec![exe.into_os_string(), "plugin-host".into()],
        }
    }
}

/// What starting a plugin learned.
pub(crate) struct Started {
    pub(crate) abi: String,
    pub(crate) description: Description,
}

/// Everything a call needs to know about its plugin.
pub(crate) struct CallContext {
    pub(crate) plugin: String,
    pub(crate) timeout: Duration,
    pub(crate) http: Arc<HttpCapability>,
    pub(crate) dns: Arc<DnsCapability>,
    pub(crate) redactor: Redactor,
    pub(crate) init_config: Value,
}

pub(crate) enum Backend {
    InProcess(InProcess),
    Children(ChildPool),
}

impl Backend {
    pub(crate) async fn start(
        cfg: &PluginConfig,
        ctx: Arc<CallContext>,
        options: &HostOptions,
    ) -> Result<(Backend, Started), HostError> {
        match cfg.mode {
            Mode::InProcess => {
                let path = cfg.path.clone().unwrap_or_default();
                let (backend, started) = InProcess::start(path, ctx).await?;
                Ok((Backend::InProcess(backend), started))
            }
            Mode::Isolated | Mode::Exec => {
                let (program, args) = if cfg.mode == Mode::Exec {
                    let command = cfg.command.clone().unwrap_or_default();
                    (
                        command.into_os_string(),
                        cfg.args.iter().map(OsString::from).collect(),
                    )
                } else {
                    let mut parts = options.child_command.clone();
                    if parts.is_empty() {
                        parts.push("tierd".into());
                    }
                    let program = parts.remove(0);
                    parts.push("--library".into());
                    parts.push(cfg.path.clone().unwrap_or_default().into_os_string());
                    (program, parts)
                };
                let pool = ChildPool {
                    spec: Arc::new(ChildSpec {
                        ctx,
                        program,
                        args,
                        env: cfg.process_environment(),
                        max_message_bytes: cfg.max_message_bytes,
                        exec: cfg.mode == Mode::Exec,
                    }),
                    idle: Mutex::new((0..cfg.concurrency.max(1)).map(|_| Worker::default()).collect()),
                    gate: Semaphore::new(cfg.concurrency.max(1)),
                };
                let started = pool.start().await?;
                Ok((Backend::Children(pool), started))
            }
        }
    }

    /// Sends one enrich request (`EnrichRequest` JSON); `Err` fails the whole batch.
    pub(crate) async fn enrich(
        &self,
        request: Vec<u8>,
        batch_domains: Arc<Vec<String>>,
    ) -> Result<EnrichAnswer, String> {
        match self {
            Backend::InProcess(p) => p.enrich(request, batch_domains).await,
            Backend::Children(pool) => pool.enrich(request, batch_domains).await,
        }
    }

    pub(crate) async fn shutdown(&self) {
        match self {
            Backend::InProcess(p) => p.shutdown().await,
            Backend::Children(pool) => pool.shutdown().await,
        }
    }
}

/// A plugin's answer to an enrich request, not yet decoded: the caller decodes it once, into
/// types that borrow from it (account keys are not copied out).
pub(crate) enum EnrichAnswer {
    /// The `EnrichResponse` JSON itself (the C ABI).
    Bare(Vec<u8>),
    /// An `ok` protocol message whose `body` is the `EnrichResponse` (the stdio protocol).
    Framed(Vec<u8>),
}

impl EnrichAnswer {
    pub(crate) fn decode<'a, T: Deserialize<'a>>(&'a self) -> Result<T, String> {
        let invalid =
            |e: &dyn std::fmt::Display| format!("the plugin's answer is not a valid enrich response: {e}");
        // The whole answer is checked to be UTF-8 once, then parsed as text: parsing bytes checks
        // every string on its own, which costs more than the rest for short strings.
        let (EnrichAnswer::Bare(bytes) | EnrichAnswer::Framed(bytes)) = self;
        let text = std::str::from_utf8(bytes).map_err(|e| invalid(&e))?;
        let decoded = match self {
            EnrichAnswer::Bare(_) => serde_json::from_str(text),
            EnrichAnswer::Framed(_) => serde_json::from_str::<Answer<T>>(text).map(|a| a.body),
        };
        decoded.map_err(|e| invalid(&e))
    }
}

// ---- in_process ----

struct InProcessCallbacks {
    ctx: Arc<CallContext>,
    runtime: tokio::runtime::Handle,
    batch_domains: Arc<Mutex<Arc<Vec<String>>>>,
}

impl HostCallbacks for InProcessCallbacks {
    fn log(&self, level: u32, message: &str) {
        emit_log(
            &self.ctx.plugin,
            level_name(level),
            &self.ctx.redactor.redact(message),
        );
    }

    fn http(&self, batch: &[u8]) -> Result<Vec<u8>, String> {
        let batch: HttpBatch = serde_json::from_slice(batch).map_err(|e| format!("bad HTTP batch: {e}"))?;
        let domains = self
            .batch_domains
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // Plugin calls run on their own thread, outside the runtime, where blocking on it is allowed.
        let responses = self.runtime.block_on(self.ctx.http.run(batch.requests, domains));
        serde_json::to_vec(&HttpResults { responses }).map_err(|e| e.to_string())
    }

    fn dns(&self, batch: &[u8]) -> Result<Vec<u8>, String> {
        let batch: DnsBatch = serde_json::from_slice(batch).map_err(|e| format!("bad DNS batch: {e}"))?;
        let domains = self
            .batch_domains
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // As for HTTP: plugin calls run on their own thread, outside the runtime.
        let answers = self.runtime.block_on(self.ctx.dns.run(batch.queries, domains));
        serde_json::to_vec(&DnsResults { answers }).map_err(|e| e.to_string())
    }
}

/// A call into the library, run on its call thread.
type LibraryCall = Box<dyn FnOnce(&PluginLibrary) -> Result<Vec<u8>, String> + Send>;

/// Where a queued call stands; the call thread and the waiting caller race to move it out of
/// `RUNNING`, so exactly one of them decides whether the call counts as timed out.
const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const ABANDONED: u8 = 2;

struct Job {
    call: LibraryCall,
    /// Told when the call starts: its timeout runs from there, not from when it was queued.
    started: oneshot::Sender<()>,
    answer: oneshot::Sender<Result<Vec<u8>, String>>,
    state: Arc<AtomicU8>,
}

/// Calls into the library run one at a time on a thread of their own, fed by a queue: the next
/// batch's call starts as soon as the previous one returns, without waiting for the async task
/// that made the previous call to be woken (with `spawn_blocking` and a lock held across the
/// call, two thread wake-ups sat between consecutive calls, costing more than the calls).
pub(crate) struct InProcess {
    library: Arc<PluginLibrary>,
    ctx: Arc<CallContext>,
    /// What the HTTP capability allows for `{account.domain}` during the current call.
    batch_domains: Arc<Mutex<Arc<Vec<String>>>>,
    jobs: std::sync::mpsc::Sender<Job>,
    /// Shared by the call threads; locked only to take the next job, so a replacement thread
    /// can take over the queue from one stuck in a call.
    queue: Arc<Mutex<std::sync::mpsc::Receiver<Job>>>,
}

impl InProcess {
    async fn start(path: PathBuf, ctx: Arc<CallContext>) -> Result<(InProcess, Started), HostError> {
        let batch_domains = Arc::new(Mutex::new(Arc::new(Vec::new())));
        let callbacks = Arc::new(InProcessCallbacks {
            ctx: ctx.clone(),
            runtime: tokio::runtime::Handle::current(),
            batch_domains: batch_domains.clone(),
        });
        let library = Arc::new(PluginLibrary::open(&path, callbacks)?);
        let (jobs, queue) = std::sync::mpsc::channel();
        let this = InProcess {
            library,
            ctx,
            batch_domains,
            jobs,
            queue: Arc::new(Mutex::new(queue)),
        };
        this.spawn_call_thread().map_err(|e| this.failed("start", e))?;
        let config = serde_json::to_vec(&this.ctx.init_config).unwrap_or_default();
        this.blocking("init", move |lib| lib.init(&config)).await?;
        let description = this.blocking("describe", |lib| lib.describe()).await?;
        let description: Description = serde_json::from_slice(&description)
            .map_err(|e| this.failed("describe", format!("the plugin's description is not valid: {e}")))?;
        let (major, minor, _, _) = this.library.identity();
        Ok((
            this,
            Started {
                abi: format!("{major}.{minor}"),
                description,
            },
        ))
    }

    /// Starts a thread taking calls from the queue until the queue closes (the backend is
    /// dropped) or a call it runs is abandoned at its timeout (a replacement is started then).
    fn spawn_call_thread(&self) -> Result<(), String> {
        let (library, queue) = (self.library.clone(), self.queue.clone());
        let run = move || loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(job) = next else { return };
            if job.started.send(()).is_err() {
                continue; // the caller went away while the call was queued
            }
            let answer = catch_unwind(AssertUnwindSafe(|| (job.call)(&library)))
                .unwrap_or_else(|_| Err("the host panicked while calling the plugin".to_owned()));
            let finished = job
                .state
                .compare_exchange(RUNNING, FINISHED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            let _ = job.answer.send(answer);
            if !finished {
                return; // abandoned: another thread serves the queue now
            }
        };
        std::thread::Builder::new()
            .name(format!("plugin {}", self.ctx.plugin))
            .spawn(run)
            .map(drop)
            .map_err(|e| format!("cannot start a thread for the plugin's calls: {e}"))
    }

    fn failed(&self, call: &'static str, message: String) -> HostError {
        HostError::Call {
            plugin: self.ctx.plugin.clone(),
            call,
            message: self.ctx.redactor.redact(&message),
        }
    }

    /// Runs a plugin call on the call thread under the call timeout. A call that times out
    /// cannot be stopped in-process; it is abandoned (and keeps its thread, which exits if the
    /// call ever returns) and a new thread serves the next calls - use `isolated` for plugins
    /// that may hang.
    async fn blocking(
        &self,
        call: &'static str,
        f: impl FnOnce(&PluginLibrary) -> Result<Vec<u8>, String> + Send + 'static,
    ) -> Result<Vec<u8>, HostError> {
        let (started, started_rx) = oneshot::channel();
        let (answer, mut answer_rx) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(RUNNING));
        let job = Job {
            call: Box::new(f),
            started,
            answer,
            state: state.clone(),
        };
        let gone = || self.failed(call, "the plugin's call thread stopped".to_owned());
        self.jobs.send(job).map_err(|_| gone())?;
        started_rx.await.map_err(|_| gone())?;
        let answer = match tokio::time::timeout(self.ctx.timeout, &mut answer_rx).await {
            Ok(answer) => answer,
            Err(_) => {
                let abandoned = state
                    .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok();
                if !abandoned {
                    // It returned right at the deadline: its answer is being sent.
                    answer_rx.await
                } else {
                    if let Err(e) = self.spawn_call_thread() {
                        tracing::error!(plugin = %self.ctx.plugin, error = %e, "plugin calls stopped");
                    }
                    return Err(self.failed(
                        call,
                        format!(
                            "no answer within {} ms (timeout_ms)",
                            self.ctx.timeout.as_millis()
                        ),
                    ));
                }
            }
        };
        match answer {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(message)) => Err(self.failed(call, message)),
            Err(_) => Err(gone()),
        }
    }

    async fn enrich(
        &self,
        request: Vec<u8>,
        batch_domains: Arc<Vec<String>>,
    ) -> Result<EnrichAnswer, String> {
        // Set on the call thread, right before this call: calls run one at a time there, so the
        // HTTP capability sees the domains of the batch in progress.
        let domains = self.batch_domains.clone();
        let bytes = self
            .blocking("enrich", move |lib| {
                *domains.lock().unwrap_or_else(|p| p.into_inner()) = batch_domains;
                lib.enrich(&request)
            })
            .await
            .map_err(|e| match e {
                HostError::Call { message, .. } => message,
                other => other.to_string(),
            })?;
        Ok(EnrichAnswer::Bare(bytes))
    }

    async fn shutdown(&self) {
        let _ = self
            .blocking("shutdown", |lib| {
                lib.shutdown();
                Ok(Vec::new())
            })
            .await;
    }
}

// ---- isolated / exec ----

pub(crate) struct ChildSpec {
    ctx: Arc<CallContext>,
    program: OsString,
    args: Vec<OsString>,
    /// The child's whole environment (`PluginConfig::process_environment`).
    env: Vec<(OsString, OsString)>,
    max_message_bytes: usize,
    exec: bool,
}

/// How a call into a child failed.
enum Failure {
    /// The plugin answered `error`: the child is fine.
    Plugin(String),
    /// The child crashed, hung, or broke the protocol: it is killed and restarted later.
    Broken(String),
}

struct ChildProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl ChildProcess {
    async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// One child slot: its process when running, and its restart back-off.
#[derive(Default)]
struct Worker {
    process: Option<ChildProcess>,
    failures: u32,
    next_start: Option<Instant>,
}

/// Back-off before restarting after `failures` consecutive failures: the first restart is
/// immediate (one crash should cost one batch), then 250 ms doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    Duration::from_millis(250u64.saturating_mul(1 << (failures - 2).min(7))).min(Duration::from_secs(30))
}

pub(crate) struct ChildPool {
    spec: Arc<ChildSpec>,
    /// Workers not in use; a permit of `gate` guarantees one is here.
    idle: Mutex<Vec<Worker>>,
    gate: Semaphore,
}

impl ChildPool {
    async fn with_worker<T>(&self, f: impl AsyncFnOnce(&mut Worker) -> T) -> T {
        let _permit = self.gate.acquire().await;
        let mut worker = self
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or_default();
        let out = f(&mut worker).await;
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).push(worker);
        out
    }

    async fn start(&self) -> Result<Started, HostError> {
        let spec = self.spec.clone();
        let failed = |message: String| HostError::Call {
            plugin: spec.ctx.plugin.clone(),
            call: "start",
            message: spec.ctx.redactor.redact(&message),
        };
        let (init, description) = self
            .with_worker(async |worker: &mut Worker| {
                let init = worker.ensure_started(&spec).await?;
                let description = worker
                    .call(&spec, encode(&ToPlugin::Describe), Arc::default())
                    .await;
                Ok::<_, String>((init, description))
            })
            .await
            .map_err(failed)?;
        let description: Description = match description {
            Ok(frame) => {
                answer(&frame).map_err(|e| failed(format!("the plugin's description is not valid: {e}")))?
            }
            Err(Failure::Plugin(m) | Failure::Broken(m)) => return Err(failed(format!("describe: {m}"))),
        };
        let abi = match (init.get("abi_major"), init.get("abi_minor")) {
            (Some(major), Some(minor)) if !self.spec.exec => format!("{major}.{minor}"),
            _ => format!("exec protocol {PROTOCOL_VERSION}"),
        };
        Ok(Started { abi, description })
    }

    async fn enrich(
        &self,
        request: Vec<u8>,
        batch_domains: Arc<Vec<String>>,
    ) -> Result<EnrichAnswer, String> {
        let spec = self.spec.clone();
        self.with_worker(async |worker: &mut Worker| {
            worker.ensure_started(&spec).await?;
            match worker.call(&spec, encode_enrich(&request), batch_domains).await {
                Ok(frame) => Ok(EnrichAnswer::Framed(frame)),
                Err(Failure::Plugin(m) | Failure::Broken(m)) => Err(m),
            }
        })
        .await
    }

    async fn shutdown(&self) {
        let workers: Vec<Worker> = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|p| p.into_inner()));
        for worker in workers {
            if let Some(mut p) = worker.process {
                let _ = write_frame(&mut p.stdin, &ToPlugin::Shutdown).await;
                if tokio::time::timeout(Duration::from_secs(2), p.child.wait())
                    .await
                    .is_err()
                {
                    p.kill().await;
                }
            }
        }
    }
}

impl Worker {
    /// Starts the child if it is not running (respecting back-off) and sends `init`; returns the
    /// init answer.
    async fn ensure_started(&mut self, spec: &ChildSpec) -> Result<Value, String> {
        if self.process.is_some() {
            return Ok(Value::Null);
        }
        if let Some(at) = self.next_start {
            let wait = at.saturating_duration_since(Instant::now());
            if wait > spec.ctx.timeout {
                return Err(format!(
                    "the plugin process failed {} times in a row; next restart in {} ms",
                    self.failures,
                    wait.as_millis()
                ));
            }
            tokio::time::sleep(wait).await;
        }
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                self.failed();
                format!("cannot start {}: {e}", PathBuf::from(&spec.program).display())
            })?;
        if let Some(stderr) = child.stderr.take() {
            // Ends by itself when the child's stderr closes (the child exits or is killed).
            let (plugin, redactor) = (spec.ctx.plugin.clone(), spec.ctx.redactor.clone());
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(plugin, stderr = %redactor.redact(&line), "plugin wrote to stderr");
                }
            });
        }
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            self.failed();
            return Err("the plugin process has no stdin/stdout".to_owned());
        };
        self.process = Some(ChildProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        });
        let init = ToPlugin::Init {
            protocol: PROTOCOL_VERSION,
            config: spec.ctx.init_config.clone(),
            capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        };
        match self.call(spec, encode(&init), Arc::default()).await {
            Ok(frame) => Ok(answer::<Value>(&frame).unwrap_or(Value::Null)),
            Err(Failure::Plugin(m)) => {
                // A plugin that refuses its config will refuse it again: stop it and back off.
                if let Some(p) = self.process.take() {
                    p.kill().await;
                }
                self.failed();
                Err(format!("init: {m}"))
            }
            Err(Failure::Broken(m)) => Err(format!("init: {m}")),
        }
    }

    fn failed(&mut self) {
        self.failures += 1;
        self.next_start = Some(Instant::now() + backoff(self.failures));
    }

    /// One request/answer exchange, serving the child's log, http and dns messages meanwhile, all
    /// under the call timeout. Anything but a clean answer kills the child.
    async fn call(
        &mut self,
        spec: &ChildSpec,
        frame: Vec<u8>,
        batch_domains: Arc<Vec<String>>,
    ) -> Result<Vec<u8>, Failure> {
        let Some(process) = self.process.as_mut() else {
            return Err(Failure::Broken("the plugin process is not running".to_owned()));
        };
        let exchange = converse(spec, process, &frame, batch_domains);
        let outcome = match tokio::time::timeout(spec.ctx.timeout, exchange).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Broken(format!(
                "no answer within {} ms (timeout_ms); the plugin process was killed",
                spec.ctx.timeout.as_millis()
            ))),
        };
        let redact = |m: String| spec.ctx.redactor.redact(&m);
        match outcome {
            Ok(v) => {
                self.failures = 0;
                self.next_start = None;
                Ok(v)
            }
            Err(Failure::Plugin(m)) => Err(Failure::Plugin(redact(m))),
            Err(Failure::Broken(m)) => {
                if let Some(mut p) = self.process.take() {
                    let status = p.child.try_wait().ok().flatten();
                    p.kill().await;
                    self.failed();
                    if let Some(status) = status {
                        return Err(Failure::Broken(redact(format!("{m} ({status})"))));
                    }
                }
                Err(Failure::Broken(redact(m)))
            }
        }
    }
}

async fn converse(
    spec: &ChildSpec,
    process: &mut ChildProcess,
    frame: &[u8],
    batch_domains: Arc<Vec<String>>,
) -> Result<Vec<u8>, Failure> {
    let broken = |m: String| Failure::Broken(m);
    write_all(&mut process.stdin, frame)
        .await
        .map_err(|e| broken(format!("cannot write to the plugin process: {e}")))?;
    loop {
        let body = match read_frame(&mut process.stdout, spec.max_message_bytes).await {
            Ok(body) => body,
            Err(crate::protocol::FrameError::Closed) => {
                // Give the exit status a moment to appear so the error can say "signal 11".
                let _ = tokio::time::timeout(Duration::from_millis(200), process.child.wait()).await;
                return Err(broken("the plugin process exited or crashed".to_owned()));
            }
            Err(e) => return Err(broken(e.to_string())),
        };
        // The answer is returned undecoded so it is decoded once, straight into its type.
        if serde_json::from_slice::<Head>(&body).is_ok_and(|h| h.kind == "ok") {
            return Ok(body);
        }
        let reply: FromPlugin = serde_json::from_slice(&body).map_err(|e| {
            let shown: String = String::from_utf8_lossy(&body[..body.len().min(60)]).into();
            broken(format!(
                "the plugin sent garbage instead of a protocol message ({e}): {shown:?}"
            ))
        })?;
        match reply {
            FromPlugin::Ok { .. } => return Ok(body),
            FromPlugin::Error { error } => return Err(Failure::Plugin(error)),
            FromPlugin::Log { level, message } => {
                emit_log(&spec.ctx.plugin, &level, &spec.ctx.redactor.redact(&message))
            }
            FromPlugin::Http { requests } => {
                let responses = spec.ctx.http.run(requests, batch_domains.clone()).await;
                write_frame(&mut process.stdin, &ToPlugin::HttpResult { responses })
                    .await
                    .map_err(|e| broken(format!("cannot write to the plugin process: {e}")))?;
            }
            FromPlugin::Dns { queries } => {
                let answers = spec.ctx.dns.run(queries, batch_domains.clone()).await;
                write_frame(&mut process.stdin, &ToPlugin::DnsResult { answers })
                    .await
                    .map_err(|e| broken(format!("cannot write to the plugin process: {e}")))?;
            }
        }
    }
}

/// Just the kind of a message, to route it without decoding its body.
#[derive(serde::Deserialize)]
struct Head {
    kind: String,
}

/// The body of an `ok` message.
#[derive(serde::Deserialize)]
struct Answer<T> {
    body: T,
}

fn answer<T: DeserializeOwned>(frame: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice::<Answer<T>>(frame).map(|a| a.body)
}

async fn write_all(w: &mut ChildStdin, frame: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    w.write_all(frame).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_restarts_at_once_then_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(250));
        assert_eq!(backoff(3), Duration::from_millis(500));
        assert_eq!(backoff(40), Duration::from_secs(30));
    }
}
