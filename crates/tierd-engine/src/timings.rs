//! Where a run's time goes ([`StageTimes`], in `RunReport::stages`, the CLI summary,
//! `/api/v1/runs/{id}` and `/metrics`): for each stage, the time spent in it and, of that, the
//! time spent waiting for a vendor (the CRM's or a plugin's HTTP answers, and their rate-limit
//! and back-off waits).
//!
//! Stages that process work items (enrich per plugin, score, and the store reads and writes of
//! each item) are measured per item and carried with the item's counts (`BatchCounts::times`),
//! so a run's report adds up every instance's share; with several workers those times run side
//! by side and their sum can exceed the run's wall time. The other stages (pull, tier, push,
//! deals) run once, in the leading instance; their vendor time counts requests side by side once. This module owns the figures and their words; the
//! stages measure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One stage's time, in seconds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StageTime {
    /// Time spent in the stage.
    pub seconds: f64,
    /// Of `seconds`, time spent waiting for the vendor (answers, rate limits, back-off).
    pub vendor_seconds: f64,
}

impl StageTime {
    fn add(&mut self, other: StageTime) {
        self.seconds += other.seconds;
        self.vendor_seconds += other.vendor_seconds;
    }

    fn is_zero(&self) -> bool {
        self.seconds == 0.0 && self.vendor_seconds == 0.0
    }
}

/// Where one run's time went, stage by stage.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Reading the connector's pages (the CRM's answers, or the file) into work items; waiting
    /// for the next page is vendor time, waiting for the workers to take a batch is not counted.
    #[serde(default)]
    pub pull: StageTime,
    /// Handing work items to the store's queue and taking them back (committing runs).
    #[serde(default)]
    pub queue: StageTime,
    /// Each plugin's time over the run's items (cache hits included), by plugin name; its vendor
    /// time is the wall time its HTTP requests were waiting (overlapping ones counted once), as
    /// measured in the leading instance. With several workers, two items' plugin calls overlap
    /// and their times add up while the waits do not.
    #[serde(default)]
    pub enrich: BTreeMap<String, StageTime>,
    /// Scoring and explaining (live and shadow model).
    #[serde(default)]
    pub score: StageTime,
    /// The store's reads and writes while processing and pushing: each item's previous state,
    /// the plugins' cache, its scores and signals, and each push batch's commit.
    #[serde(default)]
    pub commit: StageTime,
    /// Tiering the whole population (reading it from the store included).
    #[serde(default)]
    pub tier: StageTime,
    /// Planning and sending the tier updates (batch commits are `commit`'s).
    #[serde(default)]
    pub push: StageTime,
    /// Pulling the accounts' deals (committing runs).
    #[serde(default)]
    pub deals: StageTime,
    /// The run's wall time from start to end.
    #[serde(default)]
    pub run_seconds: f64,
}

/// A stage [`StageTimes`] names, for adding time to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Pull,
    Queue,
    Score,
    Commit,
    Tier,
    Push,
    Deals,
}

impl StageTimes {
    fn slot(&mut self, stage: Stage) -> &mut StageTime {
        match stage {
            Stage::Pull => &mut self.pull,
            Stage::Queue => &mut self.queue,
            Stage::Score => &mut self.score,
            Stage::Commit => &mut self.commit,
            Stage::Tier => &mut self.tier,
            Stage::Push => &mut self.push,
            Stage::Deals => &mut self.deals,
        }
    }

    /// Adds `took` to `stage`, `vendor` of it spent waiting for the vendor.
    pub(crate) fn add(&mut self, stage: Stage, took: Duration, vendor: Duration) {
        self.slot(stage).add(StageTime {
            seconds: took.as_secs_f64(),
            vendor_seconds: vendor.as_secs_f64(),
        });
    }

    /// Adds the time since `started` to `stage` (no vendor time).
    pub(crate) fn since(&mut self, stage: Stage, started: Instant) {
        self.add(stage, started.elapsed(), Duration::ZERO);
    }

    /// Adds `took` to `plugin`'s enrichment.
    pub(crate) fn add_plugin(&mut self, plugin: &str, took: Duration, vendor: Duration) {
        self.enrich.entry(plugin.to_owned()).or_default().add(StageTime {
            seconds: took.as_secs_f64(),
            vendor_seconds: vendor.as_secs_f64(),
        });
    }

