//! The run context: what every stage of one run reads (the pipeline, the scorer, the run's id,
//! kind and job, a pilot's spec), so stages take one argument instead of six.

use tierd_store::{RunId, RunKind};

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
}

impl RunCtx<'_> {
    /// Whether a fact's source is the account's own (the CRM or file it came from), not a plugin.
    pub(crate) fn is_own_source(&self, source: &str) -> bool {
        source == "crm" || source == "file" || source == self.p.connector.kind()
    }
}
