//! The store's behaviours, each written once and run on SQLite and on PostgreSQL.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use tierd_core::{Date, Tier};
use tierd_store::{
    AccountQuery, BatchCommit, CachedFacts, DeliveryAttempt, DeliveryOutcome, DeliveryState, Engagement,
    NewEvent, NewSignal, PushRecord, RejectedPush, Rescored, RunId, RunKind, RunStatus, ScoredAccount,
    StoreError, Timestamp,
};

use common::TestDb;

fn scored(id: &str, score: f64, tier: Tier) -> ScoredAccount {
    ScoredAccount {
        id: id.to_string(),
        name: format!("Account {id}"),
        domain: Some(format!("{id}.example")),
        facts: json!({
            "firmographic.employee_count": {"value": 1200, "source": "firmographic", "observed_at": "2026-01-05"}
        }).into(),
        facts_hash: format!("hash-{id}-{score}"),
        score,
        coverage: 0.8,
        potential_value: 120_000.0,
        tier,
        explanation: json!({"top": ["employee count 1200"]}).into(),
        reason: format!("score {score}"),
        model_version: "default@3".to_string(),
        crm_tier_seen: None,
        locked: false,
    }
}

fn pushed(id: &str, tier: Tier) -> PushRecord {
    PushRecord {
        account: id.to_string(),
        tier,
        score_bucket: 4.5,
        reason: "fits the ideal profile".to_string(),
    }
}

fn rejected(id: &str, tier: Tier, error: &str, permanent: bool) -> RejectedPush {
    RejectedPush {
        account: id.to_string(),
        tier,
        score_bucket: 3.5,
        reason: "renewal due".to_string(),
        error: error.to_string(),
        permanent,
        retry_after: None,
    }
}

fn event(id: &str, kind: &str, endpoints: &[&str]) -> NewEvent {
    NewEvent {
        id: id.to_string(),
        kind: kind.to_string(),
        body: format!(r#"{{"type":"{kind}","timestamp":"2026-12-01T10:00:00.000Z","data":{{}}}}"#),
        occurred_at: Timestamp::from_millis(1_764_583_200_000),
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
    }
}

async fn started_run(db: &TestDb) -> RunId {
    db.store
        .begin_run(RunKind::Full, "default@3", "instance-a")
        .await
        .expect("start a run")
}

async fn migrations_are_idempotent(db: TestDb) {
    assert_eq!(db.store.schema_version().await.expect("schema version"), 11);
    let run = started_run(&db).await;
    for _ in 0..2 {
        let again = db.reopen().await.expect("reopen an already migrated store");
        assert_eq!(again.schema_version().await.expect("schema version"), 11);
        assert_eq!(again.run(run).await.expect("read run").map(|r| r.id), Some(run));
    }

    // A database migrated by a newer tierd is refused, not silently used.
    db.execute_raw("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)")
        .await;
    match db.reopen().await {
        Err(StoreError::NewerSchema { found: 99, known: 11 }) => {}
        other => panic!("expected NewerSchema, got {other:?}"),
    }
}
on_both_backends!(migrations_are_idempotent);

/// PostgreSQL checks a foreign key with a query per row written: the tables written once or
/// twice per account in every run (`accounts`, `tier_history`, `signals`, `deals`,
/// `deal_history`, `shadow_history`) keep none; the low-volume ones keep theirs.
#[tokio::test]
async fn postgres_checks_no_foreign_key_on_the_tables_written_per_account() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let tables = db
        .postgres_tables_with_foreign_keys()
        .await
        .expect("a PostgreSQL store");
    assert_eq!(
        tables,
        [
            "checkpoints",
            "pending_pushes",
            "webhook_attempts",
            "webhook_deliveries",
            "work_items"
        ]
    );
}

async fn runs_never_overlap(db: TestDb) {
    let first = started_run(&db).await;
    let other_instance = db.reopen().await.expect("second store");
    match other_instance
        .begin_run(RunKind::Incremental, "default@3", "instance-b")
        .await
    {
        Err(StoreError::RunInProgress { id, owner, .. }) => {
            assert_eq!((id, owner.as_str()), (first, "instance-a"));
        }
        other => panic!("expected RunInProgress, got {other:?}"),
    }

    db.store
        .finish_run(first, RunStatus::Succeeded, &json!({"accounts": 10}), None)
        .await
        .expect("finish the run");
    match db
        .store
        .finish_run(first, RunStatus::Failed, &json!({}), Some("again"))
        .await
    {
        Err(StoreError::RunNotRunning {
            id,
            status: RunStatus::Succeeded,
        }) => assert_eq!(id, first),
        other => panic!("expected RunNotRunning, got {other:?}"),
    }
    assert!(matches!(
        db.store
            .finish_run(RunId(9999), RunStatus::Failed, &json!({}), None)
            .await,
        Err(StoreError::UnknownRun { id: RunId(9999) })
    ));

    let second = other_instance
        .begin_run(RunKind::Incremental, "default@3", "instance-b")
        .await
        .expect("start a run once the first finished");
    assert!(second > first);
    let finished = db.store.run(first).await.expect("read").expect("exists");
    assert_eq!(finished.status, RunStatus::Succeeded);
    assert_eq!(finished.stats, Some(json!({"accounts": 10})));
    assert!(finished.finished_at.is_some());
}
on_both_backends!(runs_never_overlap);

async fn stale_runs_are_interrupted(db: TestDb) {
    let first = started_run(&db).await;
    db.store
        .set_watermark(first, "2026-01-05T00:00:00Z")
        .await
        .expect("watermark");
    db.store
        .finish_run(first, RunStatus::Succeeded, &json!({}), None)
        .await
        .expect("finish");
    let crashed = started_run(&db).await;

    // A restarted process: the run its predecessor left running is marked, another owner's is not.
    let restarted = db.reopen().await.expect("reopen");
    assert!(restarted
        .interrupt_stale_runs(Some("instance-b"))
        .await
        .expect("interrupt")
        .is_empty());
    assert_eq!(
        restarted
            .interrupt_stale_runs(Some("instance-a"))
            .await
            .expect("interrupt"),
        vec![crashed]
    );
    let run = restarted.run(crashed).await.expect("read").expect("exists");
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(run.error.is_some_and(|e| e.contains("stopped")));
    assert!(restarted
        .interrupt_stale_runs(None)
        .await
        .expect("interrupt")
        .is_empty());

    let next = restarted
        .begin_run(RunKind::Incremental, "default@3", "instance-a")
        .await
        .expect("a new run can start");
    let last_good = restarted
        .last_run(None, Some(RunStatus::Succeeded))
        .await
        .expect("last run")
        .expect("one succeeded");
    assert_eq!(last_good.id, first);
    assert_eq!(last_good.watermark.as_deref(), Some("2026-01-05T00:00:00Z"));
    assert_eq!(
        restarted
            .last_run(Some(RunKind::Incremental), None)
            .await
            .expect("last")
            .map(|r| r.id),
        Some(next)
    );
    let ids: Vec<RunId> = restarted
        .runs(10)
        .await
        .expect("runs")
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, vec![next, crashed, first]);
}
on_both_backends!(stale_runs_are_interrupted);

