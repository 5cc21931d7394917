//! The admin API's answers as types: the handlers return these, and the OpenAPI document is
//! generated from them (`utoipa`), so the document cannot drift from what is served. Built from
//! the store's types here, at the edge; the store and the engine stay free of API concerns.

use serde::Serialize;
use serde_json::Value;
use tierd_plugin_host::PluginInfo;
use tierd_store::{PendingPush, Run, StoredSignal, TierChange, WorkProgress};
use utoipa::ToSchema;

use super::ManualRun;
use crate::schedule::{rfc3339, NextRuns};

/// `{"status": ...}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok` or `ready`.
    pub status: String,
}

/// An error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in words.
    pub error: String,
}

/// This instance's part in a deployment.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Schedules and starts runs.
    Leader,
    /// Waits to take over.
    Standby,
}

impl Role {
    pub(super) fn of(leading: bool) -> Role {
        if leading {
            Role::Leader
        } else {
            Role::Standby
        }
    }
}

/// When each scheduled job runs next (RFC 3339, UTC).
#[derive(Debug, Serialize, ToSchema)]
pub struct NextScheduled {
    /// The next full run; `null` when disabled.
    pub full: Option<String>,
    /// The next incremental run; `null` when disabled.
    pub incremental: Option<String>,
}

impl NextScheduled {
    pub(super) fn of(next: Option<NextRuns>) -> Option<NextScheduled> {
        next.map(|n| NextScheduled {
            full: n.full.map(rfc3339),
            incremental: n.incremental.map(rfc3339),
        })
    }
}

/// One run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunBody {
    /// Its id.
    pub id: i64,
    /// `full`, `incremental`, `dry_run` or `pilot`.
    pub kind: String,
    /// `running`, `succeeded`, `failed` or `interrupted`.
    pub status: String,
    /// The model's `name@version`.
    pub model_version: String,
    /// The instance that ran it (`host:pid`).
    pub owner: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended, if it did.
    pub finished_at: Option<String>,
    /// Where the next incremental run starts.
    pub watermark: Option<String>,
    /// What it did: counts, pyramid, movements, timings.
    #[schema(value_type = Object)]
    pub stats: Option<Value>,
    /// Why it failed or stopped.
    pub error: Option<String>,
}

impl From<&Run> for RunBody {
    fn from(run: &Run) -> Self {
        RunBody {
            id: run.id.0,
            kind: run.kind.as_str().to_string(),
            status: run.status.as_str().to_string(),
            model_version: run.model_version.clone(),
            owner: run.owner.clone(),
            started_at: rfc3339(run.started_at),
            finished_at: run.finished_at.map(rfc3339),
            watermark: run.watermark.clone(),
            stats: run.stats.clone(),
            error: run.error.clone(),
        }
    }
}

/// Recent runs and this instance's view of the schedule.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunsPage {
    /// This instance's id.
    pub instance: String,
    /// Its role.
    pub role: Role,
    /// The scheduler's next fire times (leader only).
    pub next_scheduled: Option<NextScheduled>,
    /// Manual runs waiting for the leader.
    pub queued: Vec<ManualRun>,
    /// Runs, newest first.
    pub runs: Vec<RunBody>,
}

/// A manual run accepted.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// The run asked for.
    pub queued: ManualRun,
    /// Its place in the queue (1: next).
    pub position: usize,
}

/// A run's work items by state.
#[derive(Debug, Serialize, ToSchema)]
pub struct Work {
    /// Waiting for an instance.
    pub queued: u64,
    /// Being worked on.
    pub claimed: u64,
    /// Finished.
    pub done: u64,
    /// Given up.
    pub failed: u64,
}

impl From<WorkProgress> for Work {
    fn from(w: WorkProgress) -> Self {
        Work {
            queued: w.queued,
            claimed: w.claimed,
            done: w.done,
            failed: w.failed,
        }
    }
}

/// One run with its work items.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunBody,
    /// Its work items by state.
    pub work: Work,
}

/// This instance's role and the next scheduled runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleBody {
    /// Its role.
    pub role: Role,
    /// The next fire times (leader only).
    pub next_scheduled: Option<NextScheduled>,
}

/// One change of an account's tier.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    /// The run that made it.
    pub run: i64,
    /// When (RFC 3339).
    pub at: String,
    /// The tier before (`null`: first tiering).
    pub from: Option<String>,
    /// The tier after.
    pub to: String,
    /// The score then.
    pub score: f64,
    /// Why, in a seller's words.
    pub reason: String,
    /// The model that scored it.
    pub model_version: String,
}

impl From<&TierChange> for HistoryEntry {
    fn from(h: &TierChange) -> Self {
        HistoryEntry {
            run: h.run.0,
            at: rfc3339(h.at),
            from: h.from.map(|t| t.as_str().to_string()),
            to: h.to.as_str().to_string(),
            score: h.score,
            reason: h.reason.clone(),
            model_version: h.model_version.clone(),
        }
    }
}

/// A dated event seen for an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignalBody {
    /// What happened (`technology_adopted`, `renewal_within`, ...).
    pub kind: String,
    /// What it happened to, empty when nothing.
    pub subject: String,
    /// The day it happened (`YYYY-MM-DD`).
    pub date: String,
    /// Who saw it.
    pub source: String,
    /// When it was first recorded (RFC 3339).
    pub observed_at: String,
}

