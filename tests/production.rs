//! The production shape, as an operator runs it: `tradehub serve` as a
//! process on the machine's PostgreSQL (TRADEHUB_TEST_PG_URL) and RabbitMQ
//! (TRADEHUB_TEST_AMQP_URL), under an exchange and queue prefix of its own.
//! A broker submits over HTTP; the agency works only over AMQP: it takes
//! permit requests from its `agency.<CODE>` queue (declared at start-up for
//! every agency of the catalogue) and answers on `hub.permit-replies`; the
//! broker hears CUSRES on `ack.<partner>`. Then the crash test of issue 7 on
//! this shape: the hub is killed with SIGKILL under load and restarted;
//! every acknowledged interchange exists exactly once, every permit request
//! reached the agency's queue at least once and was decided exactly once.
//! Under CI=true a missing PostgreSQL or RabbitMQ fails these tests.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, request_blocking, token_of};
use futures_lite::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use tradehub::store::{Store, Table};
use tradehub::transport::amqp::{self, AmqpSettings};

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
}

/// A hub deployment of one test: its database, its AMQP names, the
/// broker's and the agency's accounts.
struct Deployment {
    db_name: String,
    store_url: String,
    settings: AmqpSettings,
    dir: PathBuf,
    risk: PathBuf,
    broker_token: String,
    agencies: Vec<String>,
}