async fn batch_commit_is_all_or_nothing(db: TestDb) {
    let run = started_run(&db).await;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 4.6, Tier::Tier1)],
            pushed: vec![pushed("a", Tier::Tier1)],
            checkpoint: Some(("push".into(), "batch-1".into())),
            events: vec![event("evt-batch-1", "tier.changed", &["crm-team"])],
            ..BatchCommit::default()
        })
        .await
        .expect("commit the first batch");

    // The last row breaks a constraint (score above 5): none of the batch may land.
    let failing = BatchCommit {
        run,
        scored: vec![
            scored("a", 2.0, Tier::Untiered),
            scored("b", 3.1, Tier::Tier3),
            scored("c", 7.0, Tier::Tier1),
        ],
        pushed: vec![pushed("b", Tier::Tier3)],
        rejected: vec![rejected("a", Tier::Untiered, "INVALID_OPTION", false)],
        cleared: vec![],
        checkpoint: Some(("push".into(), "batch-2".into())),
        events: vec![event("evt-batch-2", "tier.changed", &["crm-team"])],
        history_at: None,
    };
    let err = db
        .store
        .commit_batch(&failing)
        .await
        .expect_err("a score of 7 is refused");
    assert!(
        matches!(
            err,
            StoreError::Query {
                table: "accounts",
                ..
            }
        ),
        "the error names the table: {err}"
    );
    // So may a push recorded for an account that has no state.
    let unknown = BatchCommit {
        run,
        scored: vec![scored("b", 3.1, Tier::Tier3)],
        pushed: vec![pushed("nobody", Tier::Tier2)],
        ..BatchCommit::default()
    };
    assert!(matches!(
        db.store.commit_batch(&unknown).await,
        Err(StoreError::UnknownAccount { ref account, .. }) if account == "nobody"
    ));

    let a = db.store.account("a").await.expect("read").expect("a exists");
    assert_eq!((a.tier, a.score), (Tier::Tier1, 4.6));
    assert_eq!(a.pushed.map(|p| p.tier), Some(Tier::Tier1));
    assert!(db.store.account("b").await.expect("read").is_none());
    assert!(db.store.account("c").await.expect("read").is_none());
    assert!(db.store.pending_pushes(true).await.expect("pending").is_empty());
    assert_eq!(db.store.tier_history("a", 10).await.expect("history").len(), 1);
    assert_eq!(
        db.store
            .checkpoint(run, "push")
            .await
            .expect("checkpoint")
            .map(|c| c.position),
        Some("batch-1".to_string())
    );
    // The outbox holds the first batch's event only: the failed batch's never existed.
    let events: Vec<String> = db
        .store
        .webhook_deliveries(None, None, 10)
        .await
        .expect("deliveries")
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    assert_eq!(events, ["evt-batch-1"]);
}
on_both_backends!(batch_commit_is_all_or_nothing);

async fn pushed_state_survives_a_restart(db: TestDb) {
    let run = started_run(&db).await;
    let mut b = scored("b", 3.9, Tier::Tier2);
    b.crm_tier_seen = Some(Tier::Tier3);
    b.locked = true;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 4.7, Tier::Tier1), b],
            pushed: vec![pushed("a", Tier::Tier1)],
            checkpoint: Some(("push".into(), "7".into())),
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    db.store.close().await;

    let restarted = db.reopen().await.expect("reopen after the process went away");
    let last = restarted
        .last_pushed(&["a".to_string(), "b".to_string(), "zz".to_string()])
        .await
        .expect("last pushed");
    assert_eq!(last.len(), 1, "only a was pushed: {last:?}");
    let a = &last["a"];
    assert_eq!(
        (a.tier, a.score_bucket, a.reason.as_str()),
        (Tier::Tier1, 4.5, "fits the ideal profile")
    );

    let b = restarted.account("b").await.expect("read").expect("b exists");
    assert!(b.pushed.is_none());
    assert_eq!(
        (b.crm_tier_seen, b.locked, b.updated_run),
        (Some(Tier::Tier3), true, Some(run))
    );
    assert_eq!(b.facts["firmographic.employee_count"]["source"], "firmographic");
    assert_eq!(b.explanation, json!({"top": ["employee count 1200"]}));
    assert_eq!((b.score, b.coverage, b.potential_value), (3.9, 0.8, 120_000.0));
    assert_eq!(
        restarted
            .checkpoint(run, "push")
            .await
            .expect("checkpoint")
            .map(|c| c.position),
        Some("7".to_string())
    );
    assert!(restarted
        .checkpoint(run, "pull")
        .await
        .expect("checkpoint")
        .is_none());

    // Rescoring keeps what was pushed: the next diff is still against it. (Scores are committed
    // by `commit_scores`; a batch commit takes only the final tier of an account it already has.)
    restarted
        .commit_scores(
            run,
            &[Rescored {
                account: scored("a", 4.8, Tier::Tier1),
                engagement: None,
            }],
        )
        .await
        .expect("rescore");
    let a = restarted.account("a").await.expect("read").expect("a exists");
    assert_eq!((a.score, a.pushed.map(|p| p.tier)), (4.8, Some(Tier::Tier1)));

    let summaries = restarted.account_summaries(None, 1).await.expect("page 1");
    assert_eq!(summaries.len(), 1);
    assert_eq!(
        (summaries[0].id.as_str(), summaries[0].pushed_tier),
        ("a", Some(Tier::Tier1))
    );
    // A batch read returns the same states as one-by-one reads, and skips unknown ids.
    let batch = restarted
        .accounts(&["b".to_string(), "zz".to_string(), "a".to_string()])
        .await
        .expect("batch read");
    assert_eq!(batch.len(), 2, "zz is unknown: {:?}", batch.keys());
    assert_eq!(
        Some(&batch["a"]),
        restarted.account("a").await.expect("read").as_ref()
    );
    assert_eq!(
        Some(&batch["b"]),
        restarted.account("b").await.expect("read").as_ref()
    );
    let rest = restarted.account_summaries(Some("a"), 10).await.expect("page 2");
    assert_eq!(rest.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec!["b"]);
    assert!(rest[0].locked);
    assert_eq!((rest[0].tier, rest[0].potential_value), (Tier::Tier2, 120_000.0));
}
on_both_backends!(pushed_state_survives_a_restart);

/// A batch writes a pushed account's push with its tier, in one update of its row; an account it
/// tiers without pushing keeps the push it had, and one it pushes without tiering gets its push.
async fn a_batch_keeps_earlier_pushes_of_the_accounts_it_tiers_without_pushing(db: TestDb) {
    let run = started_run(&db).await;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 4.7, Tier::Tier1), scored("b", 3.9, Tier::Tier2)],
            pushed: vec![pushed("a", Tier::Tier1)],
            ..BatchCommit::default()
        })
        .await
        .expect("first batch");
    let pushed_of = |id: &'static str| {
        let store = &db.store;
        async move {
            store
                .account(id)
                .await
                .expect("read")
                .expect("stored")
                .pushed
                .map(|p| (p.tier, p.score_bucket))
        }
    };
    assert_eq!(pushed_of("a").await, Some((Tier::Tier1, 4.5)));
    assert_eq!(pushed_of("b").await, None);

    // a moves to tier 2 and its push is refused; b is pushed without being tiered again.
    let mut b_push = pushed("b", Tier::Tier2);
    b_push.score_bucket = 3.5;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 3.9, Tier::Tier2)],
            pushed: vec![b_push],
            rejected: vec![rejected("a", Tier::Tier2, "busy", false)],
            ..BatchCommit::default()
        })
        .await
        .expect("second batch");
    let a = db.store.account("a").await.expect("read").expect("a");
    assert_eq!(a.tier, Tier::Tier2);
    assert_eq!(
        pushed_of("a").await,
        Some((Tier::Tier1, 4.5)),
        "a keeps what was pushed before"
    );
    assert_eq!(pushed_of("b").await, Some((Tier::Tier2, 3.5)));
    let history = db.store.tier_history("a", 10).await.expect("history");
    assert_eq!(
        history.iter().map(|c| c.to).collect::<Vec<_>>(),
        vec![Tier::Tier2, Tier::Tier1]
    );
}
on_both_backends!(a_batch_keeps_earlier_pushes_of_the_accounts_it_tiers_without_pushing);