impl From<&StoredSignal> for SignalBody {
    fn from(s: &StoredSignal) -> Self {
        SignalBody {
            kind: s.kind.clone(),
            subject: s.subject.clone(),
            date: s.date.to_string(),
            source: s.source.clone(),
            observed_at: rfc3339(s.observed_at),
        }
    }
}

/// A tier update the CRM refused or deferred, kept to retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingBody {
    /// The account.
    pub account: String,
    /// The tier to write.
    pub tier: String,
    /// The score bucket to write.
    pub score_bucket: f64,
    /// The reason text to write.
    pub reason: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The CRM's reason for the last refusal.
    pub last_error: String,
    /// Never retried on its own: the CRM called the record invalid.
    pub permanent: bool,
    /// Not retried before this (RFC 3339).
    pub next_attempt_at: String,
    /// When it was first refused (RFC 3339).
    pub first_failed_at: String,
}

impl From<&PendingPush> for PendingBody {
    fn from(p: &PendingPush) -> Self {
        PendingBody {
            account: p.account.clone(),
            tier: p.tier.as_str().to_string(),
            score_bucket: p.score_bucket,
            reason: p.reason.clone(),
            attempts: p.attempts,
            last_error: p.last_error.clone(),
            permanent: p.permanent,
            next_attempt_at: rfc3339(p.next_attempt_at),
            first_failed_at: rfc3339(p.first_failed_at),
        }
    }
}

/// Pending and permanently refused tier updates.
#[derive(Debug, Serialize, ToSchema)]
pub struct PendingList {
    /// Oldest first.
    pub pending: Vec<PendingBody>,
}

/// What tierd last wrote to the CRM for an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushedBody {
    /// The tier.
    pub tier: String,
    /// The score bucket.
    pub score_bucket: f64,
    /// The reason text.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// One account as the store holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    /// Its id in the CRM (`hubspot:123`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its domain.
    pub domain: Option<String>,
    /// Its score, 0..=5.
    pub score: f64,
    /// The share of the model's weight that had data, 0..=1.
    pub coverage: f64,
    /// Estimated potential annual value.
    pub potential_value: f64,
    /// Its tier.
    pub tier: String,
    /// A person locked its tier.
    pub locked: bool,
    /// The model that scored it.
    pub model_version: String,
    /// When it was scored (RFC 3339).
    pub scored_at: String,
    /// How long ago.
    pub scored_age_seconds: i64,
    /// Each fact: value, source, observed_at and age_days on the scoring date, stale, replaced.
    #[schema(value_type = Object)]
    pub facts: Value,
    /// The score's breakdown and reasons.
    #[schema(value_type = Object)]
    pub explanation: Value,
    /// What tierd last wrote.
    pub pushed: Option<PushedBody>,
    /// The tier the CRM showed at the last pull.
    pub crm_tier_seen: Option<String>,
    /// A tier update waiting to be retried.
    pub pending_push: Option<PendingBody>,
    /// Its last tier changes, newest first.
    pub tier_history: Vec<HistoryEntry>,
    /// Its signals.
    pub signals: Vec<SignalBody>,
}

/// HTTP counters of a plugin's host capability.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginHttp {
    /// Requests sent.
    pub requests: u64,
    /// Requests without a response or with a 5xx.
    pub errors: u64,
    /// Requests refused by the allowlist.
    pub refused: u64,
    /// Sum of latencies.
    pub latency_seconds_total: f64,
}

/// A declared fact.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactBody {
    /// `namespace.fact`.
    pub name: String,
    /// `number`, `string`, `bool`, `date`, `string_list` or `date_list`.
    #[serde(rename = "type")]
    pub fact_type: String,
}

/// A running plugin.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginBody {
    /// The configured name.
    pub name: String,
    /// The version it reported.
    pub version: String,
    /// The ABI it was built for.
    pub abi: String,
    /// `in_process`, `isolated` or `exec`.
    pub mode: String,
    /// The facts it declared.
    pub facts: Vec<FactBody>,
    /// The signal kinds it declared.
    pub signals: Vec<String>,
    /// Hosts its HTTP capability may reach.
    pub allowed_hosts: Vec<String>,
    /// Accounts per call.
    pub batch_size: usize,
    /// Its HTTP counters, when it made requests.
    pub http: Option<PluginHttp>,
}

impl PluginBody {
    pub(super) fn of(p: PluginInfo, http: Option<PluginHttp>) -> Self {
        PluginBody {
            facts: p
                .facts
                .iter()
                .map(|f| FactBody {
                    name: f.name.clone(),
                    fact_type: serde_json::to_value(f.fact_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                })
                .collect(),
            name: p.name,
            version: p.version,
            abi: p.abi,
            mode: p.mode.as_str().to_string(),
            signals: p.signals,
            allowed_hosts: p.allowed_hosts,
            batch_size: p.batch_size,
            http,
        }
    }
}

/// The running plugins.
#[derive(Debug, Serialize, ToSchema)]
pub struct PluginList {
    /// In configuration order.
    pub plugins: Vec<PluginBody>,
}
