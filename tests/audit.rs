//! The audit trail's hash chain: every committed event is sealed, the
//! chain verifies, and a change behind the append-only trigger's back (an
//! event changed, removed or added, a seal removed, the chain rewritten past
//! a noted anchor) is found and located, on SQLite and on PostgreSQL; on
//! PostgreSQL, events committed out of `seq` order are all sealed, none
//! twice.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use tradehub::store::{Anchor, AuditReport, Backend, Store};
use tradehub::timestamp::Timestamp;

/// Submits `n` interchanges (each writes events) and gives their ids.
async fn submit(store: &Store, from: usize, n: usize) -> Vec<String> {
    let (intake, partner) = if store.partner("KRBROKER01").await.unwrap().is_none() {
        common::broker_intake(store).await
    } else {
        let partner = store.partner("KRBROKER01").await.unwrap().unwrap();
        (
            tradehub::hub::Intake::new(store.clone(), tradehub::edifact::Limits::default()),
            partner,
        )
    };
    let mut ids = Vec::new();
    for i in from..from + n {
        let bytes = common::cusdec(
            "KRBROKER01",
            &format!("AUD{i:04}"),
            &format!("LRN-AUD-{i}"),
            "9",
            &["851712"],
        );
        match intake.submit(&partner, bytes).await.unwrap() {
            tradehub::hub::Submission::Stored(receipt) => ids.push(receipt.interchange.id),
            other => panic!("not stored: {other:?}"),
        }
    }
    ids
}