async fn rejected_pushes_are_kept_until_pushed_or_permanent(db: TestDb) {
    let run = started_run(&db).await;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![
                scored("a", 3.2, Tier::Tier3),
                scored("b", 3.8, Tier::Tier2),
                scored("c", 1.0, Tier::Untiered),
            ],
            rejected: vec![
                rejected("a", Tier::Tier3, "RATE_LIMIT", false),
                rejected("b", Tier::Tier2, "INVALID_OPTION: tier_2 is not an option", false),
                rejected("c", Tier::Untiered, "OWNER_INACTIVE", false),
            ],
            ..BatchCommit::default()
        })
        .await
        .expect("commit rejections");
    db.store
        .finish_run(run, RunStatus::Succeeded, &json!({}), None)
        .await
        .expect("finish");

    // The next run: a is accepted, b rejected for good, c no longer wanted.
    let restarted = db.reopen().await.expect("reopen");
    let next = started_run(&db).await;
    let pending = restarted.pending_pushes(false).await.expect("pending");
    assert_eq!(
        pending.iter().map(|p| p.account.as_str()).collect::<Vec<_>>(),
        vec!["a", "b", "c"]
    );
    assert_eq!(pending[1].last_error, "INVALID_OPTION: tier_2 is not an option");
    assert_eq!((pending[1].attempts, pending[1].first_failed_run), (1, run));
    restarted
        .commit_batch(&BatchCommit {
            run: next,
            pushed: vec![pushed("a", Tier::Tier3)],
            rejected: vec![rejected(
                "b",
                Tier::Tier2,
                "INVALID_OPTION: still not an option",
                true,
            )],
            cleared: vec!["c".to_string()],
            ..BatchCommit::default()
        })
        .await
        .expect("commit retries");

    assert!(restarted.pending_pushes(false).await.expect("pending").is_empty());
    let all = restarted
        .pending_pushes(true)
        .await
        .expect("pending with permanent");
    assert_eq!(all.len(), 1);
    let b = &all[0];
    assert_eq!((b.account.as_str(), b.permanent, b.attempts), ("b", true, 2));
    assert_eq!(b.last_error, "INVALID_OPTION: still not an option");
    assert_eq!(b.first_failed_run, run, "the first failure is remembered");
    assert_eq!(
        restarted
            .account("a")
            .await
            .expect("read")
            .and_then(|a| a.pushed)
            .map(|p| p.tier),
        Some(Tier::Tier3)
    );
}
on_both_backends!(rejected_pushes_are_kept_until_pushed_or_permanent);

async fn cached_facts_expire(db: TestDb) {
    let t0 = Timestamp::from_millis(1_760_000_000_000);
    let hour = Duration::from_secs(3600);
    let entries = vec![
        (
            "acme.example".to_string(),
            CachedFacts::new(
                json!({"employee_count": 1200}),
                json!({"seen": ["Snowflake"]}),
                t0,
                hour,
            ),
        ),
        (
            "globex.example".to_string(),
            CachedFacts::new(json!({"employee_count": 40}), json!(null), t0, 24 * hour),
        ),
    ];
    db.store
        .put_cached_facts("firmographic", "1.2.0", &entries)
        .await
        .expect("put");
    let keys = vec![
        "acme.example".to_string(),
        "globex.example".to_string(),
        "initech.example".to_string(),
    ];

    let fresh = db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, Some(t0.plus(hour / 2)))
        .await
        .expect("get");
    assert_eq!(fresh.len(), 2);
    assert_eq!(fresh["acme.example"].facts, json!({"employee_count": 1200}));

    let later = t0.plus(2 * hour);
    let fresh = db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, Some(later))
        .await
        .expect("get");
    assert_eq!(fresh.keys().collect::<Vec<_>>(), vec!["globex.example"]);
    let any = db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, None)
        .await
        .expect("get");
    assert_eq!(
        any["acme.example"].state,
        json!({"seen": ["Snowflake"]}),
        "state outlives freshness"
    );
    assert!(!any["acme.example"].is_fresh(later));
    assert!(db
        .store
        .cached_facts("firmographic", "1.3.0", &keys, None)
        .await
        .expect("get")
        .is_empty());

    // Replacing an entry renews it.
    let renewed = vec![(
        "acme.example".to_string(),
        CachedFacts::new(json!({"employee_count": 1300}), json!({}), later, hour),
    )];
    db.store
        .put_cached_facts("firmographic", "1.2.0", &renewed)
        .await
        .expect("put");
    let fresh = db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, Some(later))
        .await
        .expect("get");
    assert_eq!(fresh["acme.example"].facts, json!({"employee_count": 1300}));

    assert_eq!(
        db.store
            .purge_cached_facts(t0.plus(30 * hour))
            .await
            .expect("purge"),
        2
    );
    assert!(db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, None)
        .await
        .expect("get")
        .is_empty());
}
on_both_backends!(cached_facts_expire);

async fn cached_facts_are_stored_many_at_a_time_and_a_repeated_key_keeps_its_last_entry(db: TestDb) {
    let t0 = Timestamp::from_millis(1_760_000_000_000);
    let hour = Duration::from_secs(3600);
    // 250 keys (three statements of up to 100), with k7 given again at the end.
    let mut entries: Vec<(String, CachedFacts)> = (0..250)
        .map(|i| {
            let facts = json!({"employee_count": i});
            (
                format!("k{i}"),
                CachedFacts::new(facts, json!({"n": i}), t0, hour),
            )
        })
        .collect();
    entries.push((
        "k7".to_string(),
        CachedFacts::new(json!({"employee_count": 7000}), json!({"n": "last"}), t0, hour),
    ));
    db.store
        .put_cached_facts("firmographic", "1.2.0", &entries)
        .await
        .expect("put");
    let keys: Vec<String> = (0..251).map(|i| format!("k{i}")).collect();
    let got = db
        .store
        .cached_facts("firmographic", "1.2.0", &keys, None)
        .await
        .expect("get");
    assert_eq!(got.len(), 250, "k250 was never stored");
    assert_eq!(got["k0"].facts, json!({"employee_count": 0}));
    assert_eq!(got["k249"].state, json!({"n": 249}));
    assert_eq!(got["k7"].facts, json!({"employee_count": 7000}));
    assert_eq!(got["k7"].state, json!({"n": "last"}));
}
on_both_backends!(cached_facts_are_stored_many_at_a_time_and_a_repeated_key_keeps_its_last_entry);

async fn signals_are_recorded_once(db: TestDb) {
    let run = started_run(&db).await;
    let day = |d| Date::from_ymd(2026, 1, d).expect("a date");
    let signal = |kind: &str, subject: &str, d| NewSignal {
        account: "a".to_string(),
        kind: kind.to_string(),
        subject: subject.to_string(),
        date: day(d),
        source: "technographic".to_string(),
    };
    let before = Timestamp::now();
    let first = vec![
        signal("technology_adopted", "Snowflake", 3),
        signal("renewal_within", "", 5),
    ];
    assert_eq!(
        db.store.insert_signals(Some(run), &first).await.expect("insert"),
        2
    );
    let mut again = first.clone();
    again.push(signal("technology_adopted", "Segment", 3));
    assert_eq!(db.store.insert_signals(None, &again).await.expect("insert"), 1);

    let stored = db.store.signals("a").await.expect("read");
    let seen: Vec<(&str, &str, Date)> = stored
        .iter()
        .map(|s| (s.kind.as_str(), s.subject.as_str(), s.date))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("renewal_within", "", day(5)),
            ("technology_adopted", "Segment", day(3)),
            ("technology_adopted", "Snowflake", day(3)),
        ]
    );
    assert_eq!(stored[2].run, Some(run), "the first sighting is kept");
    assert_eq!(
        db.store.accounts_with_signals_since(before).await.expect("since"),
        vec!["a".to_string()]
    );
    assert!(db
        .store
        .accounts_with_signals_since(Timestamp::now().plus(Duration::from_secs(60)))
        .await
        .expect("since")
        .is_empty());
}
on_both_backends!(signals_are_recorded_once);

async fn tier_history_records_each_change(db: TestDb) {
    let run = started_run(&db).await;
    let commit = |account: ScoredAccount| BatchCommit {
        run,
        scored: vec![account],
        ..BatchCommit::default()
    };
    db.store
        .commit_batch(&commit(scored("a", 3.2, Tier::Tier3)))
        .await
        .expect("first");
    db.store
        .commit_batch(&commit(scored("a", 3.4, Tier::Tier3)))
        .await
        .expect("same tier");
    db.store
        .commit_batch(&commit(scored("a", 4.6, Tier::Tier1)))
        .await
        .expect("up");
    db.store
        .commit_batch(&commit(scored("b", 1.0, Tier::Untiered)))
        .await
        .expect("b");

    let history = db.store.tier_history("a", 10).await.expect("history");
    let moves: Vec<(Option<Tier>, Tier, f64)> = history.iter().map(|c| (c.from, c.to, c.score)).collect();
    assert_eq!(
        moves,
        vec![(Some(Tier::Tier3), Tier::Tier1, 4.6), (None, Tier::Tier3, 3.2)]
    );
    assert_eq!(history[0].reason, "score 4.6");
    assert_eq!(
        (history[0].run, history[0].model_version.as_str()),
        (run, "default@3")
    );
    assert_eq!(db.store.tier_history("a", 1).await.expect("history").len(), 1);
    assert_eq!(db.store.tier_counts().await.expect("counts"), [1, 0, 0, 1]);
}
on_both_backends!(tier_history_records_each_change);

