//! The shadow model's scores and tier history, on SQLite and on PostgreSQL: a history row only
//! where a shadow tier changed, a new model version starting its history over, and the timeline
//! the funnel reads being the latest version's alone.

#[allow(dead_code)] // the helpers other store tests use
mod common;

use tierd_core::Tier;
use tierd_store::{RunKind, ShadowScore};

use common::TestDb;

fn shadow(account: &str, score: f64, tier: Tier) -> ShadowScore {
    ShadowScore {
        account: account.into(),
        score,
        tier,
    }
}

async fn shadow_history_keeps_changes_only(db: TestDb) {
    let s = &db.store;
    let run = s.begin_run(RunKind::Full, "m@1", "test").await.expect("run");
    // First scores: every account's first shadow tier is a change.
    let first = [
        shadow("a1", 4.6, Tier::Tier1),
        shadow("a2", 3.2, Tier::Tier3),
        shadow("a3", 1.0, Tier::Untiered),
    ];
    assert_eq!(
        s.record_shadow(run, "cand@1", &first, None)
            .await
            .expect("record"),
        3
    );
    // Again, a2 moves to tier 2 and a1's score moves within its tier: one change.
    let second = [
        shadow("a1", 4.7, Tier::Tier1),
        shadow("a2", 3.9, Tier::Tier2),
        shadow("a3", 1.0, Tier::Untiered),
    ];
    assert_eq!(
        s.record_shadow(run, "cand@1", &second, None)
            .await
            .expect("record"),
        1
    );
    let timeline = s.shadow_timeline().await.expect("timeline");
    let seen: Vec<(&str, Tier)> = timeline.iter().map(|e| (e.account.as_str(), e.tier)).collect();
    assert_eq!(
        seen,
        vec![
            ("a1", Tier::Tier1),
            ("a2", Tier::Tier3),
            ("a2", Tier::Tier2),
            ("a3", Tier::Untiered)
        ]
    );
    assert_eq!(
        s.shadow_pyramid().await.expect("pyramid"),
        Some(("cand@1".to_string(), [1, 1, 0, 1]))
    );
    // A new candidate starts over: its first tiers are changes even where equal, and the
    // timeline is its own.
    assert_eq!(
        s.record_shadow(run, "cand@2", &[shadow("a1", 4.6, Tier::Tier1)], None)
            .await
            .expect("record"),
        1
    );
    let timeline = s.shadow_timeline().await.expect("timeline");
    assert_eq!(timeline.len(), 1);
    assert_eq!(
        (timeline[0].account.as_str(), timeline[0].tier),
        ("a1", Tier::Tier1)
    );
    assert_eq!(
        s.shadow_pyramid().await.expect("pyramid"),
        Some(("cand@2".to_string(), [1, 0, 0, 0]))
    );
    // The live tier history is untouched by any of it.
    assert!(s.tier_timeline().await.expect("live").is_empty());
}
on_both_backends!(shadow_history_keeps_changes_only);

async fn no_shadow_model_no_shadow(db: TestDb) {
    assert!(db.store.shadow_timeline().await.expect("timeline").is_empty());
    assert_eq!(db.store.shadow_pyramid().await.expect("pyramid"), None);
}
on_both_backends!(no_shadow_model_no_shadow);