    /// Adds `vendor` to `plugin`'s vendor time (its HTTP requests over the run).
    pub(crate) fn add_plugin_vendor(&mut self, plugin: &str, vendor: Duration) {
        self.add_plugin(plugin, Duration::ZERO, vendor);
    }

    /// Adds every stage of `other` (another item's or instance's share).
    pub(crate) fn merge(&mut self, other: &StageTimes) {
        for (mine, theirs) in [
            (&mut self.pull, other.pull),
            (&mut self.queue, other.queue),
            (&mut self.score, other.score),
            (&mut self.commit, other.commit),
            (&mut self.tier, other.tier),
            (&mut self.push, other.push),
            (&mut self.deals, other.deals),
        ] {
            mine.add(theirs);
        }
        for (plugin, time) in &other.enrich {
            self.enrich.entry(plugin.clone()).or_default().add(*time);
        }
        self.run_seconds += other.run_seconds;
    }

    /// Every stage with its time, in run order; a plugin's enrichment is `enrich:NAME`.
    pub fn stages(&self) -> Vec<(String, StageTime)> {
        let mut out = vec![("pull".to_owned(), self.pull), ("queue".to_owned(), self.queue)];
        out.extend(self.enrich.iter().map(|(p, t)| (format!("enrich:{p}"), *t)));
        out.extend([
            ("score".to_owned(), self.score),
            ("commit".to_owned(), self.commit),
            ("tier".to_owned(), self.tier),
            ("push".to_owned(), self.push),
            ("deals".to_owned(), self.deals),
        ]);
        out
    }

    /// One line for people: the run's time, then each stage that took any, with its vendor
    /// time where it had some (`pull 4.10 s (3.90 s waiting for the vendor)`).
    pub fn summary(&self) -> String {
        let mut out = format!("{:.2} s in all", self.run_seconds);
        for (stage, t) in self.stages().into_iter().filter(|(_, t)| !t.is_zero()) {
            out.push_str(&format!("; {stage} {:.2} s", t.seconds));
            if t.vendor_seconds > 0.0 {
                out.push_str(&format!(" ({:.2} s waiting for the vendor)", t.vendor_seconds));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_adds_every_stage_and_plugin() {
        let mut a = StageTimes::default();
        a.add(
            Stage::Pull,
            Duration::from_millis(1500),
            Duration::from_millis(1000),
        );
        a.add_plugin(
            "technographic",
            Duration::from_millis(250),
            Duration::from_millis(250),
        );
        let mut b = StageTimes::default();
        b.add(Stage::Score, Duration::from_millis(500), Duration::ZERO);
        b.add_plugin(
            "technographic",
            Duration::from_millis(750),
            Duration::from_millis(125),
        );
        b.add_plugin("firmographic", Duration::from_millis(125), Duration::ZERO);
        a.merge(&b);
        assert_eq!(
            a.pull,
            StageTime {
                seconds: 1.5,
                vendor_seconds: 1.0
            }
        );
        assert_eq!(
            a.score,
            StageTime {
                seconds: 0.5,
                vendor_seconds: 0.0
            }
        );
        assert_eq!(
            a.enrich["technographic"],
            StageTime {
                seconds: 1.0,
                vendor_seconds: 0.375
            }
        );
        assert_eq!(a.enrich["firmographic"].seconds, 0.125);
        let names: Vec<String> = a.stages().into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            names,
            [
                "pull",
                "queue",
                "enrich:firmographic",
                "enrich:technographic",
                "score",
                "commit",
                "tier",
                "push",
                "deals"
            ]
        );
    }

    #[test]
    fn the_summary_names_the_stages_that_took_time_and_their_vendor_waits() {
        let mut t = StageTimes {
            run_seconds: 3.0,
            ..StageTimes::default()
        };
        t.add(
            Stage::Pull,
            Duration::from_millis(1250),
            Duration::from_millis(1000),
        );
        t.add(Stage::Tier, Duration::from_millis(500), Duration::ZERO);
        assert_eq!(
            t.summary(),
            "3.00 s in all; pull 1.25 s (1.00 s waiting for the vendor); tier 0.50 s"
        );
    }

    #[test]
    fn reports_stored_before_timings_existed_read_as_zero() {
        let t: StageTimes = serde_json::from_str("{}").unwrap();
        assert_eq!(t, StageTimes::default());
    }
}