/// Every column `commit_scores` writes reads back as written, set and unset alike (SQLite
/// binds rows of values, PostgreSQL one array per column), and a second commit of the same
/// accounts replaces them.
async fn rescored_accounts_read_back_as_written(db: TestDb) {
    let run = started_run(&db).await;
    let mut b = scored("b", 3.9, Tier::Tier2);
    b.domain = None;
    b.crm_tier_seen = Some(Tier::Tier3);
    b.locked = true;
    let engaged = Engagement {
        until: Date::from_ymd(2026, 12, 24).expect("date"),
        by: 2,
    };
    let batch = |a: ScoredAccount, b: ScoredAccount| {
        vec![
            Rescored {
                account: a,
                engagement: Some(engaged),
            },
            Rescored {
                account: b,
                engagement: None,
            },
        ]
    };
    db.store
        .commit_scores(run, &batch(scored("a", 4.6, Tier::Tier1), b.clone()))
        .await
        .expect("scores");
    let mut a = scored("a", 2.1, Tier::Tier3);
    a.name = "Acme, renamed".into();
    a.facts_hash = "hash-a-2".into();
    a.coverage = 0.5;
    a.potential_value = 7_000.0;
    a.model_version = "default@4".into();
    db.store
        .commit_scores(run, &batch(a.clone(), b.clone()))
        .await
        .expect("rescored");
    for (want, engagement) in [(a, Some(engaged)), (b, None)] {
        let got = db.store.account(&want.id).await.expect("read").expect("stored");
        assert_eq!(
            (
                got.name.as_str(),
                got.domain.as_deref(),
                &got.facts,
                got.facts_hash.as_str(),
                got.score,
                got.coverage,
                got.potential_value,
            ),
            (
                want.name.as_str(),
                want.domain.as_deref(),
                &want.facts.to_value(),
                want.facts_hash.as_str(),
                want.score,
                want.coverage,
                want.potential_value,
            ),
            "{}",
            want.id
        );
        assert_eq!(
            (
                &got.explanation,
                got.model_version.as_str(),
                got.crm_tier_seen,
                got.locked,
                got.base_tier,
                got.engagement,
                got.updated_run,
            ),
            (
                &want.explanation.to_value(),
                want.model_version.as_str(),
                want.crm_tier_seen,
                want.locked,
                want.tier,
                engagement,
                Some(run),
            ),
            "{}",
            want.id
        );
    }
}
on_both_backends!(rescored_accounts_read_back_as_written);

async fn rescored_accounts_keep_their_tier_until_tiering_commits_one(db: TestDb) {
    let run = started_run(&db).await;
    let engaged = Engagement {
        until: Date::from_ymd(2026, 12, 1).expect("date"),
        by: 0,
    };
    let rescored = |id: &str, score: f64, base: Tier, engagement| Rescored {
        account: scored(id, score, base),
        engagement,
    };
    // A new account: stored with its base tier, not yet tiered, no history.
    db.store
        .commit_scores(run, &[rescored("a", 4.6, Tier::Tier1, Some(engaged))])
        .await
        .expect("scores");
    let a = db.store.account("a").await.expect("read").expect("stored");
    assert_eq!(
        (a.tier, a.base_tier, a.tiered, a.engagement),
        (Tier::Tier1, Tier::Tier1, false, Some(engaged))
    );
    assert!(db.store.tier_history("a", 10).await.expect("history").is_empty());
    let page = db.store.account_summaries(None, 10).await.expect("summaries");
    assert_eq!(
        (page[0].base_tier, page[0].tiered, page[0].engagement),
        (Tier::Tier1, false, Some(engaged))
    );

    // Tiering caps it: one history row, from nothing to the final tier, with the final reason.
    let mut capped = scored("a", 4.6, Tier::Tier2);
    capped.reason = "pyramid cap: tier_1 is full".into();
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![capped],
            ..BatchCommit::default()
        })
        .await
        .expect("final tier");
    let history = db.store.tier_history("a", 10).await.expect("history");
    let moves: Vec<(Option<Tier>, Tier, &str)> = history
        .iter()
        .map(|c| (c.from, c.to, c.reason.as_str()))
        .collect();
    assert_eq!(moves, vec![(None, Tier::Tier2, "pyramid cap: tier_1 is full")]);
    let a = db.store.account("a").await.expect("read").expect("stored");
    assert_eq!(
        (a.tier, a.base_tier, a.tiered),
        (Tier::Tier2, Tier::Tier1, true),
        "the basis is kept"
    );

    // Rescored again: the stored tier stays until tiering decides; the basis follows the scores.
    db.store
        .commit_scores(run, &[rescored("a", 3.1, Tier::Tier3, None)])
        .await
        .expect("scores");
    let a = db.store.account("a").await.expect("read").expect("stored");
    assert_eq!(
        (a.tier, a.base_tier, a.engagement, a.score),
        (Tier::Tier2, Tier::Tier3, None, 3.1)
    );
    assert_eq!(db.store.tier_history("a", 10).await.expect("history").len(), 1);

    // Accounts stored by commit_batch alone read their tier as their base tier.
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("b", 1.0, Tier::Untiered)],
            ..BatchCommit::default()
        })
        .await
        .expect("b");
    let b = db.store.account("b").await.expect("read").expect("stored");
    assert_eq!(
        (b.base_tier, b.tiered, b.engagement),
        (Tier::Untiered, true, None)
    );
}
on_both_backends!(rescored_accounts_keep_their_tier_until_tiering_commits_one);

