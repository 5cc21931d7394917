//! The run context: what every stage of one run reads (the pipeline, the scorer, the run's id,
//! kind and job, a pilot's spec), so stages take one argument instead of six.

use std::time::{Duration, Instant};

use tierd_store::{RunId, RunKind};

use crate::timings::{Stage, StageTimes};
use crate::{Job, PilotSpec, Pipeline, Scorer};

/// One run, as its stages see it.
pub(crate) struct RunCtx<'a> {
    pub(crate) p: &'a Pipeline,
    pub(crate) scorer: &'a Scorer,
    pub(crate) run: RunId,
    pub(crate) kind: RunKind,
    /// How it pulls and whether it applies hysteresis.
    pub(crate) job: Job,
    /// For pilots: which accounts take part.
    pub(crate) pilot: Option<&'a PilotSpec>,
    /// Time of the stages this instance runs once for the run (pull, queueing, tier, push and
    /// its commits, deals); work items carry their own (`BatchCounts::times`).
    pub(crate) times: std::sync::Mutex<StageTimes>,
}

/// A CRM-facing stage being timed (see [`RunCtx::clock`]).
pub(crate) struct StageClock {
    started: Instant,
    vendor: Duration,
}

impl StageClock {
    /// Adds to `stage` the time since the start, less `not_ours` (time another stage counted
    /// meanwhile), and the connector's vendor time since the start.
    pub(crate) fn stop(self, ctx: &RunCtx<'_>, stage: Stage, not_ours: Duration) {
        let vendor = self.vendor_since(ctx);
        ctx.time(stage, self.started.elapsed().saturating_sub(not_ours), vendor);
    }

    /// Adds to `stage` the connector's vendor time since the start, as time spent in the stage
    /// and waiting for the vendor: for a stage whose requests go out side by side and which
    /// times the rest of its work as it goes (the push: its planning).
    pub(crate) fn stop_waiting(self, ctx: &RunCtx<'_>, stage: Stage) {
        let vendor = self.vendor_since(ctx);
        ctx.time(stage, vendor, vendor);
    }

    fn vendor_since(&self, ctx: &RunCtx<'_>) -> Duration {
        ctx.p
            .connector
            .http_stats()
            .vendor_time()
            .saturating_sub(self.vendor)
    }
}

impl RunCtx<'_> {
    /// Adds `took` (`vendor` of it waiting for the vendor) to `stage` of the run's times.
    pub(crate) fn time(&self, stage: Stage, took: Duration, vendor: Duration) {
        self.times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(stage, took, vendor);
    }

    /// Adds the time since `started` to `stage`.
    pub(crate) fn time_since(&self, stage: Stage, started: Instant) {
        self.time(stage, started.elapsed(), Duration::ZERO);
    }

    /// Starts timing a stage that talks to the CRM: [`StageClock::stop`] adds its time and the
    /// connector's time waiting for the vendor (answers, limits, back-off) meanwhile.
    pub(crate) fn clock(&self) -> StageClock {
        StageClock {
            started: Instant::now(),
            vendor: self.p.connector.http_stats().vendor_time(),
        }
    }

    /// Whether a fact's source is the account's own (the CRM or file it came from), not a plugin.
    pub(crate) fn is_own_source(&self, source: &str) -> bool {
        source == "crm" || source == "file" || source == self.p.connector.kind()
    }
}
