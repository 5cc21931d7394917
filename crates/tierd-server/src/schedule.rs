//! When the leader starts runs: the `[schedule]` section and the [`Scheduler`] that turns cron
//! expressions and the store's run history into "run this job now" or "sleep until then".
//!
//! The scheduler is pure: it is given `now` and the start times of the last runs and keeps no
//! state of its own, so a restarted daemon or a new leader decides exactly what the old one would
//! have, and tests drive it with any clock. It must not know about the pipeline or the store's
//! types beyond [`Timestamp`].
//!
//! Rules, in order:
//! - A job's next fire time is the first cron time strictly after its last run's start. A full run
//!   also counts as an incremental one (it covers every account), so the incremental job's last
//!   run is the later of the two.
//! - A job is due when that fire time is not in the future. However many fire times were missed
//!   while the daemon was down, the job runs once: its run moves "last run" past all of them.
//! - With `catch_up = false`, fire times before the daemon started are ignored.
//! - Full beats incremental when both are due.
//! - A scheduled run left `interrupted` (the daemon stopped mid-run, or its leader died) is
//!   resumed at once with `catch_up`: the pipeline continues from what its batches committed.
//! - No run at all yet: a full run is due at once (with `catch_up`), because incremental runs
//!   need the baseline and the watermark a full run leaves.
//! - No overlap: the daemon asks only when no run is in flight, and the store refuses a second
//!   `running` run anyway.
//!
//! Times are UTC only: `timezone` must be `UTC`. Cron expressions have six or seven fields, the
//! first being seconds (`0 0 * * * *` is hourly on the hour).

use chrono::{DateTime, Utc};
use tierd_config::schedule::{parse_job, ScheduleSettings};
use tierd_store::Timestamp;

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// A full reassessment.
    Full,
    /// An incremental run.
    Incremental,
}

impl Job {
    /// The run kind this job starts.
    pub fn run_kind(self) -> tierd_store::RunKind {
        match self {
            Job::Full => tierd_store::RunKind::Full,
            Job::Incremental => tierd_store::RunKind::Incremental,
        }
    }
}

/// Start times of the latest runs of each scheduled kind, whatever their outcome: a failed run
/// waits for the next fire time rather than retrying in a loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LastRuns {
    /// The latest full run's start.
    pub full: Option<Timestamp>,
    /// The latest incremental run's start.
    pub incremental: Option<Timestamp>,
    /// The latest scheduled run, when it was interrupted (shutdown, crash, lost leadership):
    /// resumed at once rather than at the next fire time.
    pub interrupted: Option<Job>,
}

/// When each job fires next (`None`: disabled, or no fire time left).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NextRuns {
    /// Next full run; `now` when due.
    pub full: Option<Timestamp>,
    /// Next incremental run; `now` when due.
    pub incremental: Option<Timestamp>,
}

/// The parsed schedule.
#[derive(Debug, Clone)]
pub struct Scheduler {
    full: Option<cron::Schedule>,
    incremental: Option<cron::Schedule>,
    catch_up: bool,
    /// When the daemon started: with `catch_up = false`, earlier fire times do not count.
    started: Timestamp,
}

impl Scheduler {
    /// A scheduler for a daemon started at `started`.
    pub fn new(settings: &ScheduleSettings, started: Timestamp) -> Result<Scheduler, String> {
        let full = parse_job(&settings.full).map_err(|e| format!("schedule.full: {e}"))?;
        let incremental =
            parse_job(&settings.incremental).map_err(|e| format!("schedule.incremental: {e}"))?;
        Ok(Scheduler {
            full,
            incremental,
            catch_up: settings.catch_up,
            started,
        })
    }

    /// The job to start now, if any.
    pub fn due(&self, now: Timestamp, last: LastRuns) -> Option<Job> {
        let next = self.next(now, last);
        [(Job::Full, next.full), (Job::Incremental, next.incremental)]
            .into_iter()
            .find(|(_, at)| at.is_some_and(|at| at <= now))
            .map(|(job, _)| job)
    }

    /// When each job fires next; a due job shows its missed fire time (not later than `now`).
    pub fn next(&self, now: Timestamp, last: LastRuns) -> NextRuns {
        let never_ran = last.full.is_none() && last.incremental.is_none();
        let resume = |job: Job| self.catch_up && last.interrupted == Some(job);
        let full = self.full.as_ref().and_then(|s| {
            if (never_ran || resume(Job::Full)) && self.catch_up {
                return Some(now);
            }
            self.fire_after(s, last.full)
        });
        let incremental_last = last.full.max(last.incremental);
        let incremental = self.incremental.as_ref().and_then(|s| {
            if resume(Job::Incremental) {
                return Some(now);
            }
            self.fire_after(s, incremental_last)
        });
        NextRuns { full, incremental }
    }