async fn work_items_go_to_exactly_one_claimer(db: TestDb) {
    let run = started_run(&db).await;
    let batches: Vec<tierd_store::JsonText> = (0..120)
        .map(|i| json!({"accounts": [format!("acct-{i}")]}).into())
        .collect();
    let ids = db.store.enqueue_work(run, &batches).await.expect("enqueue");
    assert_eq!(ids.len(), 120);

    // Four workers, two per store, as two instances would.
    let other = db.reopen().await.expect("second instance");
    let mut workers = Vec::new();
    for w in 0..4 {
        let store = if w % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        workers.push(tokio::spawn(async move {
            let owner = format!("worker-{w}");
            let mut got = Vec::new();
            loop {
                let items = store.claim_work(run, &owner, 3).await.expect("claim");
                if items.is_empty() {
                    return got;
                }
                for item in items {
                    assert!(store
                        .complete_work(item.id, &owner, true, Some(&json!({"batch": item.batch_no})))
                        .await
                        .expect("complete"));
                    got.push(item.batch_no);
                }
            }
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.expect("worker finished"));
    }
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 120, "every item claimed exactly once");
    assert_eq!(distinct, (0..120).collect::<HashSet<i64>>());
    let progress = db.store.work_progress(run).await.expect("progress");
    assert_eq!((progress.done, progress.queued, progress.claimed), (120, 0, 0));
    assert!(progress.is_finished());
    // What each item recorded, every instance's alike, in batch order.
    let results = other.work_results(run).await.expect("results");
    assert_eq!(results, (0..120).map(|b| json!({"batch": b})).collect::<Vec<_>>());

    // A claimer that died: its item goes back to the queue, and its late result does not count.
    let more = db
        .store
        .enqueue_work(run, &[json!({"accounts": ["late"]}).into()])
        .await
        .expect("enqueue");
    let claimed = db.store.claim_work(run, "dead", 5).await.expect("claim");
    assert_eq!(
        (claimed.len(), claimed[0].id, claimed[0].batch_no),
        (1, more[0], 120)
    );
    assert_eq!(claimed[0].payload.to_value(), json!({"accounts": ["late"]}));
    assert_eq!(
        db.store
            .requeue_stale_work(Duration::ZERO)
            .await
            .expect("requeue"),
        1
    );
    let retaken = other.claim_work(run, "alive", 5).await.expect("claim");
    assert_eq!((retaken[0].id, retaken[0].attempts), (more[0], 2));
    assert!(!db
        .store
        .complete_work(more[0], "dead", true, Some(&json!({"batch": "late"})))
        .await
        .expect("complete"));
    assert!(other
        .complete_work(more[0], "alive", false, None)
        .await
        .expect("complete"));
    assert_eq!(db.store.work_progress(run).await.expect("progress").failed, 1);
    assert_eq!(
        db.store.work_results(run).await.expect("results").len(),
        120,
        "the dead claimer's result does not count"
    );
}
on_both_backends!(work_items_go_to_exactly_one_claimer);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_postgres_instance_leads_and_a_standby_takes_over() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let key = db.unique_key();
    let standby = db.reopen().await.expect("standby instance");

    let mut leader = db
        .store
        .try_lead(key)
        .await
        .expect("try")
        .expect("first instance leads");
    assert!(standby.try_lead(key).await.expect("try").is_none());
    assert!(leader.still_leading().await);

    // An orderly hand-over: leadership is free at once.
    leader.release().await.expect("release");
    let guard = standby
        .try_lead(key)
        .await
        .expect("try")
        .expect("standby leads after release");
    assert!(db.store.try_lead(key).await.expect("try").is_none());

    // The leader vanishes (its connection closes without a word): the server frees the lock when
    // it notices, which we wait for with a deadline rather than a fixed sleep.
    drop(guard);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let taken = loop {
        if let Some(g) = db.store.try_lead(key).await.expect("try") {
            break g;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "leadership not freed 10 s after the leader dropped"
        );
        tokio::task::yield_now().await;
    };
    assert!(standby.try_lead(key).await.expect("try").is_none());
    taken.release().await.expect("release");
}

#[tokio::test]
async fn a_sqlite_store_is_always_its_own_leader() {
    let db = TestDb::sqlite().await;
    let mut guard = db
        .store
        .try_lead(db.unique_key())
        .await
        .expect("try")
        .expect("leads");
    assert!(guard.still_leading().await);
    assert!(!db.store.is_shared());
    guard.release().await.expect("release");
}

/// The store holds scores, facts and reasons: a file tierd creates is readable by its owner
/// only, and so are the folders it creates for it.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_store_and_its_folders_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().expect("temp dir");
    let path = temp.path().join("state/tierd/tierd.db");
    let store = tierd_store::Store::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("store");
    store
        .begin_run(RunKind::Full, "m@1", "instance-a")
        .await
        .expect("a write creates the WAL");
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&temp.path().join("state")), 0o700);
    assert_eq!(mode(&temp.path().join("state/tierd")), 0o700);
    assert_eq!(mode(&path), 0o600);
    let wal = path.with_extension("db-wal");
    assert!(wal.exists(), "WAL journal expected");
    assert_eq!(mode(&wal), 0o600);
}

#[tokio::test]
async fn passwords_stay_out_of_errors_and_debug_output() {
    // Nothing listens on port 1: the connection fails, and the error must not carry the password.
    let err = tierd_store::Store::connect("postgres://tierd:hunter2@127.0.0.1:1/tierd")
        .await
        .expect_err("nothing listens on port 1");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "password leaked: {shown}");
    assert!(
        shown.contains("tierd@127.0.0.1:1/tierd"),
        "the error names the target: {shown}"
    );
    assert!(
        shown.contains("refused"),
        "the server's answer, not a pool timeout: {shown}"
    );

    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let store = db.reopen().await.expect("open");
    assert_eq!(format!("{store:?}"), r#"Store { backend: "postgres" }"#);
}

#[tokio::test]
async fn an_in_memory_store_keeps_its_data_while_open() {
    let store = tierd_store::Store::connect("sqlite::memory:")
        .await
        .expect("open in memory");
    let run = store
        .begin_run(RunKind::DryRun, "default@3", "test")
        .await
        .expect("start");
    store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 4.6, Tier::Tier1)],
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    // The one connection is reused, so every later query sees the same database.
    assert_eq!(store.tier_counts().await.expect("counts"), [1, 0, 0, 0]);
    assert_eq!(
        store.running_run().await.expect("running").map(|r| r.kind),
        Some(RunKind::DryRun)
    );
}

