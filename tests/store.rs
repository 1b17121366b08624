//! The store's PostgreSQL sessions: statements and idle transactions are
//! bounded (a runaway query or an abandoned transaction ends with an error
//! instead of holding a connection and its locks for good), unless the
//! store URL sets its own limits; a database refusing connections is a
//! failure that may pass.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tradehub::store::Store;

/// A database that cannot be reached is named (host, port, database; no
/// password) with the cause, not only "pool timed out".
#[tokio::test]
async fn an_unreachable_database_is_named_with_the_cause() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let url = format!("postgres://postgres:secret@127.0.0.1:{port}/hub");
    let error = Store::open(&url).await.err().unwrap().to_string();
    assert!(
        error.starts_with(&format!(
            "cannot connect to the store at postgres://127.0.0.1:{port}/hub: "
        )),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(!error.contains("secret"), "{error}");
    // A URL that does not parse (a password with an unescaped `/`) is named
    // without its password either.
    for url in [
        "postgres://app:se/cret@127.0.0.1/hub",
        "mysql://app:secret@127.0.0.1/hub",
    ] {
        let error = Store::open(url).await.err().unwrap().to_string();
        assert!(error.starts_with("store URL "), "{error}");
        assert!(
            !error.contains("secret") && !error.contains("cret"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn postgres_sessions_are_bounded() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    // (statement_timeout, idle_in_transaction_session_timeout) of a
    // session of the store's pool.
    async fn limits(store: &Store) -> (String, String) {
        let get = |name: &'static str| async move {
            store.pg_setting(name).await.unwrap().unwrap_or_default()
        };
        (
            get("statement_timeout").await,
            get("idle_in_transaction_session_timeout").await,
        )
    }
    let store = Store::open(&url).await.unwrap();
    for _ in 0..3 {
        assert_eq!(limits(&store).await, ("1min".into(), "10min".into()));
    }
    store.close().await;

    // The URL's own limit wins; the other one is still set.
    let own = format!("{url}?options=-c%20statement_timeout%3D5s");
    let store = Store::open(&own).await.unwrap();
    assert_eq!(limits(&store).await, ("5s".into(), "10min".into()));
    store.close().await;
    common::drop_pg_database(&name).await;
}

#[tokio::test]
async fn sqlite_has_no_session_settings() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-store-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    assert_eq!(store.pg_setting("statement_timeout").await.unwrap(), None);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A database that stops accepting connections (an operator's `ALTER
/// DATABASE … ALLOW_CONNECTIONS false`, SQLSTATE 55000 at severity FATAL)
/// fails the store in a way that may pass: the AMQP intake waits for it
/// instead of dead-lettering the message it was storing as refused
/// (HUB501), as it did when only the SQLSTATE was read.
#[tokio::test]
async fn a_database_refusing_connections_is_a_failure_that_may_pass() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store.ping().await.unwrap();
    store.close().await;
    common::pg_admin(&[&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")]).await;
    let error = match Store::open(&url).await {
        Ok(store) => store.ping().await.unwrap_err(),
        Err(e) => e,
    };
    assert!(
        error
            .to_string()
            .contains("not currently accepting connections"),
        "{error}"
    );
    assert!(error.is_retryable(), "{error:?}");
    common::pg_admin(&[&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")]).await;
    common::drop_pg_database(&name).await;
}

/// A read-only database (a standby after a failover) answers queries but
/// refuses writes: the write probe, which the AMQP intake waits on before
/// consuming again, sees it where a ping does not, as a failure that may
/// pass; and it succeeds again once the database takes writes.
#[tokio::test]
async fn the_write_probe_sees_a_database_that_refuses_writes() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store.probe_write().await.unwrap();
    common::pg_read_only(&name, true).await;
    // The first statement may meet the ended session; the next is on a
    // new, read-only one.
    let _ = store.ping().await;
    store.ping().await.unwrap();
    let error = store.probe_write().await.unwrap_err();
    assert!(error.to_string().contains("read-only"), "{error}");
    assert!(error.is_retryable(), "{error:?}");
    common::pg_read_only(&name, false).await;
    let _ = store.ping().await;
    store.probe_write().await.unwrap();
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// The write probe rewrites its one row: probing again and again leaves
/// one row.
#[tokio::test]
async fn the_write_probe_keeps_one_row() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-probe-{}", uuid::Uuid::now_v7().simple()));
    let url = Store::embedded_url(&dir).unwrap();
    let store = Store::open(&url).await.unwrap();
    for _ in 0..3 {
        store.probe_write().await.unwrap();
    }
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM write_probe")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    pool.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// On SQLite, which has no session settings, the operator's name reaches
/// the log's triggers through a row that lives only inside the change's
/// transaction: the changes of a handle with a name carry it, those made
/// otherwise carry none, and no name is left behind.
#[tokio::test]
async fn operator_names_are_logged_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-operator-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let url = Store::embedded_url(&dir).unwrap();
    let named = Store::open(&url).await.unwrap().with_operator("ops-kim");
    let now = tradehub::timestamp::Timestamp::now();
    named
        .add_partner("KRBROKER01", "Hanbit", "hash-1", now)
        .await
        .unwrap();
    named
        .set_partner_suspension("KRBROKER01", Some("audit"), now)
        .await
        .unwrap();
    let nameless = Store::open(&url).await.unwrap();
    nameless.add_trader_id("KRBROKER01", "KR1").await.unwrap();
    nameless.close().await;
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE partners SET agency = 'MFDS' WHERE id = 'KRBROKER01'")
        .execute(&pool)
        .await
        .unwrap();
    named.add_trader_id("KRBROKER01", "KR2").await.unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM operator_actor")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
    let log = named.operator_log(None, 10).await.unwrap();
    let who: Vec<(&str, Option<&str>)> = log
        .iter()
        .rev()
        .map(|a| (a.action.as_str(), a.operator.as_deref()))
        .collect();
    assert_eq!(
        who,
        [
            ("partner_added", Some("ops-kim")),
            ("partner_suspended", Some("ops-kim")),
            ("trader_added", None),
            ("role_changed", None),
            ("trader_added", Some("ops-kim")),
        ],
        "{log:#?}"
    );
    pool.close().await;
    named.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// What operators change is logged by the store itself, in the change's
/// transaction, on PostgreSQL with the database role that made it: a
/// partner added, its token issued again, its role, its suspension and
/// reinstatement, a trader identifier, an outbox message retried (with
/// the attempts and error it had), the broker record forgotten. A change
/// that changes nothing is not logged, and the log cannot be rewritten.
#[tokio::test]
async fn operator_changes_are_logged_on_postgres() {
    use sqlx::Connection;
    use tradehub::store::OutboxMessage;
    use tradehub::timestamp::Timestamp;
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap().with_operator("ops-kim");
    let now = Timestamp::now();
    store
        .add_partner("KRBROKER01", "Hanbit", "hash-1", now)
        .await
        .unwrap();
    assert!(
        store
            .set_partner_token("KRBROKER01", "hash-2")
            .await
            .unwrap()
    );
    // The same hash again: no change, nothing logged.
    assert!(
        store
            .set_partner_token("KRBROKER01", "hash-2")
            .await
            .unwrap()
    );
    assert!(
        store
            .set_partner_agency("KRBROKER01", Some("KMDIA"))
            .await
            .unwrap()
    );
    store
        .set_partner_suspension("KRBROKER01", Some("licence withdrawn"), now)
        .await
        .unwrap();
    store
        .set_partner_suspension("KRBROKER01", None, now)
        .await
        .unwrap();
    store
        .add_trader_id("KRBROKER01", "KR1234567")
        .await
        .unwrap();
    let message = OutboxMessage {
        exchange: "tradehub.permits".into(),
        routing_key: "permit.KMDIA".into(),
        message_id: "m-1".into(),
        content_type: "application/json".into(),
        payload: b"{}".to_vec(),
        correlation_id: None,
    };
    store.enqueue_outbox(&[message], now).await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE outbox SET attempts = 5, last_error = 'NOT_FOUND - no exchange', \
         parked_at = '2026-11-29T10:00:00Z' WHERE message_id = 'm-1'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert_eq!(store.retry_outbox(None).await.unwrap(), 1);
    store.record_outbox_broker("th", now).await.unwrap();
    store.forget_outbox_broker().await.unwrap();

    let log = store.operator_log(None, 100).await.unwrap();
    let actions: Vec<(&str, &str)> = log
        .iter()
        .map(|a| (a.action.as_str(), a.subject.as_str()))
        .rev()
        .collect();
    let (seq,): (i64,) = sqlx::query_as("SELECT seq FROM outbox WHERE message_id = 'm-1'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let outbox = format!("outbox {seq}");
    assert_eq!(
        actions,
        [
            ("partner_added", "KRBROKER01"),
            ("token_issued", "KRBROKER01"),
            ("role_changed", "KRBROKER01"),
            ("partner_suspended", "KRBROKER01"),
            ("partner_reinstated", "KRBROKER01"),
            ("trader_added", "KRBROKER01"),
            ("outbox_retried", outbox.as_str()),
            ("broker_forgotten", "outbox"),
        ],
        "{log:#?}"
    );
    let detail = |action: &str| {
        log.iter()
            .find(|a| a.action == action)
            .map(|a| a.detail.clone())
            .unwrap()
    };
    assert_eq!(
        detail("outbox_retried"),
        "m-1 to tradehub.permits permit.KMDIA after 5 attempt(s), parked since \
         2026-11-29T10:00:00Z: NOT_FOUND - no exchange"
    );
    assert_eq!(detail("partner_suspended"), "licence withdrawn");
    assert_eq!(detail("role_changed"), "acts for KMDIA (before: no agency)");
    assert!(
        detail("broker_forgotten").starts_with("no longer published to the broker of prefix th"),
        "{log:#?}"
    );
    assert!(log.iter().all(|a| a.by_role.is_some()), "{log:#?}");
    assert!(
        log.iter().all(|a| a.operator.as_deref() == Some("ops-kim")),
        "{log:#?}"
    );
    assert!(
        log.iter().all(|a| Timestamp::parse(&a.at).is_some()),
        "{log:#?}"
    );
    // One partner's changes only.
    assert_eq!(
        store
            .operator_log(Some("KRBROKER01"), 100)
            .await
            .unwrap()
            .len(),
        6
    );
    // Append-only.
    for sql in [
        "UPDATE operator_log SET detail = 'nothing happened'",
        "DELETE FROM operator_log",
    ] {
        let refused = sqlx::query(sql).execute(&mut conn).await.unwrap_err();
        assert!(refused.to_string().contains("append-only"), "{refused}");
    }
    // A change made otherwise (by hand, or by a handle that names no one)
    // is logged without a name.
    sqlx::query("UPDATE partners SET agency = 'MFDS' WHERE id = 'KRBROKER01'")
        .execute(&mut conn)
        .await
        .unwrap();
    let nameless = Store::open(&url).await.unwrap();
    nameless
        .add_trader_id("KRBROKER01", "KR7654321")
        .await
        .unwrap();
    nameless.close().await;
    sqlx::query("UPDATE partners SET agency = NULL WHERE id = 'KRBROKER01'")
        .execute(&mut conn)
        .await
        .unwrap();
    let newest = store.operator_log(None, 3).await.unwrap();
    let who: Vec<(&str, Option<&str>)> = newest
        .iter()
        .map(|a| (a.action.as_str(), a.operator.as_deref()))
        .collect();
    assert_eq!(
        who,
        [
            ("role_changed", None),
            ("trader_added", None),
            ("role_changed", None),
        ],
        "{newest:#?}"
    );
    conn.close().await.unwrap();
    store.close().await;
    common::drop_pg_database(&name).await;
}