impl Deployment {
    /// A fresh database with KRBROKER01 (HTTP) and `guest`, the broker user
    /// of the test RabbitMQ, acting for KMDIA; `None` outside CI when a
    /// service is missing.
    async fn new() -> Option<Deployment> {
        // The broker first: a database made before a missing broker is
        // found would be left behind.
        let conn = common::broker().await?;
        let _ = conn.close(200, "checked".into()).await;
        let (store_url, db_name) = common::pg_database().await?;
        let dir = std::env::temp_dir().join(format!(
            "tradehub-production-{}",
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        // Only the deterministic lanes: the example profile's random
        // sample would hold a declaration now and then.
        let risk = dir.join("risk.toml");
        std::fs::write(
            &risk,
            "[[rule]]\nid = \"arms\"\nlane = \"red\"\nreason = \"arms are examined\"\nhs = [\"93\"]\n",
        )
        .unwrap();
        let add = |args: &[&str]| {
            bin()
                .args(["partner", "add"])
                .args(args)
                .args(["--store-url", &store_url])
                .output()
                .unwrap()
        };
        let broker_token = token_of(add(&["KRBROKER01", "--name", "Hanbit Customs Brokers"]));
        token_of(add(&["guest", "--name", "KMDIA desk", "--agency", "KMDIA"]));
        // The catalogue and routing of config/, cut to two agencies: the
        // hub declares a quorum queue per agency at start-up, and 169 of
        // them per test run is heavy work for a broker the whole suite
        // shares.
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let agencies: Vec<String> = vec!["KMDIA".into(), "MFDS".into()];
        for (file, table, key) in [
            ("agencies.toml", "[[agency]]", "code"),
            ("routing.toml", "[[rule]]", "agency"),
        ] {
            let text = std::fs::read_to_string(root.join("config").join(file)).unwrap();
            let kept: Vec<String> = text
                .split(&format!("\n{table}\n"))
                .skip(1)
                .filter(|block| {
                    agencies.iter().any(|code| {
                        format!("\n{block}").contains(&format!("\n{key} = \"{code}\"\n"))
                    })
                })
                .map(|block| format!("{table}\n{block}\n"))
                .collect();
            assert!(kept.len() >= 2, "{file}");
            std::fs::write(dir.join(file), kept.concat()).unwrap();
        }
        let mut settings = AmqpSettings::new(common::amqp_url());
        settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
        settings.agencies = agencies.clone();
        Some(Deployment {
            db_name,
            store_url,
            settings,
            dir,
            risk,
            broker_token,
            agencies,
        })
    }

    /// `tradehub serve` on PostgreSQL and RabbitMQ; returns it and its
    /// address once it listens.
    fn serve(&self) -> (Server, String) {
        let args: Vec<OsString> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--data-dir".into(),
            self.dir.join("data").into(),
            "--store-url".into(),
            self.store_url.clone().into(),
            "--amqp-url".into(),
            self.settings.url.clone().into(),
            "--amqp-prefix".into(),
            self.settings.prefix.clone().into(),
            "--risk".into(),
            self.risk.clone().into(),
            "--agencies".into(),
            self.dir.join("agencies.toml").into(),
            "--routing".into(),
            self.dir.join("routing.toml").into(),
        ];
        let (child, addr, _log) = common::spawn_serve_with(&args);
        (Server(child), addr)
    }

    /// Removes every queue and exchange of the prefix, the database and
    /// the directory.
    async fn remove(self, conn: &Connection) {
        let ch = conn.create_channel().await.unwrap();
        let s = &self.settings;
        let queues = [
            s.inbound_queue(),
            s.dead_inbound_queue(),
            s.replies_queue(),
            s.dead_replies_queue(),
            // The hub declares an answer queue for every registered
            // partner at start, the agency's account `guest` too.
            s.ack_queue("KRBROKER01"),
            s.ack_queue("guest"),
        ]
        .into_iter()
        .chain(self.agencies.iter().map(|a| s.agency_queue(a)));
        for q in queues {
            let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
        }
        for x in [
            s.inbound_exchange(),
            s.dead_letter_exchange(),
            s.acks_exchange(),
            s.events_exchange(),
            s.permits_exchange(),
            s.replies_exchange(),
        ] {
            let _ = ch
                .exchange_delete(x, ExchangeDeleteOptions::default())
                .await;
        }
        common::drop_pg_database(&self.db_name).await;
        std::fs::remove_dir_all(&self.dir).unwrap();
    }
}

/// Waits until the hub has declared its topology: every agency's queue
/// exists (a passive declare of a missing queue closes the channel, so
/// each try gets a channel of its own).
async fn wait_for_topology(conn: &Connection, d: &Deployment) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ch = conn.create_channel().await.unwrap();
    for code in &d.agencies {
        loop {
            let passive = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let found = ch
                .queue_declare(
                    d.settings.agency_queue(code),
                    passive,
                    FieldTable::default(),
                )
                .await;
            if found.is_ok() {
                break;
            }
            ch = conn.create_channel().await.unwrap();
            assert!(
                Instant::now() < deadline,
                "queue {} was not declared",
                d.settings.agency_queue(code)
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let _ = ch.close(200, "checked".into()).await;
}

/// The agency's answer to a permit request, published as the broker user
/// `guest` (the account acting for KMDIA) with the broker's confirm.
async fn answer(ch: &Channel, s: &AmqpSettings, permit: &str, outcome: &str) {
    let body = serde_json::json!({
        "permit_id": permit,
        "outcome": outcome,
        "reasons": [format!("{outcome} by the test agency")],
    });
    ch.basic_publish(
        s.replies_exchange(),
        amqp::REPLIES_KEY.into(),
        BasicPublishOptions::default(),
        &serde_json::to_vec(&body).unwrap(),
        BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// The next CUSRES on `queue` (a CONTRL is not sent there for HTTP
/// submissions, which get it in the response).
async fn next_cusres(ch: &Channel, queue: &str) -> String {
    let m = common::next_message(ch, queue).await;
    let text = String::from_utf8(m.delivery.data.clone()).unwrap();
    assert!(text.contains("CUSRES:D:96B:UN"), "{text}");
    text
}

fn submit(addr: &str, token: &str, reference: &str) -> Option<common::Response> {
    // A medical device (HS 9018.90): KMDIA must confirm it.
    let body = common::cusdec("KRBROKER01", reference, reference, "9", &["901890"]);
    request_blocking(addr, "POST", "/v1/interchanges", Some(token), &body)
}

fn declaration_of(addr: &str, token: &str, id: &str) -> serde_json::Value {
    let r = request_blocking(
        addr,
        "GET",
        &format!("/v1/interchanges/{id}"),
        Some(token),
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 200, "{id}");
    r.json()["declarations"][0].clone()
}

/// One deployment for both parts (the hub declares a quorum queue for
/// each of the catalogue's agencies at start-up, which is heavy work for a
/// broker shared by the whole test suite).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serve_on_postgres_and_rabbitmq() {
    let Some(d) = Deployment::new().await else {
        return;
    };
    let conn = common::broker().await.unwrap();
    // The shared broker and database keep nothing of the test, failed or
    // not: a failed assertion is caught, the deployment removed, and the
    // failure raised again.
    let outcome = futures_lite::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(async {
        let (server, addr) = d.serve();
        wait_for_topology(&conn, &d).await;
        clears_and_holds(&d, &conn, &addr).await;
        kill_9_loses_nothing(&d, &conn, server, addr).await;
    }))
    .await;
    d.remove(&conn).await;
    let _ = conn.close(200, "done".into()).await;
    if let Err(failure) = outcome {
        std::panic::resume_unwind(failure);
    }
}

/// A granted permit clears its declaration, a refused one holds it; the
/// broker hears both on `ack.KRBROKER01`.
async fn clears_and_holds(d: &Deployment, conn: &Connection, addr: &str) {
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    amqp::declare_ack_queue(&ch, &d.settings, "KRBROKER01")
        .await
        .unwrap();
    let ack_queue = d.settings.ack_queue("KRBROKER01");
    let kmdia = d.settings.agency_queue("KMDIA");

    let (a, token) = (addr.to_owned(), d.broker_token.clone());
    let ids = tokio::task::spawn_blocking(move || {
        ["PROD000001", "PROD000002"].map(|reference| {
            let r = submit(&a, &token, reference).unwrap();
            assert_eq!(r.status, 202, "{reference}");
            r.json()["interchange"]["id"].as_str().unwrap().to_owned()
        })
    })
    .await
    .unwrap();
    for lrn in ["PROD000001", "PROD000002"] {
        let text = next_cusres(&ch, ack_queue.as_str()).await;
        assert!(text.contains("status awaiting_permits"), "{text}");
        assert!(text.contains(&format!("RFF+ABE:{lrn}'")), "{text}");
    }

    // The agency takes both requests from its queue, and nothing reached
    // another agency's.
    let mut permits = Vec::new();
    for _ in 0..2 {
        let m = common::next_message(&ch, kmdia.as_str()).await;
        assert_eq!(m.delivery.routing_key.as_str(), "permit.KMDIA");
        let request: serde_json::Value = serde_json::from_slice(&m.delivery.data).unwrap();
        assert_eq!(request["agency"], "KMDIA");
        permits.push((
            request["declaration"]["lrn"].as_str().unwrap().to_owned(),
            request["id"].as_str().unwrap().to_owned(),
        ));
    }
    permits.sort();
    let mfds = common::queue_state(&ch, d.settings.agency_queue("MFDS").as_str()).await;
    assert_eq!(mfds.message_count(), 0);

    // Granted: cleared (CUSRES 29); refused: held (23, documents to
    // produce).
    answer(&ch, &d.settings, &permits[0].1, "granted").await;
    let text = next_cusres(&ch, ack_queue.as_str()).await;
    assert!(text.contains("BGM+961+PROD000001+29+AP'"), "{text}");
    answer(&ch, &d.settings, &permits[1].1, "refused").await;
    let text = next_cusres(&ch, ack_queue.as_str()).await;
    assert!(text.contains("BGM+963+PROD000002+23'"), "{text}");
    assert!(text.contains("ERC+HUB301::ZZZ'"), "{text}");
    // The reason, in FTX lines that join back without a separator.
    assert!(
        text.replace(": ", " ")
            .contains("refused by the test agency"),
        "{text}"
    );

    let (a, token) = (addr.to_owned(), d.broker_token.clone());
    let statuses = tokio::task::spawn_blocking(move || {
        ids.map(|id| declaration_of(&a, &token, &id)["status"].clone())
    })
    .await
    .unwrap();
    assert_eq!(statuses, ["cleared", "held"]);
    let _ = ch.close(200, "done".into()).await;
}

/// The hub is killed with SIGKILL under load and restarted: every
/// acknowledged interchange exists once, every permit request reached the
/// agency's queue and was decided once.
async fn kill_9_loses_nothing(d: &Deployment, conn: &Connection, server: Server, addr: String) {
    // The two declarations of the first part.
    let before = 2;

    // The agency: every request it takes from its queue is granted, then
    // acknowledged; it records the permit ids it saw (a request published
    // again after the crash is seen twice and answered the same way).
    let seen: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let agency_running = Arc::new(AtomicBool::new(true));
    let agency = {
        let ch = conn.create_channel().await.unwrap();
        ch.confirm_select(Default::default()).await.unwrap();
        ch.basic_qos(64, BasicQosOptions::default()).await.unwrap();
        let mut deliveries = ch
            .basic_consume(
                d.settings.agency_queue("KMDIA"),
                "test-agency".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let (seen, running, settings) = (seen.clone(), agency_running.clone(), d.settings.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), deliveries.next());
                let Ok(Some(delivery)) = next.await else {
                    continue;
                };
                let delivery = delivery.unwrap();
                let request: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
                // A notice (its answer recorded, a permit withdrawn) has a
                // `type`; a permit request has none.
                if request.get("type").is_some() {
                    delivery.ack(BasicAckOptions::default()).await.unwrap();
                    continue;
                }
                let id = request["id"].as_str().unwrap().to_owned();
                answer(&ch, &settings, &id, "granted").await;
                delivery.ack(BasicAckOptions::default()).await.unwrap();
                seen.lock().unwrap().insert(id);
            }
        })
    };