fn endpoints(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn attempt(at: i64, status: Option<u16>, outcome: DeliveryOutcome) -> DeliveryAttempt {
    DeliveryAttempt {
        at: Timestamp::from_millis(at),
        status,
        error: status.filter(|s| *s >= 300).map(|s| format!("HTTP {s}")),
        duration: Duration::from_millis(12),
        outcome,
    }
}

async fn outbox_deliveries_are_claimed_once_and_retried_with_the_same_id(db: TestDb) {
    db.store
        .enqueue_events(&[
            event("evt-1", "tier.changed", &["crm", "slack"]),
            event("evt-2", "run.finished", &["crm"]),
            event("evt-none", "run.finished", &[]),
        ])
        .await
        .expect("enqueue");
    let names = endpoints(&["crm", "slack"]);
    let t0 = 1_000_000;
    let lease = Duration::from_secs(60);

    // Two instances claim at once: each delivery goes to exactly one of them.
    let other = db.reopen().await.expect("second instance");
    let (a, b) = tokio::join!(
        db.store
            .claim_deliveries("a", &names, Timestamp::from_millis(t0), lease, 2),
        other.claim_deliveries("b", &names, Timestamp::from_millis(t0), lease, 2),
    );
    let (a, b) = (a.expect("claim a"), b.expect("claim b"));
    let mut all: Vec<(String, String)> = a
        .iter()
        .chain(&b)
        .map(|c| (c.event_id.clone(), c.endpoint.clone()))
        .collect();
    all.sort();
    assert_eq!(
        all,
        [
            ("evt-1".to_string(), "crm".to_string()),
            ("evt-1".to_string(), "slack".to_string()),
            ("evt-2".to_string(), "crm".to_string())
        ],
        "three deliveries (an event for no endpoint is not stored), none claimed twice"
    );
    assert!(db
        .store
        .claim_deliveries("c", &names, Timestamp::from_millis(t0), lease, 10)
        .await
        .expect("claim c")
        .is_empty());

    // One fails and is scheduled for later; one is delivered; one claimer dies.
    let mut claimed: Vec<_> = a
        .into_iter()
        .map(|c| ("a", c))
        .chain(b.into_iter().map(|c| ("b", c)))
        .collect();
    claimed.sort_by(|x, y| (&x.1.event_id, &x.1.endpoint).cmp(&(&y.1.event_id, &y.1.endpoint)));
    let [(crm_owner, crm1), (slack_owner, slack1), (_dead, _evt2)] = claimed.try_into().expect("three");
    assert!(db
        .store
        .record_delivery_attempt(
            crm1.id,
            crm_owner,
            &attempt(
                t0,
                Some(500),
                DeliveryOutcome::Retry {
                    at: Timestamp::from_millis(t0 + 5_000)
                }
            )
        )
        .await
        .expect("record retry"));
    assert!(db
        .store
        .record_delivery_attempt(
            slack1.id,
            slack_owner,
            &attempt(t0, Some(200), DeliveryOutcome::Delivered)
        )
        .await
        .expect("record delivered"));
    // A stale owner's word does not count.
    assert!(!db
        .store
        .record_delivery_attempt(
            slack1.id,
            slack_owner,
            &attempt(t0, Some(200), DeliveryOutcome::Delivered)
        )
        .await
        .expect("record twice"));

    // Not due before its time; at its time the retry and the dead claimer's delivery come back.
    assert!(db
        .store
        .claim_deliveries("c", &names, Timestamp::from_millis(t0 + 4_999), lease, 10)
        .await
        .expect("claim early")
        .is_empty());
    let again = db
        .store
        .claim_deliveries("c", &names, Timestamp::from_millis(t0 + 60_000), lease, 10)
        .await
        .expect("claim later");
    let again: Vec<(&str, &str, u32)> = again
        .iter()
        .map(|c| (c.event_id.as_str(), c.endpoint.as_str(), c.attempts))
        .collect();
    assert_eq!(
        again,
        [("evt-1", "crm", 1), ("evt-2", "crm", 0)],
        "same ids, attempts counted"
    );

    let log = db.store.webhook_attempts(crm1.id).await.expect("attempts");
    assert_eq!(
        log.iter().map(|a| (a.attempt, a.status)).collect::<Vec<_>>(),
        [(1, Some(500))]
    );
    let counts = db.store.webhook_delivery_counts().await.expect("counts");
    assert_eq!(
        (counts.pending, counts.delivering, counts.delivered, counts.failed),
        (0, 2, 1, 0)
    );
}
on_both_backends!(outbox_deliveries_are_claimed_once_and_retried_with_the_same_id);

async fn a_disabled_endpoint_keeps_its_deliveries_until_enabled(db: TestDb) {
    db.store
        .enqueue_events(&[
            event("evt-1", "tier.changed", &["gone"]),
            event("evt-2", "tier.changed", &["gone", "ok"]),
        ])
        .await
        .expect("enqueue");
    let names = endpoints(&["gone", "ok"]);
    let lease = Duration::from_secs(60);
    let first = db
        .store
        .claim_deliveries("a", &names, Timestamp::from_millis(10), lease, 1)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    let outcome = DeliveryOutcome::Failed {
        disable_endpoint: Some("the endpoint answered 410 Gone".to_string()),
    };
    assert!(db
        .store
        .record_delivery_attempt(first[0].id, "a", &attempt(10, Some(410), outcome))
        .await
        .expect("record 410"));
    let disabled = db.store.disabled_webhook_endpoints().await.expect("disabled");
    assert_eq!(
        disabled
            .iter()
            .map(|d| (d.name.as_str(), d.reason.as_str()))
            .collect::<Vec<_>>(),
        [("gone", "the endpoint answered 410 Gone")]
    );
    let rest = db
        .store
        .claim_deliveries("a", &names, Timestamp::from_millis(20), lease, 10)
        .await
        .expect("claim the rest");
    assert_eq!(
        rest.iter().map(|c| c.endpoint.as_str()).collect::<Vec<_>>(),
        ["ok"],
        "nothing more goes to a disabled endpoint"
    );
    assert!(db.store.enable_webhook_endpoint("gone").await.expect("enable"));
    assert!(!db
        .store
        .enable_webhook_endpoint("gone")
        .await
        .expect("enable again"));
    let resumed = db
        .store
        .claim_deliveries("a", &names, Timestamp::from_millis(30), lease, 10)
        .await
        .expect("claim after enabling");
    assert_eq!(
        resumed
            .iter()
            .map(|c| (c.event_id.as_str(), c.endpoint.as_str()))
            .collect::<Vec<_>>(),
        [("evt-2", "gone")],
        "its pending delivery resumes; the refused one stays failed"
    );
    let log = db
        .store
        .webhook_deliveries(Some("gone"), None, 10)
        .await
        .expect("log");
    assert_eq!(
        log.iter()
            .map(|d| (d.event_id.as_str(), d.state))
            .collect::<Vec<_>>(),
        [
            ("evt-2", DeliveryState::Delivering),
            ("evt-1", DeliveryState::Failed)
        ]
    );
}
on_both_backends!(a_disabled_endpoint_keeps_its_deliveries_until_enabled);

async fn purging_keeps_events_still_to_deliver(db: TestDb) {
    db.store
        .enqueue_events(&[
            event("evt-done", "tier.changed", &["crm", "slack"]),
            event("evt-half", "tier.changed", &["crm", "slack"]),
        ])
        .await
        .expect("enqueue");
    let names = endpoints(&["crm", "slack"]);
    let claimed = db
        .store
        .claim_deliveries(
            "a",
            &names,
            Timestamp::from_millis(1),
            Duration::from_secs(60),
            10,
        )
        .await
        .expect("claim");
    for c in &claimed {
        // Both of evt-done's deliveries finish (one delivered, one given up); evt-half's crm
        // delivery is delivered and its slack one waits for a retry.
        let outcome = match (c.event_id.as_str(), c.endpoint.as_str()) {
            ("evt-done", "slack") => DeliveryOutcome::Failed {
                disable_endpoint: None,
            },
            ("evt-half", "slack") => DeliveryOutcome::Retry {
                at: Timestamp::from_millis(10_000),
            },
            _ => DeliveryOutcome::Delivered,
        };
        assert!(db
            .store
            .record_delivery_attempt(c.id, "a", &attempt(1, Some(200), outcome))
            .await
            .expect("record"));
    }
    let later = Timestamp::now().plus(Duration::from_secs(3600));
    assert_eq!(db.store.purge_webhook_events(later).await.expect("purge"), 1);
    let left: Vec<(String, String)> = db
        .store
        .webhook_deliveries(None, None, 10)
        .await
        .expect("log")
        .into_iter()
        .map(|d| (d.event_id, d.endpoint))
        .collect();
    assert_eq!(
        left,
        [
            ("evt-half".to_string(), "slack".to_string()),
            ("evt-half".to_string(), "crm".to_string())
        ]
    );
    assert_eq!(
        db.store
            .purge_webhook_events(Timestamp::from_millis(0))
            .await
            .expect("purge"),
        0
    );
}
on_both_backends!(purging_keeps_events_still_to_deliver);

async fn many_events_commit_in_chunks(db: TestDb) {
    // More events and deliveries than one multi-row statement holds.
    let events: Vec<NewEvent> = (0..250)
        .map(|i| event(&format!("evt-{i:03}"), "tier.changed", &["crm", "slack"]))
        .collect();
    let run = started_run(&db).await;
    db.store
        .commit_batch(&BatchCommit {
            run,
            events,
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    let counts = db.store.webhook_delivery_counts().await.expect("counts");
    assert_eq!(counts.pending, 500);
    let first = db
        .store
        .claim_deliveries(
            "a",
            &endpoints(&["crm", "slack"]),
            Timestamp::from_millis(1),
            Duration::from_secs(60),
            3,
        )
        .await
        .expect("claim");
    assert_eq!(
        first
            .iter()
            .map(|c| (c.event_id.as_str(), c.endpoint.as_str()))
            .collect::<Vec<_>>(),
        [("evt-000", "crm"), ("evt-000", "slack"), ("evt-001", "crm")],
        "oldest event first"
    );
}
on_both_backends!(many_events_commit_in_chunks);

async fn events_are_written_with_their_cause_only(db: TestDb) {
    let run = started_run(&db).await;
    let signal = NewSignal {
        account: "a".to_string(),
        kind: "technology_adopted".to_string(),
        subject: "Snowflake".to_string(),
        date: Date::from_ymd(2026, 11, 30).expect("date"),
        source: "technographic".to_string(),
    };
    for (i, expected_new) in [(1, 1), (2, 0)] {
        let new = db
            .store
            .insert_signals_with_events(
                Some(run),
                &[(
                    signal.clone(),
                    vec![event(&format!("evt-adopted-{i}"), "technology.adopted", &["crm"])],
                )],
            )
            .await
            .expect("signals");
        assert_eq!(new, expected_new);
    }
    db.store
        .finish_run_with_events(
            run,
            RunStatus::Succeeded,
            &json!({}),
            None,
            &[event("evt-run", "run.finished", &["crm"])],
        )
        .await
        .expect("finish");
    // A run finished twice is refused, and its second event with it.
    assert!(db
        .store
        .finish_run_with_events(
            run,
            RunStatus::Failed,
            &json!({}),
            None,
            &[event("evt-run-2", "run.failed", &["crm"])]
        )
        .await
        .is_err());
    let mut ids: Vec<String> = db
        .store
        .webhook_deliveries(None, None, 10)
        .await
        .expect("log")
        .into_iter()
        .map(|d| d.event_id)
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["evt-adopted-1", "evt-run"],
        "a signal seen again announces nothing"
    );
}
on_both_backends!(events_are_written_with_their_cause_only);

fn explained(id: &str, name: &str, score: f64, tier: Tier) -> ScoredAccount {
    ScoredAccount {
        name: name.to_string(),
        explanation: json!({
            "positive": [{"text": format!("{name} fits"), "impact": 1.0}],
            "negative": [{"text": "no demo request", "impact": -0.5}],
        })
        .into(),
        ..scored(id, score, tier)
    }
}

async fn commit(db: &TestDb, run: RunId, accounts: Vec<ScoredAccount>) {
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: accounts,
            ..Default::default()
        })
        .await
        .expect("commit");
}