/// Seals until no event waits. On PostgreSQL, events wait while any older
/// transaction of the cluster runs (other tests' too), so a test waits for
/// them rather than expecting one run to seal everything.
async fn seal_caught_up(store: &Store, batch: i64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut total = 0;
    loop {
        total += store
            .seal_all_events(batch, Timestamp::now())
            .await
            .unwrap();
        if store.verify_audit_chain(&[]).await.unwrap().pending == 0 {
            return total;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events still unsealed after 30 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn codes(report: &AuditReport) -> Vec<(&str, Option<i64>, Option<i64>)> {
    report
        .findings
        .iter()
        .map(|f| (f.code, f.pos, f.seq))
        .collect()
}

/// Raw SQL on the store, as someone with the database's keys would run it.
struct Raw {
    backend: Backend,
    url: String,
}

impl Raw {
    /// A connection to the store, of either backend.
    async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::AnyPool::connect(&self.url).await.unwrap()
    }

    async fn run(&self, statements: &[&str]) {
        let pool = self.pool().await;
        for sql in statements {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    /// Runs `statements` with the append-only triggers of `events` and
    /// `event_seals` out of the way.
    async fn behind_the_triggers(&self, statements: &[&str]) {
        let mut all: Vec<String> = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                for t in [
                    "events_no_update",
                    "events_no_delete",
                    "event_seals_no_update",
                    "event_seals_no_delete",
                ] {
                    all.push(format!("DROP TRIGGER {t}"));
                }
                all.extend(statements.iter().map(|s| s.to_string()));
                all.push("CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END".into());
                all.push("CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'events are append-only'); END".into());
                all.push("CREATE TRIGGER event_seals_no_update BEFORE UPDATE ON event_seals BEGIN SELECT RAISE(ABORT, 'event seals are append-only'); END".into());
                all.push("CREATE TRIGGER event_seals_no_delete BEFORE DELETE ON event_seals BEGIN SELECT RAISE(ABORT, 'event seals are append-only'); END".into());
            }
            Backend::Postgres => {
                all.push("ALTER TABLE events DISABLE TRIGGER events_no_change".into());
                all.push("ALTER TABLE event_seals DISABLE TRIGGER event_seals_no_change".into());
                all.extend(statements.iter().map(|s| s.to_string()));
                all.push("ALTER TABLE events ENABLE TRIGGER events_no_change".into());
                all.push("ALTER TABLE event_seals ENABLE TRIGGER event_seals_no_change".into());
            }
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        self.run(&refs).await;
    }
}

/// The whole life of a chain on one backend.
async fn chain_life(store: &Store, raw: &Raw) {
    let ids = submit(store, 0, 3).await;
    let events = store.count(tradehub::store::Table::Events).await.unwrap();
    assert!(events >= 6, "{events}");

    // Nothing sealed yet: intact, everything pending.
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!((report.sealed, report.pending), (0, events));
    assert_eq!(report.head.pos, 0);

    // Sealing takes every committed event, in batches, once.
    let sealed = seal_caught_up(store, 4).await;
    assert_eq!(sealed, events as u64);
    assert_eq!(store.seal_all_events(4, Timestamp::now()).await.unwrap(), 0);
    let first_head = store.audit_head().await.unwrap();
    assert_eq!(first_head.pos, events);
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!((report.sealed, report.pending), (events, 0));
    assert_eq!(report.head, first_head);

    // More events: sealed after the others; the earlier head is on the
    // chain (an anchor).
    submit(store, 3, 2).await;
    let more = store.count(tradehub::store::Table::Events).await.unwrap() - events;
    assert_eq!(
        store.verify_audit_chain(&[]).await.unwrap().pending,
        more,
        "new events wait for the sealer"
    );
    seal_caught_up(store, 1000).await;
    let anchor = Anchor {
        pos: first_head.pos,
        hash: first_head.hash.clone(),
    };
    let report = store
        .verify_audit_chain(std::slice::from_ref(&anchor))
        .await
        .unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.sealed, events + more);
    assert_eq!(report.anchors, 1);

    // Events stay append-only.
    let changed = store.try_rewrite_events(false).await;
    assert!(changed.is_err(), "events stay append-only");

    // The raw bytes of every interchange match the SHA-256 its sealed
    // `received` event recorded; bytes changed afterwards do not.
    let report = store.verify_audit(&[], true).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.raw_checked, 5);
    let set_raw = match raw.backend {
        Backend::Sqlite => "X'554E4100'",
        Backend::Postgres => "decode('554e4100', 'hex')",
    };
    let first = &ids[1];
    raw.run(&[&format!(
        "UPDATE interchanges SET raw = {set_raw} WHERE id = '{first}'"
    )])
    .await;
    let report = store.verify_audit(&[], true).await.unwrap();
    let found = codes(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "AUD007");
    assert!(
        report.findings[0]
            .message
            .starts_with(&format!("interchange {first}: its raw bytes have SHA-256 ")),
        "{}",
        report.findings[0].message
    );
    assert!(
        store.verify_audit_chain(&[]).await.unwrap().intact(),
        "the chain itself is intact"
    );

    // An event changed behind the trigger's back: found at its seal.
    let (pos, seq) = seal_of_nth(raw, 2).await;
    raw.behind_the_triggers(&[&format!(
        "UPDATE events SET detail = detail || ' (edited)' WHERE seq = {seq}"
    )])
    .await;
    let report = store
        .verify_audit_chain(std::slice::from_ref(&anchor))
        .await
        .unwrap();
    assert_eq!(codes(&report), [("AUD001", Some(pos), Some(seq))]);
    assert!(!report.intact());
    assert!(report.findings[0].message.contains(&format!("event {seq}")));

    // An event removed: found at its seal.
    let (pos2, seq2) = seal_of_nth(raw, 5).await;
    raw.behind_the_triggers(&[&format!("DELETE FROM events WHERE seq = {seq2}")])
        .await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert_eq!(
        codes(&report),
        [
            ("AUD001", Some(pos), Some(seq)),
            ("AUD002", Some(pos2), Some(seq2))
        ]
    );

    // A seal removed: the gap is found.
    let (pos3, _) = seal_of_nth(raw, 7).await;
    raw.behind_the_triggers(&[&format!("DELETE FROM event_seals WHERE pos = {pos3}")])
        .await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    let found = codes(&report);
    assert!(found.contains(&("AUD003", Some(pos3), None)), "{found:?}");

    // The whole chain rewritten from the genesis to match (what someone
    // with the database's keys can do): only the anchor shows it.
    raw.behind_the_triggers(&["DELETE FROM event_seals"]).await;
    raw.run(&[
        "UPDATE audit_chain SET horizon = 0, until = NULL, cursor_xact = -1, cursor_seq = 0, pos = 0, \
         head = '0000000000000000000000000000000000000000000000000000000000000000'",
    ])
    .await;
    seal_caught_up(store, 1000).await;
    assert!(store.verify_audit_chain(&[]).await.unwrap().intact());
    let report = store
        .verify_audit_chain(std::slice::from_ref(&anchor))
        .await
        .unwrap();
    assert_eq!(
        codes(&report),
        [(
            "AUD005",
            Some(anchor.pos),
            Some(seq_at(raw, anchor.pos).await)
        )]
    );
    // An anchor past the end: the chain was cut back.
    let head = store.audit_head().await.unwrap();
    let past = Anchor {
        pos: head.pos + 10,
        hash: head.hash.clone(),
    };
    let report = store.verify_audit_chain(&[past]).await.unwrap();
    assert_eq!(codes(&report), [("AUD005", Some(head.pos + 10), None)]);
}

/// The position and event of the `n`-th seal (1-based).
async fn seal_of_nth(raw: &Raw, n: i64) -> (i64, i64) {
    let sql = format!("SELECT pos, event_seq FROM event_seals WHERE pos = {n}");
    let pool = raw.pool().await;
    let row: (i64, i64) = sqlx::query_as(&sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    row
}

async fn seq_at(raw: &Raw, pos: i64) -> i64 {
    seal_of_nth(raw, pos).await.1
}

#[tokio::test]
async fn the_audit_chain_finds_changes_on_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-audit-{}", uuid::Uuid::now_v7().simple()));
    let url = Store::embedded_url(&dir).unwrap();
    let store = Store::open(&url).await.unwrap();
    let raw = Raw {
        backend: Backend::Sqlite,
        url: url.clone(),
    };
    chain_life(&store, &raw).await;

    // The hub's sealer counts what it seals and shows the head's position.
    submit(&store, 10, 1).await;
    let pending = store.verify_audit_chain(&[]).await.unwrap().pending;
    assert!(pending >= 2, "{pending}");
    let metrics = std::sync::Arc::new(tradehub::hub::metrics::Metrics::default());
    let mut sealer = tradehub::hub::audit::Sealer::new(store.clone(), metrics.clone());
    assert_eq!(sealer.run(false).await, pending as u64);
    let head = store.audit_head().await.unwrap();
    let text = metrics.render();
    assert!(
        text.contains(&format!("\ntradehub_audit_sealed_total {pending}\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\ntradehub_audit_chain_position {}\n", head.pos)),
        "{text}"
    );
    assert!(
        text.contains("\ntradehub_audit_seal_failures_total 0\n"),
        "{text}"
    );
    store.close().await;
    // A store that fails is counted, not fatal.
    assert_eq!(sealer.run(true).await, 0);
    assert!(
        metrics
            .render()
            .contains("\ntradehub_audit_seal_failures_total 1\n")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_audit_chain_finds_changes_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let raw = Raw {
        backend: Backend::Postgres,
        url: url.clone(),
    };
    chain_life(&store, &raw).await;
    // An event added behind the hub's back where the chain has passed.
    raw.run(&[
        "INSERT INTO events (interchange_id, at, kind, detail, xact) \
         SELECT interchange_id, at, 'forged', 'added later', 0 FROM events LIMIT 1",
    ])
    .await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    let found = codes(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, "AUD004");
    assert!(report.findings[0].message.contains("forged"));
    // One given a transaction id the database has not issued yet, which
    // the sealer would take as pending until the ids reached it.
    let pending = report.pending;
    raw.run(&[
        "INSERT INTO events (interchange_id, at, kind, detail, xact) \
         SELECT interchange_id, at, 'forged-ahead', 'added later', 9000000000000 FROM events LIMIT 1",
    ])
    .await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    let found = codes(&report);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().all(|f| f.0 == "AUD004"), "{found:?}");
    assert!(report.findings[1].message.contains("forged-ahead"));
    assert_eq!(report.pending, pending);
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// Events written by concurrent transactions commit out of `seq` order;
/// the sealer seals none before its transaction has ended, and none twice.
#[tokio::test]
async fn events_committed_out_of_order_are_sealed_once_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let ids = submit(&store, 0, 1).await;
    seal_caught_up(&store, 1000).await;
    let before = store.audit_head().await.unwrap().pos;

    // A transaction writes an event and stays open; a later one commits.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut slow = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO events (interchange_id, at, kind, detail) VALUES ($1, 'now', 'slow', 'written first')")
        .bind(&ids[0])
        .execute(&mut *slow)
        .await
        .unwrap();
    store
        .append_event(&ids[0], Timestamp::now(), "fast", "committed first")
        .await
        .unwrap();
    // Neither is sealed while the slow transaction runs: sealing the fast
    // one now would let the slow one commit behind the chain.
    assert_eq!(
        store.seal_all_events(1000, Timestamp::now()).await.unwrap(),
        0
    );
    assert_eq!(store.verify_audit_chain(&[]).await.unwrap().pending, 1);
    slow.commit().await.unwrap();
    assert_eq!(seal_caught_up(&store, 1000).await, 2);
    let kinds: Vec<(i64, String)> = sqlx::query_as(
        "SELECT s.pos, e.kind FROM event_seals s JOIN events e ON e.seq = s.event_seq WHERE s.pos > $1 ORDER BY s.pos",
    )
    .bind(before)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        kinds,
        [
            (before + 1, "slow".to_owned()),
            (before + 2, "fast".to_owned())
        ],
        "sealed in the order of their transactions"
    );

    // Many writers and two sealers at once: every event sealed exactly once.
    let mut tasks = Vec::new();
    for w in 0..6 {
        let store = store.clone();
        let id = ids[0].clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                store
                    .append_event(
                        &id,
                        Timestamp::now(),
                        "load",
                        &format!("writer {w} event {i}"),
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for _ in 0..2 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..30 {
                store.seal_all_events(7, Timestamp::now()).await.unwrap();
                tokio::task::yield_now().await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    seal_caught_up(&store, 1000).await;
    let (events, seals, distinct): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM event_seals), \
         (SELECT COUNT(DISTINCT event_seq) FROM event_seals)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((seals, distinct), (events, events));
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.pending, 0);
    pool.close().await;
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// `tradehub audit`: seal, head and verify as an operator runs them; verify
/// exits 1 and names the event when the trail was changed.
#[tokio::test]
async fn the_audit_commands_seal_print_and_verify() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-audit-cli-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let url = Store::embedded_url(&dir).unwrap();
    let store = Store::open(&url).await.unwrap();
    submit(&store, 0, 2).await;
    let events = store.count(tradehub::store::Table::Events).await.unwrap();
    store.close().await;
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env("TRADEHUB_OPERATOR", "auditor")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, out) = run(&["audit", "seal"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with(&format!("sealed {events} event(s)\n{events}:")),
        "{out}"
    );
    let (code, head) = run(&["audit", "head"]);
    assert_eq!(code, Some(0));
    let head = head.trim().to_owned();
    assert_eq!(head.len(), format!("{events}:").len() + 64, "{head}");
    assert!(out.ends_with(&format!("{head}\n")));
    let (code, out) = run(&["audit", "verify", "--anchor", &head]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("audit chain intact: {events} seals checked, head {head}, 1 anchor(s) checked, 0 event(s) not sealed yet, 0 finding(s)")),
        "{out}"
    );
    let (code, out) = run(&["audit", "verify", "--raw"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(
            "0 anchor(s) checked, 2 interchange(s)' raw bytes checked, 0 event(s) not sealed yet, 0 finding(s)"
        ),
        "{out}"
    );
    let (code, out) = run(&["audit", "verify", "--anchor", "1:xyz"]);
    assert_eq!(code, Some(2), "{out}");

    let raw = Raw {
        backend: Backend::Sqlite,
        url,
    };
    let (_, seq) = seal_of_nth(&raw, 1).await;
    raw.behind_the_triggers(&[&format!(
        "UPDATE events SET kind = 'validated' WHERE seq = {seq}"
    )])
    .await;
    let (code, out) = run(&["audit", "verify", "--format", "json"]);
    assert_eq!(code, Some(1), "{out}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["intact"], false);
    assert_eq!(json["report"]["findings"][0]["code"], "AUD001");
    assert_eq!(json["report"]["findings"][0]["seq"], seq);
    assert_eq!(json["report"]["findings"][0]["pos"], 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store upgraded to the chain (migration 0021) seals the events it
/// already held first, in `seq` order, then those written after.
async fn upgrade_seals_earlier_events_first(url: &str, postgres: bool) {
    sqlx::any::install_default_drivers();
    let mut before = if postgres {
        sqlx::migrate!("migrations/postgres")
    } else {
        sqlx::migrate!("migrations/sqlite")
    };
    let earlier: Vec<_> = before
        .migrations
        .iter()
        .filter(|m| m.version < 21)
        .cloned()
        .collect();
    assert_eq!(earlier.len(), 20);
    before.migrations = std::borrow::Cow::Owned(earlier);
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    before.run(&pool).await.unwrap();
    let raw = if postgres {
        "'\\x554e41'::bytea"
    } else {
        "X'554E41'"
    };
    for sql in [
        "INSERT INTO partners (id, name, token_hash, created_at) VALUES ('OLD', 'Old', 'h', '2026-01-01T00:00:00Z')".to_owned(),
        format!(
            "INSERT INTO interchanges (id, partner_id, sender, control_reference, sha256, format, status, received_at, \
             size_bytes, message_count, error_count, issues_json, acknowledgement, raw) VALUES \
             ('old-1', 'OLD', 'OLD', 'R1', 'x', 'edifact', 'validated', '2026-01-01T00:00:00Z', 3, 0, 0, '[]', '', {raw})"
        ),
        "INSERT INTO events (interchange_id, at, kind, detail) VALUES ('old-1', '2026-01-01T00:00:00Z', 'received', 'kept from before')".to_owned(),
        "INSERT INTO events (interchange_id, at, kind, detail) VALUES ('old-1', '2026-01-01T00:00:01Z', 'validated', 'also kept')".to_owned(),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::open(url).await.unwrap();
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!((report.sealed, report.pending), (0, 2));
    submit(&store, 0, 1).await;
    seal_caught_up(&store, 1000).await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.pending, 0);
    assert!(report.sealed >= 4, "{}", report.sealed);
    let pool = sqlx::any::AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "SELECT s.pos, e.detail FROM event_seals s JOIN events e ON e.seq = s.event_seq ORDER BY s.pos LIMIT 2",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            (1, "kept from before".to_owned()),
            (2, "also kept".to_owned())
        ]
    );
    pool.close().await;
    store.close().await;
}

#[tokio::test]
async fn an_upgraded_store_seals_its_earlier_events_first_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-audit-upgrade-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let url = Store::embedded_url(&dir).unwrap();
    // The file must exist before a plain connection opens it.
    let options: sqlx::sqlite::SqliteConnectOptions = url.parse().unwrap();
    sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .unwrap()
        .close()
        .await;
    upgrade_seals_earlier_events_first(&url, false).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_upgraded_store_seals_its_earlier_events_first_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    upgrade_seals_earlier_events_first(&url, true).await;
    common::drop_pg_database(&name).await;
}

/// A store restored into another PostgreSQL cluster keeps the old
/// cluster's transaction ids in its events and in the sealer's horizon; the
/// new cluster's ids are lower. The sealer notices, seals the events the
/// dump held unsealed, and goes on from the new cluster's ids: nothing is
/// left unsealed, nothing is reported as added behind the hub's back.
#[tokio::test]
async fn a_store_restored_into_another_cluster_goes_on_sealing_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let ids = submit(&store, 0, 1).await;
    seal_caught_up(&store, 1000).await;
    // As restored from a cluster far ahead: the horizon, and an event the
    // dump caught before it was sealed, carry that cluster's ids.
    let raw = Raw {
        backend: Backend::Postgres,
        url: url.clone(),
    };
    raw.run(&[
        "UPDATE audit_chain SET horizon = 9000000000000, until = NULL",
        &format!(
            "INSERT INTO events (interchange_id, at, kind, detail, xact) VALUES \
             ('{}', '2026-11-30T00:00:00Z', 'validated', 'unsealed at the dump', 9000000000010)",
            ids[0]
        ),
    ])
    .await;
    // Until the sealer has gone on from this cluster's ids, the event the
    // dump caught is pending, not a finding.
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert!(report.pending >= 1, "{}", report.pending);
    submit(&store, 1, 1).await;
    seal_caught_up(&store, 3).await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.pending, 0);
    let events = store.count(tradehub::store::Table::Events).await.unwrap();
    assert_eq!(report.sealed, events);
    // And it keeps going from here.
    submit(&store, 2, 1).await;
    seal_caught_up(&store, 1000).await;
    let report = store.verify_audit_chain(&[]).await.unwrap();
    assert!(report.intact(), "{:?}", report.findings);
    assert_eq!(report.pending, 0);
    assert_eq!(
        report.sealed,
        store.count(tradehub::store::Table::Events).await.unwrap()
    );
    store.close().await;
    common::drop_pg_database(&name).await;
}