    // Four HTTP clients submit until the hub is killed.
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default(); // (reference, id)
    let unknown: Arc<Mutex<Vec<String>>> = Arc::default(); // answer lost
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for t in 0..4 {
        let (acked, unknown, running) = (acked.clone(), unknown.clone(), running.clone());
        let (addr, token) = (addr.clone(), d.broker_token.clone());
        clients.push(std::thread::spawn(move || {
            let mut i = 0;
            while running.load(Ordering::Relaxed) && i < 100_000 {
                let reference = format!("P{t}{i:06}");
                i += 1;
                match submit(&addr, &token, &reference) {
                    Some(r) if r.status == 202 => {
                        let id = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().push((reference, id));
                    }
                    // Busy, or the store failed for the moment: the hub
                    // stored nothing; the sender tries again later, under
                    // a new reference (this one may be taken after all).
                    Some(r) if r.status == 503 => {
                        unknown.lock().unwrap().push(reference);
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    Some(r) => panic!("unexpected {} for {reference}", r.status),
                    None => {
                        unknown.lock().unwrap().push(reference);
                        break;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(server); // SIGKILL
    running.store(false, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    let unknown = unknown.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "too little load before the kill: {}",
        acked.len()
    );

    // Restart on the same database and broker.
    let (server, addr) = d.serve();
    let token = d.broker_token.clone();
    let (acked, unknown) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || {
            for (reference, id) in &acked {
                let d = declaration_of(&addr, &token, id);
                assert_eq!(d["lrn"], reference.as_str(), "{id}");
            }
            // Senders whose answer was lost resubmit: stored at most once.
            for reference in &unknown {
                let r = submit(&addr, &token, reference).unwrap();
                assert!(
                    r.status == 200 || r.status == 202,
                    "{reference}: {}",
                    r.status
                );
            }
            (acked, unknown)
        }
    })
    .await
    .unwrap();

    // The relay publishes what was left, the agency answers it.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let a = addr.clone();
        let text = tokio::task::spawn_blocking(move || {
            let metrics = request_blocking(&a, "GET", "/metrics", None, b"").unwrap();
            String::from_utf8(metrics.body).unwrap()
        })
        .await
        .unwrap();
        if text.contains("tradehub_permits_pending 0\n")
            && text.contains("tradehub_outbox_backlog 0\n")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "work left after restart:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agency_running.store(false, Ordering::Relaxed);
    agency.await.unwrap();
    drop(server);

    let store = Store::open(&d.store_url).await.unwrap();
    let interchanges = store.count(Table::Interchanges).await.unwrap();
    assert_eq!(interchanges as usize, before + acked.len() + unknown.len());
    assert_eq!(
        store.count(Table::Declarations).await.unwrap(),
        interchanges
    );
    assert_eq!(store.count(Table::Permits).await.unwrap(), interchanges);
    assert_eq!(store.outbox_backlog().await.unwrap(), 0);
    let seen = seen.lock().unwrap().clone();
    for declaration in store.declarations(None, None, 1_000_000).await.unwrap() {
        if declaration
            .lrn
            .as_deref()
            .is_some_and(|l| l.starts_with("PROD"))
        {
            continue; // the first part's
        }
        assert_eq!(declaration.status, "cleared", "{}", declaration.id);
        let permits = store.permits_of(&declaration.id).await.unwrap();
        assert_eq!(permits.len(), 1, "{}", declaration.id);
        // Published at least once: the agency took it from its queue.
        assert!(
            seen.contains(&permits[0].id),
            "permit {} never reached agency.KMDIA",
            permits[0].id
        );
        assert_eq!(permits[0].status, "granted");
        let decided = store
            .declaration_events(&declaration.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.kind.starts_with("permit_granted"))
            .count();
        assert_eq!(
            decided, 1,
            "declaration {} decided {decided} times",
            declaration.id
        );
    }
    store.close().await;
}