async fn finished(db: &TestDb, run: RunId, pyramid: [u64; 4]) {
    db.store
        .finish_run(run, RunStatus::Succeeded, &json!({ "pyramid": pyramid }), None)
        .await
        .expect("finish");
}

/// Reports read by the API and the dashboard, on a fixture small enough to count by hand:
/// run 1 tiers a1..a5 (T1: a1, a2; T2: a3; T3: a4; untiered: a5); run 2 moves a2 to T2 and a5
/// to T3 and adds a6 in T1; run 3 moves a2 back to T1 (so between runs 1 and 3 it did not move).
async fn reports_page_count_search_and_compare_runs(db: TestDb) {
    let r1 = started_run(&db).await;
    commit(
        &db,
        r1,
        vec![
            explained("a1", "Acme Corp", 4.8, Tier::Tier1),
            explained("a2", "Beta Labs", 4.6, Tier::Tier1),
            explained("a3", "acme widgets", 4.0, Tier::Tier2),
            explained("a4", "Gamma 50%", 3.2, Tier::Tier3),
            explained("a5", "Delta", 1.0, Tier::Untiered),
        ],
    )
    .await;
    finished(&db, r1, [2, 1, 1, 1]).await;
    assert_eq!(db.store.tier_counts().await.expect("counts"), [2, 1, 1, 1]);

    let r2 = started_run(&db).await;
    commit(
        &db,
        r2,
        vec![
            explained("a2", "Beta Labs", 4.0, Tier::Tier2),
            explained("a5", "Delta", 3.1, Tier::Tier3),
            explained("a6", "Epsilon", 4.9, Tier::Tier1),
            // Rescored with the same tier: not a move, and not counted twice.
            explained("a1", "Acme Corp", 4.7, Tier::Tier1),
        ],
    )
    .await;
    finished(&db, r2, [2, 2, 2, 0]).await;
    assert_eq!(db.store.tier_counts().await.expect("counts"), [2, 2, 2, 0]);
    let r3 = started_run(&db).await;
    commit(&db, r3, vec![explained("a2", "Beta Labs", 4.6, Tier::Tier1)]).await;
    finished(&db, r3, [3, 1, 2, 0]).await;
    let totals = db.store.tier_totals().await.expect("totals");
    assert_eq!((totals.counts, totals.total), ([3, 1, 2, 0], 6));
    // Folding the counts changes nothing.
    db.store.compact_tier_counts().await.expect("compact");
    assert_eq!(db.store.tier_counts().await.expect("counts"), [3, 1, 2, 0]);

    // Tier 1 paged two at a time: a1, a2 then a6.
    let q = |tier, search: Option<&str>, after: Option<&str>, limit| AccountQuery {
        tier,
        search: search.map(str::to_string),
        after: after.map(str::to_string),
        limit,
    };
    let page = db
        .store
        .account_page(&q(Some(Tier::Tier1), None, None, 2))
        .await
        .expect("page");
    let ids: Vec<&str> = page.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["a1", "a2"]);
    assert_eq!(page.next_after.as_deref(), Some("a2"));
    assert_eq!(page.accounts[0].name, "Acme Corp");
    assert_eq!(page.accounts[0].reasons_up, ["Acme Corp fits"]);
    assert_eq!(page.accounts[0].reasons_down, ["no demo request"]);
    let page = db
        .store
        .account_page(&q(Some(Tier::Tier1), None, Some("a2"), 2))
        .await
        .expect("page");
    let ids: Vec<&str> = page.accounts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!((ids, page.next_after), (vec!["a6"], None));

    // Search: a name prefix in any case, a domain prefix, an exact id, LIKE wildcards literal.
    let found = |page: tierd_store::AccountPage| page.accounts.into_iter().map(|a| a.id).collect::<Vec<_>>();
    assert_eq!(
        found(
            db.store
                .account_page(&q(None, Some("ACME"), None, 10))
                .await
                .expect("search")
        ),
        ["a1", "a3"]
    );
    assert_eq!(
        found(
            db.store
                .account_page(&q(Some(Tier::Tier2), Some("acme"), None, 10))
                .await
                .expect("search")
        ),
        ["a3"]
    );
    assert_eq!(
        found(
            db.store
                .account_page(&q(None, Some("a5.exa"), None, 10))
                .await
                .expect("search")
        ),
        ["a5"]
    );
    assert_eq!(
        found(
            db.store
                .account_page(&q(None, Some("a4"), None, 10))
                .await
                .expect("search")
        ),
        ["a4"]
    );
    assert_eq!(
        found(
            db.store
                .account_page(&q(None, Some("gamma 50%"), None, 10))
                .await
                .expect("search")
        ),
        ["a4"]
    );
    assert!(found(
        db.store
            .account_page(&q(None, Some("gamma 5_"), None, 10))
            .await
            .expect("search")
    )
    .is_empty());

    // The pyramid per run, oldest first.
    let history = db.store.pyramid_history(10).await.expect("history");
    let points: Vec<(RunId, [u64; 4])> = history.iter().map(|p| (p.run, p.counts)).collect();
    assert_eq!(
        points,
        [(r1, [2, 1, 1, 1]), (r2, [2, 2, 2, 0]), (r3, [3, 1, 2, 0])]
    );

    // From run 1 to run 3: a5 untiered -> T3, a6 new -> T1; a2 went down and back up (no move).
    let report = db.store.movements(r1, r3, None, 10).await.expect("movements");
    let mut expected = [[0u64; 4]; 5];
    expected[3][2] = 1;
    expected[4][0] = 1;
    assert_eq!(report.matrix, expected);
    let moves: Vec<(&str, Option<Tier>, Tier)> = report
        .moves
        .iter()
        .map(|m| (m.account.as_str(), m.from, m.to))
        .collect();
    assert_eq!(
        moves,
        [
            ("a5", Some(Tier::Untiered), Tier::Tier3),
            ("a6", None, Tier::Tier1)
        ]
    );
    assert_eq!(report.moves[0].name, "Delta");
    assert_eq!(report.moves[0].reason, "score 3.1");
    // From run 1 to run 2 a2 did move; paged one at a time.
    let report = db.store.movements(r1, r2, None, 1).await.expect("movements");
    assert_eq!(report.matrix[0][1], 1);
    assert_eq!(report.moves[0].account, "a2");
    assert_eq!(report.next_after.as_deref(), Some("a2"));
}
on_both_backends!(reports_page_count_search_and_compare_runs);

/// A first load puts the search indexes off (searches still answer, reading the table) and has
/// them built as the migration made them; a store that holds accounts keeps them; a store opened
/// with one missing (a first load stopped half-way) builds it.
async fn search_indexes_are_put_off_for_a_first_load_only(db: TestDb) {
    let made = db.search_indexes().await;
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(db.store.defer_search_indexes().await.expect("defer"));
    assert!(db.search_indexes().await.is_empty());

    let run = started_run(&db).await;
    commit(
        &db,
        run,
        vec![
            explained("a1", "Acme Corp", 4.8, Tier::Tier1),
            explained("a2", "Beta Labs", 3.5, Tier::Tier2),
        ],
    )
    .await;
    let search = AccountQuery {
        search: Some("acme".into()),
        limit: 10,
        ..AccountQuery::default()
    };
    let ids = |page: Vec<tierd_store::AccountListing>| page.into_iter().map(|a| a.id).collect::<Vec<_>>();
    let page = db.store.account_page(&search).await.expect("search");
    assert_eq!(ids(page.accounts), ["a1"]);

    db.store.build_search_indexes().await.expect("build");
    assert_eq!(db.search_indexes().await, made);
    let page = db.store.account_page(&search).await.expect("search");
    assert_eq!(ids(page.accounts), ["a1"]);

    // With accounts in, nothing is put off.
    assert!(!db.store.defer_search_indexes().await.expect("defer"));
    assert_eq!(db.search_indexes().await, made);

    db.execute_raw("DROP INDEX accounts_by_lower_domain").await;
    let _reopened = db.reopen().await.expect("reopen");
    assert_eq!(db.search_indexes().await, made);
}

