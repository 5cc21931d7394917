//! Deals and their history, on SQLite and on PostgreSQL: new, unchanged, moved, reopened,
//! deleted and restored deals.

#[allow(dead_code)] // the helpers other store tests use
mod common;

use tierd_core::Date;
use tierd_store::{DealRecord, DealSync, Timestamp};

use common::TestDb;

const DAY: i64 = 86_400_000;

fn deal(id: &str, account: &str, stage: &str, closed: bool, won: bool) -> DealRecord {
    DealRecord {
        id: id.into(),
        account: Some(account.into()),
        pipeline: Some("default".into()),
        stage: Some(stage.into()),
        amount: Some(1000.0),
        currency: Some("USD".into()),
        created_at: Some(Timestamp::from_millis(100 * DAY)),
        close_date: closed.then(|| Date::from_days(130)),
        closed: Some(closed),
        won: Some(won),
        stage_entries: vec![("appointmentscheduled".into(), Timestamp::from_millis(100 * DAY))],
    }
}

fn events(history: &[tierd_store::DealEvent]) -> Vec<&str> {
    history.iter().map(|e| e.event.as_str()).collect()
}

async fn deals_lifecycle(db: TestDb) {
    let s = &db.store;
    let first = s
        .record_deals(
            None,
            &[
                deal("d1", "a1", "appointmentscheduled", false, false),
                deal("d2", "a2", "closedwon", true, true),
            ],
        )
        .await
        .expect("record");
    assert_eq!(
        first,
        DealSync {
            new: 2,
            ..DealSync::default()
        }
    );

    // The same deals again: nothing changed, nothing written.
    let again = s
        .record_deals(
            None,
            &[
                deal("d1", "a1", "appointmentscheduled", false, false),
                deal("d2", "a2", "closedwon", true, true),
            ],
        )
        .await
        .expect("record again");
    assert_eq!(again, DealSync::default());

    // d1 moves to a3; d2 is reopened.
    let mut moved = deal("d1", "a3", "appointmentscheduled", false, false);
    moved.amount = Some(2000.0);
    let reopened = deal("d2", "a2", "contractsent", false, false);
    let sync = s.record_deals(None, &[moved, reopened]).await.expect("changes");
    assert_eq!(
        sync,
        DealSync {
            changed: 2,
            moved: 1,
            reopened: 1,
            ..DealSync::default()
        }
    );

    let live = s.deals_for_report().await.expect("read");
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].account.as_deref(), Some("a3"));
    assert_eq!(live[0].amount, Some(2000.0));
    assert_eq!(live[1].closed, Some(false));
    assert_eq!(live[1].close_date, None);
    assert_eq!(
        s.live_deal_ids(&["a2".into(), "a3".into()]).await.expect("ids"),
        vec!["d1", "d2"]
    );

    // d2 deleted in the CRM: out of reports; seen again: restored.
    assert_eq!(s.delete_deals(None, &["d2".into()]).await.expect("delete"), 1);
    assert_eq!(
        s.delete_deals(None, &["d2".into()]).await.expect("delete twice"),
        0
    );
    assert_eq!(s.deals_for_report().await.expect("read").len(), 1);
    let back = s
        .record_deals(None, &[deal("d2", "a2", "contractsent", false, false)])
        .await
        .expect("restore");
    assert_eq!(
        back,
        DealSync {
            changed: 1,
            restored: 1,
            ..DealSync::default()
        }
    );
    assert_eq!(s.deals_for_report().await.expect("read").len(), 2);
    let d1 = s.deal_history("d1").await.expect("history");
    // Created and its dated first stage on day 100, then moved and its amount changed.
    assert_eq!(events(&d1), ["created", "stage", "moved", "amount"]);
    assert_eq!((d1[0].at, d1[1].at), (100 * DAY, 100 * DAY));
    assert_eq!(d1[2].account.as_deref(), Some("a3"));
    let d2 = s.deal_history("d2").await.expect("history");
    assert_eq!(
        events(&d2),
        ["created", "stage", "stage", "reopened", "stage", "deleted", "restored"]
    );
    assert_eq!(d2[2].stage.as_deref(), Some("closedwon"));
}
on_both_backends!(deals_lifecycle);

async fn deal_without_account_or_stage_is_kept(db: TestDb) {
    let s = &db.store;
    let bad = DealRecord {
        id: "x".into(),
        ..DealRecord::default()
    };
    assert_eq!(s.record_deals(None, &[bad]).await.expect("record").new, 1);
    let live = s.deals_for_report().await.expect("read");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].account, None);
    assert_eq!(live[0].closed, None);
}
on_both_backends!(deal_without_account_or_stage_is_kept);

async fn a_large_call_is_recorded_as_deal_after_deal(db: TestDb) {
    // 1,200 deals: more than one statement's worth, read and written a chunk at a time. Within
    // the call d0003 comes again unchanged (same chunk) and d0007 again won with a new amount
    // (a later chunk): each is diffed against what the call wrote before it, as one call per
    // deal would.
    let s = &db.store;
    let mut deals: Vec<DealRecord> = (0..1200)
        .map(|i| deal(&format!("d{i:04}"), "a1", "appointmentscheduled", false, false))
        .collect();
    deals.insert(10, deal("d0003", "a1", "appointmentscheduled", false, false));
    let mut won = deal("d0007", "a1", "closedwon", true, true);
    won.amount = Some(2000.0);
    deals.insert(1100, won);
    let sync = s.record_deals(None, &deals).await.expect("record");
    assert_eq!(
        sync,
        DealSync {
            new: 1200,
            changed: 1,
            ..DealSync::default()
        }
    );
    assert_eq!(
        events(&s.deal_history("d0003").await.expect("history")),
        ["created", "stage"]
    );
    assert_eq!(
        events(&s.deal_history("d0007").await.expect("history")),
        ["created", "stage", "stage", "amount"]
    );
    let live = s.deals_for_report().await.expect("read");
    assert_eq!(live.len(), 1200);
    let d7 = live.iter().find(|d| d.id == "d0007").expect("d0007");
    assert_eq!(
        (d7.stage.as_deref(), d7.amount, d7.won),
        (Some("closedwon"), Some(2000.0), Some(true))
    );

    // The streamed read gives the same deals in the same order.
    let mut streamed = Vec::new();
    s.for_each_report_deal(|d| streamed.push((d.id.to_string(), d.amount, d.close_date)))
        .await
        .expect("stream");
    let read: Vec<_> = live
        .iter()
        .map(|d| (d.id.clone(), d.amount, d.close_date))
        .collect();
    assert_eq!(streamed, read);
}
on_both_backends!(a_large_call_is_recorded_as_deal_after_deal);