    /// The first fire time of `schedule` after `last` (or after the start, when catch-up is off or
    /// nothing ran yet).
    fn fire_after(&self, schedule: &cron::Schedule, last: Option<Timestamp>) -> Option<Timestamp> {
        let from = match (last, self.catch_up) {
            (Some(last), true) => last,
            (Some(last), false) => last.max(self.started),
            (None, _) => self.started,
        };
        let from = DateTime::<Utc>::from_timestamp_millis(from.millis())?;
        schedule
            .after(&from)
            .next()
            .map(|t| Timestamp::from_millis(t.timestamp_millis()))
    }

    /// Why `job`, due now, runs (the `trigger` of the "starting a run" log line): `resumed` (its
    /// last run was interrupted), `first_run` (the store has no run yet), `caught_up` (its fire
    /// time passed while no instance was up) or `scheduled` (its fire time came while up).
    pub fn trigger(&self, now: Timestamp, last: LastRuns, job: Job) -> &'static str {
        if self.catch_up && last.interrupted == Some(job) {
            return "resumed";
        }
        if self.catch_up && job == Job::Full && last.full.is_none() && last.incremental.is_none() {
            return "first_run";
        }
        let (schedule, last_run) = match job {
            Job::Full => (self.full.as_ref(), last.full),
            Job::Incremental => (self.incremental.as_ref(), last.full.max(last.incremental)),
        };
        let fired = schedule.and_then(|s| self.fire_after(s, last_run));
        match fired {
            Some(at) if at < self.started && at <= now => "caught_up",
            _ => "scheduled",
        }
    }

    /// The earliest of `next`'s times: how long the leader may sleep before asking again.
    pub fn wake_at(&self, now: Timestamp, last: LastRuns) -> Option<Timestamp> {
        let next = self.next(now, last);
        next.full.into_iter().chain(next.incremental).min()
    }
}

