//! Group commit: interchanges submitted at the same time are written in
//! shared transactions, each in its own savepoint. A duplicate arriving
//! together with its original must still get the original's answer, and
//! nothing else in its group may be lost or written twice — on the
//! embedded SQLite store and on PostgreSQL.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use tradehub::hub::Submission;
use tradehub::store::{Store, Table};

/// Distinct interchanges submitted at once.
const DISTINCT: usize = 40;

/// The fixture (two declarations) with its own control reference and
/// LRNs.
fn variant(base: &str, i: usize) -> Vec<u8> {
    base.replace("20261124001", &format!("2026112{i:04}"))
        .replace("LRN2026001", &format!("LRN{i:05}01"))
        .replace("LRN2026002", &format!("LRN{i:05}02"))
        .into_bytes()
}

/// `one_committer`: SQLite's single committer, where no group can fail as
/// a whole (PostgreSQL's four may deadlock on each other's keys, and then
/// commit one by one).
async fn submit_all_at_once(store: Store, one_committer: bool) {
    let (intake, partner) = common::broker_intake(&store).await;
    let base = String::from_utf8(common::fixture("ok/cusdec-d96b-unoc.edi")).unwrap();
    // Every interchange twice, the copies side by side in the queue.
    let mut tasks = Vec::new();
    for i in 0..DISTINCT {
        for _copy in 0..2 {
            let (intake, partner, bytes) = (intake.clone(), partner.clone(), variant(&base, i));
            tasks.push(tokio::spawn(async move {
                (i, intake.submit(&partner, bytes).await.unwrap())
            }));
        }
    }
    let mut stored: HashMap<usize, String> = HashMap::new();
    let mut duplicates: Vec<(usize, String)> = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (i, Submission::Stored(receipt)) => {
                assert_eq!(
                    receipt.interchange.status, "validated",
                    "{:?}",
                    receipt.issues
                );
                let before = stored.insert(i, receipt.interchange.id);
                assert!(before.is_none(), "interchange {i} stored twice");
            }
            (i, Submission::Duplicate(receipt)) => duplicates.push((i, receipt.interchange.id)),
            (i, Submission::Refused(refused)) => panic!("interchange {i} refused: {refused:?}"),
        }
    }
    assert_eq!(stored.len(), DISTINCT, "every interchange stored once");
    assert_eq!(
        duplicates.len(),
        DISTINCT,
        "every copy answered as a duplicate"
    );
    for (i, id) in duplicates {
        assert_eq!(
            stored.get(&i),
            Some(&id),
            "the copy of {i} gets the original"
        );
    }
    assert_eq!(
        store.count(Table::Interchanges).await.unwrap(),
        DISTINCT as i64
    );
    assert_eq!(
        store.count(Table::Declarations).await.unwrap(),
        2 * DISTINCT as i64
    );
    for id in stored.values() {
        let kinds: Vec<String> = store
            .events(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds[..2], ["received", "validated"], "{id}: {kinds:?}");
    }
    // They were written in shared transactions, and a copy in the same
    // group as its original was rolled back to its savepoint, not the
    // whole group.
    let groups = store.group_commits();
    assert!(groups.groups >= 1 && groups.grouped >= 2, "{groups:?}");
    if one_committer {
        assert_eq!(groups.fallbacks, 0, "{groups:?}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_submissions_and_their_copies_on_sqlite() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-group-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    submit_all_at_once(store, true).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_submissions_and_their_copies_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    submit_all_at_once(Store::open(&url).await.unwrap(), false).await;
    common::drop_pg_database(&name).await;
}

/// Which PostgreSQL errors the store calls retryable, on the real server:
/// a statement cancelled by its timeout (as under a failover or a locked
/// table) may succeed again; a statement that is wrong in itself may not,
/// and a unique violation is a conflict.
#[tokio::test]
async fn postgres_errors_are_classified_by_their_sqlstate() {
    use sqlx::Connection;
    use tradehub::store::StoreError;
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let fail =
        |r: Result<sqlx::postgres::PgQueryResult, sqlx::Error>| StoreError::from(r.unwrap_err());

    sqlx::query("SET statement_timeout = 1")
        .execute(&mut conn)
        .await
        .unwrap();
    let timeout = fail(sqlx::query("SELECT pg_sleep(1)").execute(&mut conn).await);
    assert!(timeout.is_retryable(), "{timeout}");
    sqlx::query("SET statement_timeout = 0")
        .execute(&mut conn)
        .await
        .unwrap();

    let wrong = fail(sqlx::query("SELECT 1 / 0").execute(&mut conn).await);
    assert!(!wrong.is_retryable(), "{wrong}");

    sqlx::query("CREATE TABLE once (id INT PRIMARY KEY)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO once VALUES (1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let twice = fail(
        sqlx::query("INSERT INTO once VALUES (1)")
            .execute(&mut conn)
            .await,
    );
    assert!(
        matches!(twice, StoreError::Conflict { .. }) && !twice.is_retryable(),
        "{twice}"
    );

    // Another session ends this one, as an administrator or a restart
    // does (57P01): retryable.
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .execute(&mut admin)
        .await
        .unwrap();
    let ended = StoreError::from(
        sqlx::query("SELECT 1")
            .execute(&mut conn)
            .await
            .unwrap_err(),
    );
    assert!(ended.is_retryable(), "{ended}");
    drop(conn);
    admin.close().await.unwrap();
    common::drop_pg_database(&name).await;
}
