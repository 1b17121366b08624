//! The transactional outbox: the event announcing a stored interchange is
//! written in the same transaction, published by the relay, marked only
//! after a confirmed publish, and published again after a failure.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fixture;

use std::sync::atomic::{AtomicUsize, Ordering};

use tradehub::hub::outbox::{self, InProcess, Publish, RelayError};
use tradehub::hub::{Intake, Submission};
use tradehub::store::{Partner, PendingMessage, Store, Table};
use tradehub::timestamp::Timestamp;

/// Fails the first `failures` publishes, then succeeds.
struct Flaky {
    failures: usize,
    calls: AtomicUsize,
    published: std::sync::Mutex<Vec<String>>,
}

impl Publish for Flaky {
    fn publish<'a>(&'a self, m: &'a PendingMessage) -> outbox::Sent<'a> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.failures {
                return Err(RelayError::Publish("broker away".into()));
            }
            self.published
                .lock()
                .unwrap()
                .push(m.message.message_id.clone());
            Ok(())
        })
    }
}

async fn intake() -> (std::path::PathBuf, Intake, Partner) {
    let dir =
        std::env::temp_dir().join(format!("tradehub-outbox-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    let (intake, partner) = common::broker_intake(&store).await;
    (dir, intake, partner)
}

#[tokio::test]
async fn stored_interchange_event_is_relayed_once_confirmed() {
    let (dir, intake, partner) = intake().await;
    let Submission::Stored(receipt) = intake
        .submit(&partner, fixture("ok/cusdec-d96b-unoc.edi"))
        .await
        .unwrap()
    else {
        panic!("not stored");
    };
    let store = intake.store();
    // Written with the interchange: its event, and for each of its two
    // messages the answer to the sender and the declaration's status event.
    assert_eq!(store.outbox_backlog().await.unwrap(), 5);
    // A duplicate writes nothing new.
    intake
        .submit(&partner, fixture("ok/cusdec-d96b-unoc.edi"))
        .await
        .unwrap();
    assert_eq!(store.count(Table::Outbox).await.unwrap(), 5);

    let inproc = InProcess::new(16);
    let mut sub = inproc.subscribe();
    assert_eq!(outbox::drain(store, &inproc).await.unwrap(), 5);
    let mut relayed = Vec::new();
    for _ in 0..5 {
        relayed.push(sub.recv().await.unwrap());
    }
    let keys: Vec<&str> = relayed
        .iter()
        .map(|m| m.message.routing_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "interchange.validated",
            "ack.KRBROKER01",
            "declaration.rejected",
            "ack.KRBROKER01",
            "declaration.rejected"
        ],
        "in commit order"
    );
    let m = relayed.swap_remove(0);
    assert_eq!(m.message.exchange, "tradehub.events");
    assert_eq!(m.message.routing_key, "interchange.validated");
    assert_eq!(
        m.message.message_id,
        format!("{}/validated", receipt.interchange.id)
    );
    let json: serde_json::Value = serde_json::from_slice(&m.message.payload).unwrap();
    assert_eq!(json["type"], "interchange.validated");
    assert_eq!(json["interchange"]["control_reference"], "20261124001");
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert_eq!(
        outbox::drain(store, &inproc).await.unwrap(),
        0,
        "nothing twice"
    );
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn failed_publish_stays_pending_and_is_retried() {
    let (dir, intake, partner) = intake().await;
    intake
        .submit(&partner, fixture("ok/cusdec-d96b-unoc.edi"))
        .await
        .unwrap();
    let rejected = String::from_utf8(fixture("err/unt-count.edi"))
        .unwrap()
        .replace("20261124001", "20261124777");
    intake
        .submit(&partner, rejected.into_bytes())
        .await
        .unwrap();
    let flaky = Flaky {
        failures: 1,
        calls: AtomicUsize::new(0),
        published: Default::default(),
    };
    assert!(outbox::drain(intake.store(), &flaky).await.is_err());
    // 5 rows of the valid interchange (see above), 1 of the rejected one.
    assert_eq!(
        intake.store().outbox_backlog().await.unwrap(),
        6,
        "nothing marked after a failed publish"
    );
    assert_eq!(outbox::drain(intake.store(), &flaky).await.unwrap(), 6);
    let published = flaky.published.lock().unwrap().clone();
    assert_eq!(published.len(), 6);
    assert!(
        published[0].ends_with("/validated") && published[5].ends_with("/rejected"),
        "{published:?}"
    );

    // The relay loop wakes on commit and stops on shutdown.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let inproc = std::sync::Arc::new(InProcess::new(16));
    let mut sub = inproc.subscribe();
    let task = tokio::spawn(outbox::relay(
        intake.store().clone(),
        inproc.clone(),
        intake.outbox_wake(),
        tradehub::hub::outbox::RelaySettings {
            poll: std::time::Duration::from_secs(3600),
            ..Default::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let third = String::from_utf8(fixture("ok/cusdec-d96b-unoc.edi"))
        .unwrap()
        .replace("20261124001", "20261124888");
    intake.submit(&partner, third.into_bytes()).await.unwrap();
    let m = tokio::time::timeout(std::time::Duration::from_secs(5), sub.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.message.routing_key, "interchange.validated");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    intake.store().close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two relays (as of two hub instances on one PostgreSQL) never hold the
/// same rows: a claimed batch is skipped by the other claim, given back
/// when its relay fails (the claim is dropped), and gone once marked. And
/// the order per destination holds across them: a row behind one the
/// other relay holds, to the same exchange and routing key, waits until
/// that one is published (before, it was taken and could be published
/// first: a "cleared" answer overtook the "awaiting permits" another
/// instance was still sending).
#[tokio::test]
async fn relays_of_several_instances_claim_different_rows() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store
        .enqueue_outbox(
            &[
                message("permit.A", "a-1"),
                message("permit.B", "b-1"),
                message("permit.A", "a-2"),
                message("permit.C", "c-1"),
                message("permit.B", "b-2"),
            ],
            Timestamp::now(),
        )
        .await
        .unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 5);

    let ids = |c: &tradehub::store::OutboxClaim| -> Vec<String> {
        c.messages
            .iter()
            .map(|m| m.message.message_id.clone())
            .collect()
    };
    let first = store.claim_outbox(2, None).await.unwrap();
    let second = store.claim_outbox(10, None).await.unwrap();
    assert_eq!(ids(&first), ["a-1", "b-1"]);
    assert_eq!(
        ids(&second),
        ["c-1"],
        "the first claim's rows are skipped, and so are the rows behind them"
    );
    // The first relay fails: its rows go back; the second marks its own.
    drop(first);
    store.mark_claimed(second, Timestamp::now()).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 4);
    let again = store.claim_outbox(10, None).await.unwrap();
    assert_eq!(ids(&again), ["a-1", "b-1", "a-2", "b-2"]);
    store.mark_claimed(again, Timestamp::now()).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    assert!(
        store
            .claim_outbox(10, None)
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// One broker per store, held while relaying too: an instance without a
/// broker started before any instance with one recorded its prefix (serve
/// checks only at start) claims nothing once one has, so it does not mark
/// their rows published without sending them; a relay of another prefix
/// neither. The row waits for the relay of the recorded broker.
#[tokio::test]
async fn a_relay_of_another_broker_than_the_stores_claims_nothing() {
    use tradehub::hub::outbox::{self, InProcess, RelayError};
    use tradehub::store::StoreError;
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store
        .enqueue_outbox(&[message("permit.A", "a-1")], Timestamp::now())
        .await
        .unwrap();
    // Before any broker is recorded, every relay may claim; one with a
    // broker records it.
    drop(store.claim_outbox(10, None).await.unwrap());
    assert_eq!(store.outbox_broker().await.unwrap(), None);
    drop(store.claim_outbox(10, Some("hub.")).await.unwrap());
    assert_eq!(
        store.outbox_broker().await.unwrap().as_deref(),
        Some("hub.")
    );

    let in_process = InProcess::new(8);
    let mut seen = in_process.subscribe();
    match outbox::drain(&store, &in_process).await {
        Err(RelayError::Store(StoreError::OutboxBroker { recorded, ours })) => {
            assert_eq!((recorded.as_str(), ours), ("hub.", None));
        }
        other => panic!("the in-process relay claimed: {other:?}"),
    }
    assert!(seen.try_recv().is_err(), "nothing was sent");
    let error = store.claim_outbox(10, Some("other.")).await.unwrap_err();
    assert!(error.to_string().contains("\"hub.\""), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(store.outbox_backlog().await.unwrap(), 1);

    let claim = store.claim_outbox(10, Some("hub.")).await.unwrap();
    assert_eq!(claim.messages.len(), 1);
    store.mark_claimed(claim, Timestamp::now()).await.unwrap();
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// Sets the broker record's `seen_at` `secs` seconds in the past, as a
/// relay that stopped then would have left it.
async fn age_broker_record(url: &str, secs: i64) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    let then = Timestamp::now().plus_secs(-secs).to_string();
    sqlx::query(&format!("UPDATE outbox_broker SET seen_at = '{then}'"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

/// The record of the broker is held while an instance with it runs:
/// `outbox broker --forget` is refused while its relay claimed in the last
/// 90 s, and a relay that finds the record forgotten anyway records it
/// again, so an instance without a broker started meanwhile stops claiming
/// (before, it marked the outbox published in-process, none of it reaching
/// the agencies' queues). On both backends.
#[tokio::test]
async fn the_broker_record_is_held_while_a_relay_with_it_runs() {
    use tradehub::store::{Forget, StoreError};
    let dir =
        std::env::temp_dir().join(format!("tradehub-broker-{}", uuid::Uuid::now_v7().simple()));
    let sqlite = Store::embedded_url(&dir).unwrap();
    let pg = common::pg_database().await;
    let mut urls = vec![sqlite];
    urls.extend(pg.as_ref().map(|(url, _)| url.clone()));
    for url in urls {
        let store = Store::open(&url).await.unwrap();
        let now = Timestamp::now();
        assert_eq!(
            store.forget_outbox_broker().await.unwrap(),
            Forget::NoneRecorded
        );
        // Recorded at start, not yet seen by a relay: forgotten at once (an
        // instance stopped before its relay ran).
        store.record_outbox_broker("hub.", now).await.unwrap();
        assert_eq!(
            store.outbox_broker_seen().await.unwrap(),
            Some(("hub.".into(), None))
        );
        assert_eq!(
            store.forget_outbox_broker().await.unwrap(),
            Forget::Forgotten("hub.".into())
        );
        // A relay with the broker records it again at its next claim, and
        // marks it seen.
        drop(store.claim_outbox(10, Some("hub.")).await.unwrap());
        let (prefix, seen) = store.outbox_broker_seen().await.unwrap().unwrap();
        assert_eq!(prefix, "hub.");
        let seen = seen.unwrap();
        assert!((seen.unix() - Timestamp::now().unix()).abs() <= 5, "{seen}");
        // While seen, not forgotten …
        match store.forget_outbox_broker().await.unwrap() {
            Forget::InUse {
                prefix,
                seen_secs_ago,
            } => {
                assert_eq!(prefix, "hub.");
                assert!((0..=5).contains(&seen_secs_ago), "{seen_secs_ago}");
            }
            other => panic!("forgotten under a running relay: {other:?}"),
        }
        // … and a relay without a broker claims nothing.
        assert!(matches!(
            store.claim_outbox(10, None).await,
            Err(StoreError::OutboxBroker { .. })
        ));
        // Its broker away, the relay keeps the record seen without claiming:
        // seen long ago (by the database's clock, which every host shares),
        // it is marked again.
        age_broker_record(&url, 600).await;
        store.keep_outbox_broker(Some("hub.")).await.unwrap();
        let (_, seen) = store.outbox_broker_seen().await.unwrap().unwrap();
        assert!((seen.unwrap().unix() - Timestamp::now().unix()).abs() <= 5);
        assert!(matches!(
            store.keep_outbox_broker(Some("other.")).await,
            Err(StoreError::OutboxBroker { .. })
        ));
        // Last seen 89 s ago: kept; 91 s: forgotten.
        age_broker_record(&url, 89).await;
        assert!(matches!(
            store.forget_outbox_broker().await.unwrap(),
            Forget::InUse {
                seen_secs_ago: 89..=92,
                ..
            }
        ));
        age_broker_record(&url, 91).await;
        assert_eq!(
            store.forget_outbox_broker().await.unwrap(),
            Forget::Forgotten("hub.".into())
        );
        assert_eq!(store.outbox_broker().await.unwrap(), None);
        drop(store.claim_outbox(10, None).await.unwrap());
        store.close().await;
    }
    if let Some((_, name)) = pg {
        common::drop_pg_database(&name).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A broker that declines what the test says: destinations whose queue is
/// full (negative confirms), messages it rejects, or everything while away.
#[derive(Default)]
struct Scripted {
    full: std::sync::Mutex<Vec<String>>,
    rejects: Vec<String>,
    away: std::sync::atomic::AtomicBool,
    published: std::sync::Mutex<Vec<String>>,
    /// Every publish asked for, in order, whatever came of it.
    sent: std::sync::Mutex<Vec<String>>,
}

impl Publish for Scripted {
    fn publish<'a>(&'a self, m: &'a PendingMessage) -> outbox::Sent<'a> {
        Box::pin(async move {
            self.sent.lock().unwrap().push(m.message.message_id.clone());
            if self.away.load(Ordering::SeqCst) {
                return Err(RelayError::Publish("connection refused".into()));
            }
            if self.full.lock().unwrap().contains(&m.message.routing_key) {
                return Err(RelayError::Refused("queue full".into()));
            }
            if self.rejects.contains(&m.message.message_id) {
                return Err(RelayError::Rejected("NOT_FOUND".into()));
            }
            self.published
                .lock()
                .unwrap()
                .push(m.message.message_id.clone());
            Ok(())
        })
    }
}

fn message(key: &str, id: &str) -> tradehub::store::OutboxMessage {
    tradehub::store::OutboxMessage {
        exchange: "tradehub.permits".into(),
        routing_key: key.into(),
        message_id: id.into(),
        content_type: "text/plain".into(),
        payload: id.as_bytes().to_vec(),
        correlation_id: None,
    }
}

/// Declined messages wait (and hold back later ones to their destination),
/// rejected ones are parked after `max_attempts`, a broker that is away
/// costs no message an attempt, the operator's retry publishes at once,
/// and published rows are purged; on both stores.
async fn declines_and_parking(store: &Store) {
    use tradehub::hub::outbox::RelaySettings;
    store
        .enqueue_outbox(
            &[
                message("permit.A", "a-1"),
                message("permit.B", "b-1"),
                message("permit.C", "c-bad"),
                message("permit.A", "a-2"),
                message("permit.C", "c-2"),
            ],
            Timestamp::now(),
        )
        .await
        .unwrap();
    let broker = Scripted {
        full: std::sync::Mutex::new(vec!["permit.A".into()]),
        rejects: vec!["c-bad".into()],
        ..Scripted::default()
    };
    let settings = RelaySettings {
        max_attempts: 1,
        ..RelaySettings::default()
    };
    // c-bad is parked at once (one attempt allowed), so c-2 goes; a-1
    // waits and a-2 behind it.
    assert_eq!(
        outbox::drain_with(store, &broker, &settings).await.unwrap(),
        2
    );
    assert_eq!(*broker.published.lock().unwrap(), ["b-1", "c-2"]);
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.backlog, counts.waiting, counts.parked), (2, 1, 1));
    let problems = store.outbox_problems(10).await.unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0].message_id, "a-1");
    assert_eq!(problems[0].last_error.as_deref(), Some("queue full"));
    assert!(problems[0].retry_at.is_some() && problems[0].parked_at.is_none());
    assert_eq!(problems[1].message_id, "c-bad");
    assert!(problems[1].parked_at.is_some() && problems[1].retry_at.is_none());

    // Away while a message waits for its next attempt (published one at a
    // time): it fails without an attempt counted.
    broker.away.store(true, Ordering::SeqCst);
    let a1 = problems[0].seq;
    store.make_due(a1).await.unwrap();
    assert!(outbox::drain_with(store, &broker, &settings).await.is_err());
    let problems = store.outbox_problems(10).await.unwrap();
    assert_eq!(problems[0].message_id, "a-1");
    assert_eq!(problems[0].attempts, 1, "no attempt counted while away");

    // Away: the retried messages fail without an attempt counted.
    broker.full.lock().unwrap().clear();
    assert_eq!(store.retry_outbox(None).await.unwrap(), 2);
    assert!(outbox::drain_with(store, &broker, &settings).await.is_err());
    let problems = store.outbox_problems(10).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(store.outbox_counts().await.unwrap().backlog, 3);

    // Back: everything goes, in order.
    broker.away.store(false, Ordering::SeqCst);
    let broker = Scripted {
        published: std::sync::Mutex::new(Vec::new()),
        ..Scripted::default()
    };
    assert_eq!(
        outbox::drain_with(store, &broker, &settings).await.unwrap(),
        3
    );
    assert_eq!(*broker.published.lock().unwrap(), ["a-1", "c-bad", "a-2"]);
    assert_eq!(store.outbox_counts().await.unwrap(), Default::default());

    // Published rows older than the cut are purged; newer ones stay.
    assert_eq!(store.count(Table::Outbox).await.unwrap(), 5);
    let earlier = Timestamp::now().plus_secs(-3600);
    assert_eq!(store.purge_published_outbox(earlier, 100).await.unwrap(), 0);
    let later = Timestamp::now().plus_secs(5);
    assert_eq!(store.purge_published_outbox(later, 3).await.unwrap(), 3);
    assert_eq!(store.purge_published_outbox(later, 3).await.unwrap(), 2);
    assert_eq!(store.count(Table::Outbox).await.unwrap(), 0);

    // Refusals are kept for their retention period (90 days by default),
    // the oldest deleted first; the relay's purge does both tables.
    let refused = |days_ago: i64, code: &str| tradehub::store::Refusal {
        partner_id: None,
        at: Timestamp::now().plus_secs(-days_ago * 24 * 3600),
        sha256: String::new(),
        size_bytes: 10,
        code: code.into(),
        detail: "cut off".into(),
    };
    for (days, code) in [(400, "OLD1"), (91, "OLD2"), (89, "NEW1"), (0, "NEW2")] {
        store.refuse(&refused(days, code)).await.unwrap();
    }
    assert_eq!(
        RelaySettings::default().refusal_retention,
        Some(std::time::Duration::from_secs(90 * 24 * 3600))
    );
    let keep = RelaySettings {
        refusal_retention: None,
        ..RelaySettings::default()
    };
    assert!(!outbox::purge(store, &keep).await);
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 4);
    assert!(!outbox::purge(store, &RelaySettings::default()).await);
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 2);
    let before = Timestamp::now().plus_secs(60);
    assert_eq!(store.purge_refusals(before, 1).await.unwrap(), 1);
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 1);
}

#[tokio::test]
async fn declined_messages_wait_or_park_embedded() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-outbox-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    declines_and_parking(&store).await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn declined_messages_wait_or_park_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    declines_and_parking(&store).await;
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// `tradehub outbox list` shows waiting and parked messages with their
/// errors; `tradehub outbox retry` puts them back.
#[tokio::test]
async fn the_operator_lists_and_retries_parked_messages() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-outbox-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    store
        .enqueue_outbox(
            &[message("permit.C", "c-bad"), message("permit.D", "d-1")],
            Timestamp::now(),
        )
        .await
        .unwrap();
    let broker = Scripted {
        rejects: vec!["c-bad".into()],
        ..Scripted::default()
    };
    let settings = tradehub::hub::outbox::RelaySettings {
        max_attempts: 1,
        ..Default::default()
    };
    outbox::drain_with(&store, &broker, &settings)
        .await
        .unwrap();
    store.close().await;

    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
            .env("TRADEHUB_OPERATOR", "ops-lim")
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&["outbox", "list"]);
    assert!(
        text.contains("0 to publish (0 of them waiting for another attempt), 1 parked"),
        "{text}"
    );
    assert!(
        text.contains("c-bad  tradehub.permits/permit.C  1 attempt(s), parked "),
        "{text}"
    );
    assert!(text.contains("NOT_FOUND"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&run(&["outbox", "list", "--format", "json"])).unwrap();
    assert_eq!(json["parked"], 1);
    let seq = json["messages"][0]["seq"].as_i64().unwrap();
    assert_eq!(json["messages"][0]["message_id"], "c-bad");
    assert_eq!(
        run(&["outbox", "retry", &seq.to_string()]).trim(),
        "1 message(s) will be published again"
    );
    let text = run(&["outbox", "list"]);
    assert!(
        text.contains("1 to publish (0 of them waiting for another attempt), 0 parked"),
        "{text}"
    );
    assert_eq!(
        run(&["outbox", "retry", "--all"]).trim(),
        "0 message(s) will be published again"
    );
    // The operator's retry is on the operator log, with the attempts and
    // the error it had (its count of attempts starts again).
    let log = run(&["operator-log", "--subject", &format!("outbox {seq}")]);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains(&format!(
            "  outbox_retried  outbox {seq} (by ops-lim): c-bad to tradehub.permits permit.C after 1 attempt(s), parked since 20"
        )),
        "{log}"
    );
    assert!(log.contains("NOT_FOUND"), "{log}");
    // A message named that is not waiting or parked (here: unknown, and
    // the one now due) is an error, not "0 will be published".
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["outbox", "retry", "999999", &seq.to_string(), "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("none of the 2 message(s) named"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A relay whose broker takes the connection and never answers (a
/// balancer in front of a dead node, a network black hole) claims
/// nothing: another instance's relay publishes every row meanwhile, and
/// the silent one gives up after its connect timeout as "broker away".
/// (It used to claim its batch first and then wait on the broker without
/// end, the rows held back, its transaction idle, until PostgreSQL ended
/// the session ten minutes later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_whose_broker_never_answers_claims_nothing() {
    use std::time::Duration;
    use tradehub::transport::amqp::{AmqpSettings, OutboxPublisher};
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let (intake, partner) = common::broker_intake(&store).await;
    intake
        .submit(&partner, fixture("ok/cusdec-d96b-unoc.edi"))
        .await
        .unwrap();
    let backlog = store.outbox_backlog().await.unwrap();
    assert!(backlog > 0);

    // Takes connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            open.push(connection);
        }
    });
    let mut settings = AmqpSettings::new(format!("amqp://guest:guest@{addr}/%2f"));
    settings.connect_timeout = Duration::from_secs(3);
    let stuck = {
        let store = store.clone();
        tokio::spawn(async move { outbox::drain(&store, &OutboxPublisher::new(settings)).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let published = outbox::drain(&store, &InProcess::new(16)).await.unwrap();
    assert_eq!(
        published as i64, backlog,
        "the other relay published every row"
    );
    match tokio::time::timeout(Duration::from_secs(10), stuck)
        .await
        .unwrap()
        .unwrap()
    {
        Err(RelayError::Publish(why)) => {
            assert!(why.contains("connecting the outbox relay"), "{why}")
        }
        other => panic!("not the broker away: {other:?}"),
    }
    held.abort();
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// A message the broker refuses within a batch (a negative confirm, the
/// broker's answer to that very message) has had its attempt: it is not
/// sent again at once, and the attempt is counted. (It was sent again one
/// at a time and counted once for the two sends, so a message refused
/// every time went out one more time than `--outbox-max-attempts`.)
#[tokio::test]
async fn a_message_refused_in_a_batch_counts_its_attempt() {
    let (dir, intake, _) = intake().await;
    let store = intake.store();
    store
        .enqueue_outbox(
            &[
                message("permit.A", "a-1"),
                message("permit.B", "b-1"),
                message("permit.A", "a-2"),
            ],
            Timestamp::now(),
        )
        .await
        .unwrap();
    let broker = Scripted {
        full: std::sync::Mutex::new(vec!["permit.A".into()]),
        ..Scripted::default()
    };
    assert_eq!(outbox::drain(store, &broker).await.unwrap(), 1);
    assert_eq!(*broker.published.lock().unwrap(), ["b-1"]);
    // The batch sent all three once; a-1's refusal held a-2 back.
    assert_eq!(*broker.sent.lock().unwrap(), ["a-1", "b-1", "a-2"]);
    let problems = store.outbox_problems(10).await.unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].message_id, "a-1");
    assert_eq!(problems[0].attempts, 1);
    assert!(problems[0].retry_at.is_some());
    std::fs::remove_dir_all(&dir).unwrap();
}