/// A timestamp as RFC 3339 (`2025-01-01T06:00:00Z`), for logs and the API.
pub fn rfc3339(t: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_millis(t.millis())
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{} ms", t.millis()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tierd_config::Checked as _;

    /// `YYYY-MM-DDTHH:MM:SSZ` as a timestamp.
    fn at(s: &str) -> Timestamp {
        let d = DateTime::parse_from_rfc3339(s).expect("test time");
        Timestamp::from_millis(d.timestamp_millis())
    }

    fn scheduler(catch_up: bool, started: &str) -> Scheduler {
        let settings = ScheduleSettings {
            catch_up,
            ..ScheduleSettings::default()
        };
        Scheduler::new(&settings, at(started)).expect("default schedule parses")
    }

    fn last(full: Option<&str>, incremental: Option<&str>) -> LastRuns {
        LastRuns {
            full: full.map(at),
            incremental: incremental.map(at),
            interrupted: None,
        }
    }

    #[test]
    fn an_interrupted_run_is_resumed_at_once_with_catch_up() {
        let mut l = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T09:00:00Z"));
        l.interrupted = Some(Job::Incremental);
        let now = at("2025-02-10T09:05:00Z");
        assert_eq!(
            scheduler(true, "2025-02-10T09:05:00Z").due(now, l),
            Some(Job::Incremental)
        );
        assert_eq!(
            scheduler(true, "2025-02-10T09:05:00Z").trigger(now, l, Job::Incremental),
            "resumed"
        );
        assert_eq!(scheduler(false, "2025-02-10T09:05:00Z").due(now, l), None);
        l.interrupted = Some(Job::Full);
        assert_eq!(
            scheduler(true, "2025-02-10T09:05:00Z").due(now, l),
            Some(Job::Full)
        );
    }

    #[test]
    fn the_first_ever_start_runs_a_full_reassessment_at_once() {
        let s = scheduler(true, "2025-02-10T09:30:00Z");
        let now = at("2025-02-10T09:30:00Z");
        assert_eq!(s.due(now, LastRuns::default()), Some(Job::Full));
    }

    #[test]
    fn the_first_ever_start_without_catch_up_waits_for_the_schedule() {
        let s = scheduler(false, "2025-02-10T09:30:00Z");
        let now = at("2025-02-10T09:30:00Z");
        assert_eq!(s.due(now, LastRuns::default()), None);
        let next = s.next(now, LastRuns::default());
        assert_eq!(next.full, Some(at("2025-04-01T06:00:00Z")));
        assert_eq!(next.incremental, Some(at("2025-02-10T10:00:00Z")));
        assert_eq!(
            s.due(at("2025-02-10T10:00:00Z"), LastRuns::default()),
            Some(Job::Incremental)
        );
    }

    #[test]
    fn an_incremental_run_is_due_on_the_hour_and_not_before() {
        let s = scheduler(true, "2025-02-10T09:00:00Z");
        let l = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T09:00:00.050Z"));
        assert_eq!(s.due(at("2025-02-10T09:59:59Z"), l), None);
        assert_eq!(s.due(at("2025-02-10T10:00:00Z"), l), Some(Job::Incremental));
        assert_eq!(
            s.wake_at(at("2025-02-10T09:30:00Z"), l),
            Some(at("2025-02-10T10:00:00Z"))
        );
    }

    #[test]
    fn many_missed_runs_are_caught_up_once() {
        // Down from 09:10 to 15:20: five hourly runs missed.
        let s = scheduler(true, "2025-02-10T15:20:00Z");
        let before = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T09:00:00Z"));
        assert_eq!(s.due(at("2025-02-10T15:20:00Z"), before), Some(Job::Incremental));
        assert_eq!(
            s.trigger(at("2025-02-10T15:20:00Z"), before, Job::Incremental),
            "caught_up"
        );
        // The catch-up run starts at 15:20; the next one is 16:00, not another missed one.
        let after = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T15:20:01Z"));
        assert_eq!(s.due(at("2025-02-10T15:20:30Z"), after), None);
        assert_eq!(
            s.next(at("2025-02-10T15:20:30Z"), after).incremental,
            Some(at("2025-02-10T16:00:00Z"))
        );
        assert_eq!(
            s.trigger(at("2025-02-10T16:00:00Z"), after, Job::Incremental),
            "scheduled"
        );
    }

    #[test]
    fn missed_runs_are_skipped_without_catch_up() {
        let s = scheduler(false, "2025-02-10T15:20:00Z");
        let l = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T09:00:00Z"));
        assert_eq!(s.due(at("2025-02-10T15:20:00Z"), l), None);
        assert_eq!(s.due(at("2025-02-10T16:00:00Z"), l), Some(Job::Incremental));
    }

    #[test]
    fn full_beats_incremental_when_both_are_due_and_covers_it() {
        // Down over the quarter's start: both missed.
        let s = scheduler(true, "2025-04-01T08:00:00Z");
        let l = last(Some("2025-01-01T06:00:00Z"), Some("2025-03-31T23:00:00Z"));
        let now = at("2025-04-01T08:00:00Z");
        assert_eq!(s.due(now, l), Some(Job::Full));
        // After the full run, the missed incremental runs are not due: the full one covered them.
        let l = last(Some("2025-04-01T08:00:01Z"), Some("2025-03-31T23:00:00Z"));
        assert_eq!(s.due(at("2025-04-01T08:10:00Z"), l), None);
        assert_eq!(s.due(at("2025-04-01T09:00:00Z"), l), Some(Job::Incremental));
    }

    #[test]
    fn the_quarterly_full_run_fires_on_the_first_day_of_each_quarter() {
        let s = scheduler(true, "2025-01-01T06:00:00Z");
        let mut l = last(Some("2025-01-01T06:00:00Z"), None);
        let mut fires = Vec::new();
        for _ in 0..4 {
            let next = s
                .next(at("2025-01-01T06:00:00Z"), l)
                .full
                .expect("a next quarter");
            fires.push(rfc3339(next));
            l.full = Some(next);
        }
        assert_eq!(
            fires,
            [
                "2025-04-01T06:00:00Z",
                "2025-07-01T06:00:00Z",
                "2025-10-01T06:00:00Z",
                "2026-01-01T06:00:00Z"
            ]
        );
    }

    #[test]
    fn a_long_run_is_followed_by_one_run_not_a_backlog() {
        // The 10:00 run took until 12:30: the 11:00 and 12:00 fire times passed meanwhile.
        let s = scheduler(true, "2025-02-10T08:00:00Z");
        let l = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T10:00:00Z"));
        assert_eq!(s.due(at("2025-02-10T12:30:00Z"), l), Some(Job::Incremental));
        let l = last(Some("2025-01-01T06:00:00Z"), Some("2025-02-10T12:30:00Z"));
        assert_eq!(s.due(at("2025-02-10T12:31:00Z"), l), None);
    }

    #[test]
    fn off_disables_a_job() {
        let settings = ScheduleSettings {
            full: "off".into(),
            ..ScheduleSettings::default()
        };
        let s = Scheduler::new(&settings, at("2025-02-10T09:30:00Z")).expect("parses");
        let next = s.next(at("2025-02-10T09:30:00Z"), LastRuns::default());
        assert_eq!(next.full, None);
        assert_eq!(next.incremental, Some(at("2025-02-10T10:00:00Z")));
    }

    #[test]
    fn problems_name_the_key_and_the_fix() {
        let settings = ScheduleSettings {
            full: "every quarter".into(),
            timezone: "Europe/Paris".into(),
            ..ScheduleSettings::default()
        };
        let problems = settings.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0].0, "full");
        assert!(problems[0].1.contains("six fields"), "{}", problems[0].1);
        assert_eq!(problems[1].0, "timezone");
        assert!(problems[1].1.contains("only UTC"), "{}", problems[1].1);
        assert!(ScheduleSettings::default().problems().is_empty());
    }
}