on_both_backends!(search_indexes_are_put_off_for_a_first_load_only);

async fn rejections_are_summarised_by_reason_and_retried(db: TestDb) {
    let run = started_run(&db).await;
    let accounts = ["r1", "r2", "r3", "r4"]
        .map(|id| scored(id, 4.0, Tier::Tier2))
        .to_vec();
    let picklist = "INVALID_OPTION: tier_2 is not a picklist value";
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: accounts,
            rejected: vec![
                RejectedPush {
                    retry_after: Some(Duration::from_secs(3600)),
                    ..rejected("r1", Tier::Tier2, "rate limited", false)
                },
                rejected("r2", Tier::Tier2, picklist, true),
                rejected("r3", Tier::Tier2, picklist, true),
                rejected("r4", Tier::Tier2, "field is read-only", true),
            ],
            ..Default::default()
        })
        .await
        .expect("commit");
    let groups: Vec<(String, bool, u64)> = db
        .store
        .rejection_summary()
        .await
        .expect("summary")
        .into_iter()
        .map(|g| (g.reason, g.permanent, g.records))
        .collect();
    assert_eq!(
        groups,
        [
            (picklist.to_string(), true, 2),
            ("field is read-only".to_string(), true, 1),
            ("rate limited".to_string(), false, 1),
        ]
    );

    // Retrying one makes it pending and due; the others stay as they were.
    assert_eq!(
        db.store
            .retry_pending(Some(&["r2".to_string(), "zz".to_string()]))
            .await
            .expect("retry"),
        1
    );
    let due = |p: &tierd_store::PendingPush| !p.permanent && p.next_attempt_at <= Timestamp::now();
    let pending = db.store.pending_pushes(true).await.expect("pending");
    let state: Vec<(&str, bool)> = pending.iter().map(|p| (p.account.as_str(), due(p))).collect();
    assert_eq!(state, [("r1", false), ("r2", true), ("r3", false), ("r4", false)]);
    // The schema check passing again frees the permanent ones only.
    assert_eq!(db.store.retry_permanent().await.expect("retry permanent"), 2);
    assert!(db.store.pending_pushes(false).await.expect("pending").len() == 4);
    // Everything.
    assert_eq!(db.store.retry_pending(None).await.expect("retry all"), 4);
    assert!(db
        .store
        .pending_pushes(true)
        .await
        .expect("pending")
        .iter()
        .all(due));
}
on_both_backends!(rejections_are_summarised_by_reason_and_retried);

async fn a_pinned_scoring_date_dates_the_tier_history(db: TestDb) {
    // A backfill or a simulation scores as of a pinned day: its tier changes are dated that day,
    // so the funnel counts a deal under the tier its account held then.
    let run = started_run(&db).await;
    let at = Timestamp::from_millis(1_900_000_000_000);
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![scored("a", 4.6, Tier::Tier1)],
            history_at: Some(at),
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    let timeline = db.store.tier_timeline().await.expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert_eq!(
        (timeline[0].account.as_str(), timeline[0].at, timeline[0].tier),
        ("a", at.millis(), Tier::Tier1)
    );
}
on_both_backends!(a_pinned_scoring_date_dates_the_tier_history);

/// Commits `a` (pushed at Tier 1) and an untiered "b" in a new run; returns the run and the ids
/// to read: "a", "b" and one the store does not hold.
async fn commit_a_pushed_and_b(db: &TestDb, a: ScoredAccount) -> (RunId, Vec<String>) {
    let run = started_run(db).await;
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![a, scored("b", 2.0, Tier::Untiered)],
            pushed: vec![pushed("a", Tier::Tier1)],
            ..BatchCommit::default()
        })
        .await
        .expect("commit");
    (run, vec!["a".to_string(), "b".to_string(), "missing".to_string()])
}

async fn the_push_reads_every_column_but_the_facts_and_keeps_only_the_reasons(db: TestDb) {
    let mut a = scored("a", 4.6, Tier::Tier1);
    a.explanation =
        json!({"reasons": "industry: Software (+0.2); employees 1200 (+0.1)", "detail": {"big": [1, 2, 3]}})
            .into();
    let (run, ids) = commit_a_pushed_and_b(&db, a).await;
    let full = db.store.accounts(&ids).await.expect("read");
    let brief = db.store.accounts_for_push(&ids).await.expect("read brief");
    assert_eq!(brief.len(), 2);
    for (id, reasons) in [
        ("a", json!("industry: Software (+0.2); employees 1200 (+0.1)")),
        ("b", json!(null)),
    ] {
        let (f, b) = (&full[id], &brief[id]);
        assert_eq!(b.facts, json!(null), "{id}");
        assert_eq!(b.explanation, json!({ "reasons": reasons }), "{id}");
        let mut expected = f.clone();
        expected.facts = json!(null);
        expected.explanation = json!({ "reasons": reasons });
        assert_eq!(b, &expected, "every other column as `accounts` reads it");
    }
    // Rescored, "a" keeps its new explanation's reasons; a batch commit over it (the push's, its
    // explanation only the reasons it read) leaves them, and "b" is given some.
    let mut a = scored("a", 4.7, Tier::Tier1);
    a.explanation =
        json!({"detail": {"reasons": "not these"}, "reasons": "site visits in 30 days 20 (+0.3)"}).into();
    let mut b = scored("b", 2.1, Tier::Untiered);
    b.explanation = json!({"reasons": "industry: Retail (+0.2)"}).into();
    let rescored: Vec<Rescored> = [a, b]
        .into_iter()
        .map(|account| Rescored {
            account,
            engagement: None,
        })
        .collect();
    db.store.commit_scores(run, &rescored).await.expect("rescore");
    let mut again = scored("a", 4.7, Tier::Tier2);
    again.explanation = json!({"reasons": "what the push read"}).into();
    db.store
        .commit_batch(&BatchCommit {
            run,
            scored: vec![again],
            ..BatchCommit::default()
        })
        .await
        .expect("commit the final tier");
    let brief = db.store.accounts_for_push(&ids).await.expect("read brief");
    for (id, reasons) in [
        ("a", "site visits in 30 days 20 (+0.3)"),
        ("b", "industry: Retail (+0.2)"),
    ] {
        assert_eq!(brief[id].explanation, json!({ "reasons": reasons }), "{id}");
    }
    assert_eq!(brief["a"].tier, Tier::Tier2);
}
on_both_backends!(the_push_reads_every_column_but_the_facts_and_keeps_only_the_reasons);

async fn a_read_of_the_facts_reads_every_column_but_the_explanation(db: TestDb) {
    let mut a = scored("a", 4.6, Tier::Tier1);
    a.facts = json!({"firmographic.industry": {"value": "Software"}}).into();
    a.explanation = json!({"reasons": "industry: Software (+0.2)", "detail": {"big": [1, 2, 3]}}).into();
    let (_, ids) = commit_a_pushed_and_b(&db, a).await;
    let full = db.store.accounts(&ids).await.expect("read");
    let facts = db.store.accounts_facts(&ids).await.expect("read the facts");
    assert_eq!(facts.len(), 2);
    assert_eq!(
        facts["a"].facts,
        json!({"firmographic.industry": {"value": "Software"}})
    );
    for id in ["a", "b"] {
        assert_eq!(facts[id].explanation, json!(null), "{id}");
        let mut expected = full[id].clone();
        expected.explanation = json!(null);
        assert_eq!(facts[id], expected, "every other column as `accounts` reads it");
    }
}
on_both_backends!(a_read_of_the_facts_reads_every_column_but_the_explanation);
