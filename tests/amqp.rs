//! AMQP intake against the machine's RabbitMQ (TRADEHUB_TEST_AMQP_URL,
//! default amqp://guest:guest@127.0.0.1:5672/%2f; under CI=true a missing
//! broker fails the test): acknowledged only after commit, answers on
//! ack.<partner> or reply_to, duplicates answered once stored, poison
//! messages dead-lettered with their reason, nothing left unacknowledged.

// Test helpers may panic: a panic is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use common::{amqp_url, broker, next_message};

use std::path::Path;
use std::time::Duration;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicPublishOptions, ExchangeDeleteOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tradehub::edifact::Limits;
use tradehub::hub::{Intake, new_token};
use tradehub::store::{Store, Table};
use tradehub::timestamp::Timestamp;
use tradehub::transport::amqp::{self, AmqpSettings, INBOUND_KEY};

/// An embedded store in a new directory with `partner` registered, its
/// intake, and AMQP settings under a prefix of their own.
async fn embedded_hub(partner: &str) -> (std::path::PathBuf, Store, Intake, AmqpSettings) {
    let dir = std::env::temp_dir().join(format!("tradehub-amqp-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    let (_, hash) = new_token().unwrap();
    store
        .add_partner(partner, "Broker user of the test", &hash, Timestamp::now())
        .await
        .unwrap();
    let intake = Intake::new(store.clone(), Limits::default());
    let mut settings = AmqpSettings::new(amqp_url());
    settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    (dir, store, intake, settings)
}

/// The fixture with its sender replaced by the broker user.
fn interchange(sender: &str, reference: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();
    text.replace("KRBROKER01", sender)
        .replace("20261124001", reference)
        .into_bytes()
}

async fn publish(ch: &Channel, s: &AmqpSettings, body: &[u8], props: BasicProperties) {
    publish_to(ch, s.inbound_exchange(), INBOUND_KEY, body, props).await;
}

/// Publishes to `exchange` with `key` and waits for the broker's confirm.
async fn publish_to(
    ch: &Channel,
    exchange: lapin::types::ShortString,
    key: &str,
    body: &[u8],
    props: BasicProperties,
) {
    ch.basic_publish(
        exchange,
        key.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Deletes a test's queues and the exchanges of its prefix, and closes its
/// connection: the shared broker keeps nothing of the test.
async fn remove_topology(
    conn: &Connection,
    ch: &Channel,
    settings: &AmqpSettings,
    queues: impl IntoIterator<Item = lapin::types::ShortString>,
) {
    for q in queues {
        let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
    }
    for q in [
        settings.replies_queue(),
        settings.dead_replies_queue(),
        settings.ack_queue("guest"),
    ]
    .into_iter()
    .chain(settings.agencies.iter().map(|a| settings.agency_queue(a)))
    {
        let _ = ch.queue_delete(q, QueueDeleteOptions::default()).await;
    }
    for x in [
        settings.inbound_exchange(),
        settings.dead_letter_exchange(),
        settings.acks_exchange(),
        settings.events_exchange(),
        settings.permits_exchange(),
        settings.replies_exchange(),
    ] {
        let _ = ch
            .exchange_delete(x, ExchangeDeleteOptions::default())
            .await;
    }
    let _ = conn.close(200, "done".into()).await;
}

/// An intake on `store` that routes permit requests by the shipped rules
/// (the rest of its clearance settings from `clearance`).
fn routed_intake(store: &Store, clearance: tradehub::hub::clearance::Clearance) -> Intake {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let catalogue =
        tradehub::agency::AgencyCatalogue::load(root.join("config/agencies.toml")).unwrap();
    let clearance = tradehub::hub::clearance::Clearance {
        routing: tradehub::routing::Routing::load(&root.join("config/routing.toml"), &catalogue)
            .unwrap(),
        ..clearance
    };
    Intake::new(store.clone(), Limits::default()).with_clearance(clearance)
}

/// KMDIA's desk on the broker: a broker user of its own (an account that
/// acts for an agency submits nothing, so it cannot be the sender's), a
/// confirming channel on its connection, and the properties its replies
/// carry.
struct AgencyDesk {
    user: String,
    conn: Connection,
    ch: Channel,
}

impl AgencyDesk {
    fn props(&self) -> BasicProperties {
        BasicProperties::default()
            .with_user_id(self.user.as_str().into())
            .with_delivery_mode(2)
    }

    /// Closes the desk's connection, removes its answer queue (the hub
    /// declares it when the desk's messages come in) and its broker user.
    async fn remove(self, ch: &Channel, settings: &AmqpSettings) {
        let _ = ch
            .queue_delete(settings.ack_queue(&self.user), Default::default())
            .await;
        let _ = self.conn.close(200, "done".into()).await;
        rabbitmqctl(&["delete_user", &self.user]);
    }
}

/// [`embedded_hub`] with `guest` as the sender, the agencies KMDIA and
/// MFDS, and KMDIA's desk as a broker user of its own registered as a
/// partner acting for KMDIA. None (skip) when no broker user can be
/// added, which fails the test under CI=true.
async fn guest_agency_hub() -> Option<(std::path::PathBuf, Store, AmqpSettings, AgencyDesk)> {
    let (user, password) = add_broker_user("thkmdia")?;
    let (dir, store, _, mut settings) = embedded_hub("guest").await;
    let (_, hash) = new_token().unwrap();
    store
        .add_partner(&user, "KMDIA desk", &hash, Timestamp::now())
        .await
        .unwrap();
    store
        .set_partner_agency(&user, Some("KMDIA"))
        .await
        .unwrap();
    settings.agencies = vec!["KMDIA".into(), "MFDS".into()];
    let conn = Connection::connect(&url_as(&user, password), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    Some((dir, store, settings, AgencyDesk { user, conn, ch }))
}

/// The end of a test's hub: its topology off the broker (with the
/// inbound queues), its store closed and, for an embedded one, its
/// directory removed.
async fn remove_hub(
    conn: &Connection,
    ch: &Channel,
    settings: &AmqpSettings,
    store: &Store,
    dir: Option<&Path>,
) {
    remove_topology(
        conn,
        ch,
        settings,
        [settings.inbound_queue(), settings.dead_inbound_queue()],
    )
    .await;
    store.close().await;
    if let Some(dir) = dir {
        std::fs::remove_dir_all(dir).unwrap();
    }
}

/// The hub's consumer on `intake`, run until the sender it returns says
/// stop, beside the test's confirming channel, with the topology and the
/// answer queue of the partner `guest` declared.
async fn guest_consumer(
    conn: &Connection,
    intake: &Intake,
    settings: &AmqpSettings,
) -> (
    Channel,
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, settings).await.unwrap();
    amqp::declare_ack_queue(&ch, settings, "guest")
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(amqp::run(intake.clone(), settings.clone(), stopped));
    (ch, stop, consumer)
}

/// Waits up to 10 s for the AMQP consumer of `intake` to be consuming.
async fn until_consuming(intake: &Intake) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while intake.broker().status() != Some(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumer never connected"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes an agency reply on `hub.permit-replies` and waits for the
/// broker's confirm.
async fn publish_reply(ch: &Channel, s: &AmqpSettings, body: &[u8], props: BasicProperties) {
    publish_to(ch, s.replies_exchange(), amqp::REPLIES_KEY, body, props).await;
}

/// A new exclusive queue the broker names, bound to `exchange` with `key`
/// (its own name without one).
async fn bound_queue(
    ch: &Channel,
    exchange: lapin::types::ShortString,
    key: Option<&str>,
) -> lapin::Queue {
    let queue = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    let key = key.map_or_else(|| queue.name().clone(), Into::into);
    ch.queue_bind(
        queue.name().clone(),
        exchange,
        key,
        Default::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    queue
}

fn args_table(pairs: &[(&str, lapin::types::AMQPValue)]) -> FieldTable {
    let mut table = FieldTable::default();
    for (k, v) in pairs {
        table.insert((*k).into(), v.clone());
    }
    table
}

fn header(m: &lapin::message::BasicGetMessage, key: &str) -> String {
    match m
        .delivery
        .properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(key))
    {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("header {key}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amqp_intake_end_to_end() {
    let Some(conn) = broker().await else {
        return;
    };
    let (dir, store, intake, mut settings) = embedded_hub("guest").await;
    settings.max_body_bytes = 64 * 1024;

    // Declare the topology first so that publishing before the consumer
    // starts is safe, as for a real partner.
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    amqp::declare_ack_queue(&ch, &settings, "guest")
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(amqp::consume(
        intake.clone(),
        settings.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let as_guest = || {
        BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2)
    };

    // 1. A valid manifest: stored, answered on ack.guest with an accepting CONTRL.
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP001"),
        as_guest().with_message_id("m-1".into()),
    )
    .await;
    let ack_queue = settings.ack_queue("guest");
    let m = next_message(&ch, ack_queue.as_str()).await;
    let text = String::from_utf8(m.delivery.data.clone()).unwrap();
    assert!(
        text.contains("UCI+AMQP001+guest:ZZZ+TRADEHUB:ZZZ+7'"),
        "{text}"
    );
    assert_eq!(header(&m, "x-tradehub-status"), "validated");
    assert_eq!(
        m.delivery
            .properties
            .content_type()
            .as_ref()
            .map(|c| c.as_str()),
        Some("application/edifact")
    );
    assert_eq!(
        m.delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str()),
        Some("m-1")
    );
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 1);

    // 2. The same bytes again: answered again, stored once.
    publish(&ch, &settings, &interchange("guest", "AMQP001"), as_guest()).await;
    let again = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(
        header(&again, "x-tradehub-interchange"),
        header(&m, "x-tradehub-interchange")
    );
    // The original acknowledgement, byte for byte.
    assert_eq!(again.delivery.data, m.delivery.data);
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 1);

    // 3. reply_to is honoured.
    let reply = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP002"),
        as_guest().with_reply_to(reply.name().clone()),
    )
    .await;
    let r = next_message(&ch, reply.name().as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP002+guest"));
    // A reply_to queue that does not exist: the answer is not dropped but
    // goes to the partner's answer queue.
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP006"),
        as_guest().with_reply_to(format!("{}no-such-queue", settings.prefix).into()),
    )
    .await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP006+guest"));
    // A reply_to naming another partner's answer queue: not answered
    // there (the hub's user could publish to it), but on the sender's own.
    amqp::declare_ack_queue(&ch, &settings, "OTHER")
        .await
        .unwrap();
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP007"),
        as_guest().with_reply_to(settings.ack_queue("OTHER")),
    )
    .await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP007+guest"));
    let other = ch
        .basic_get(settings.ack_queue("OTHER"), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(other.is_none(), "answered on another partner's queue");
    ch.queue_delete(settings.ack_queue("OTHER"), QueueDeleteOptions::default())
        .await
        .unwrap();
    // A reply_to queue that refuses every message (full, overflow
    // reject-publish): the answer goes to the partner's answer queue, and
    // the consumer goes on with the next message at once (the refusal used
    // to close the connection and redeliver the message over and over).
    let full = ch
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                ..Default::default()
            },
            args_table(&[
                ("x-max-length", lapin::types::AMQPValue::LongInt(0)),
                (
                    "x-overflow",
                    lapin::types::AMQPValue::LongString("reject-publish".into()),
                ),
            ]),
        )
        .await
        .unwrap();
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP008"),
        as_guest().with_reply_to(full.name().clone()),
    )
    .await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP008+guest"));
    publish(&ch, &settings, &interchange("guest", "AMQP009"), as_guest()).await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP009+guest"));
    assert!(!consumer.is_finished(), "the consumer stopped");
    // A malformed direct reply-to name: a publish to it makes the broker
    // close the publisher's whole connection, at every redelivery. The hub
    // does not answer on direct reply-to: the answer goes to the partner's
    // queue, and the next message is taken at once.
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP010"),
        as_guest().with_reply_to(
            "amq.rabbitmq.reply-to.g2dkABNyYWJiaXRAbG9jYWxob3N0AAAD6AAAAAAAAAAAAAAAAA==.abc".into(),
        ),
    )
    .await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP010+guest"));
    publish(&ch, &settings, &interchange("guest", "AMQP011"), as_guest()).await;
    let r = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&r.delivery.data).contains("UCI+AMQP011+guest"));

    // 4. Poison: no user_id, a sender other than the user, not EDIFACT.
    let dead = settings.dead_inbound_queue();
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP003"),
        BasicProperties::default(),
    )
    .await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB202");

    // Its copy keeps few, plain headers of the sender's: a header as large
    // as a frame holds made the copy too large for the broker (it closed
    // the connection, and the delivery came back again and again), and a
    // CC header routed the copy to further queues.
    let cc = bound_queue(&ch, settings.dead_letter_exchange(), None).await;
    publish(
        &ch,
        &settings,
        &interchange("guest", "AMQP012"),
        BasicProperties::default().with_headers(args_table(&[
            ("note", AMQPValue::LongString("kept".into())),
            ("big", AMQPValue::LongString("x".repeat(120_000).into())),
            (
                "CC",
                AMQPValue::FieldArray(
                    vec![AMQPValue::LongString(cc.name().to_string().into())].into(),
                ),
            ),
        ])),
    )
    .await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB202");
    assert_eq!(header(&d, "note"), "kept");
    let headers = d.delivery.properties.headers().clone().unwrap();
    assert!(headers.inner().get("big").is_none());
    assert!(headers.inner().get("CC").is_none());
    assert_eq!(
        headers.inner().get("x-tradehub-headers-dropped"),
        Some(&AMQPValue::LongLongInt(2))
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        ch.basic_get(cc.name().clone(), BasicGetOptions::default())
            .await
            .unwrap()
            .is_none(),
        "the CC header routed the copy"
    );
    assert!(!consumer.is_finished(), "the consumer stopped");

    publish(
        &ch,
        &settings,
        &interchange("KRBROKER01", "AMQP004"),
        as_guest(),
    )
    .await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB201");
    assert!(header(&d, "x-tradehub-reason").contains("KRBROKER01"));
    let refusal_answer = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(header(&refusal_answer, "x-tradehub-code"), "HUB201");

    // Over the size limit: dead-lettered unread, and its registered
    // sender answered with the reason.
    publish(&ch, &settings, &vec![b'A'; 100 * 1024], as_guest()).await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB413");
    assert!(header(&d, "x-tradehub-reason").contains("exceeds the limit of 65536 bytes"));
    let answer = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(header(&answer, "x-tradehub-code"), "HUB413");
    let text = String::from_utf8_lossy(&answer.delivery.data).into_owned();
    assert!(
        text.starts_with(
            "refused HUB413: message of 102400 bytes exceeds the limit of 65536 bytes"
        ),
        "{text}"
    );
    // … and recorded, as every refusal is.
    let refusals = store.refusals("guest", 10).await.unwrap();
    assert!(
        refusals
            .iter()
            .any(|(code, detail)| code == "HUB413" && detail.contains("102400 bytes")),
        "{refusals:?}"
    );

    publish(&ch, &settings, b"neither EDIFACT nor XML", as_guest()).await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "EDI104");
    let _ = next_message(&ch, ack_queue.as_str()).await;

    // A delivery the store refuses for good (here a trigger of the test
    // aborts its insert): dead-lettered with the reason (HUB501), not
    // requeued, and the consumer goes on with the next ones.
    let db = common::refuse_interchange(&dir, "POISON1").await;
    publish(&ch, &settings, &interchange("guest", "POISON1"), as_guest()).await;
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB501");
    assert!(
        header(&d, "x-tradehub-reason").contains("refused by the test"),
        "{}",
        header(&d, "x-tradehub-reason")
    );
    publish(&ch, &settings, &interchange("guest", "AMQP005"), as_guest()).await;
    let after = next_message(&ch, ack_queue.as_str()).await;
    assert!(String::from_utf8_lossy(&after.delivery.data).contains("UCI+AMQP005+guest"));
    sqlx::query("DROP TRIGGER refuse_poison")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;

    // A failure that may pass (the database is locked, for 0.6 s here):
    // the delivery's task retries it, and the sender's next delivery waits
    // behind it — answered in the order published, nothing dead-lettered.
    let db = common::refuse_interchange_with(&dir, "SLOW001", "database is locked").await;
    publish(&ch, &settings, &interchange("guest", "SLOW001"), as_guest()).await;
    publish(&ch, &settings, &interchange("guest", "SLOW002"), as_guest()).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    sqlx::query("DROP TRIGGER refuse_poison")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    for reference in ["SLOW001", "SLOW002"] {
        let m = next_message(&ch, ack_queue.as_str()).await;
        let text = String::from_utf8_lossy(&m.delivery.data).into_owned();
        assert!(text.contains(&format!("UCI+{reference}+guest")), "{text}");
    }

    // WCO XML is taken too: an invalid declaration is stored as rejected
    // and answered with a WCO RES 03.
    publish(&ch, &settings, b"<Declaration/>", as_guest()).await;
    let res = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(header(&res, "x-tradehub-status"), "rejected");
    let text = String::from_utf8_lossy(&res.delivery.data).into_owned();
    assert!(
        text.contains("<res:FunctionCode>03</res:FunctionCode>"),
        "{text}"
    );
    assert_eq!(
        res.delivery
            .properties
            .content_type()
            .as_ref()
            .map(|c| c.as_str()),
        Some("application/xml")
    );

    // Deliveries are handled concurrently, but one sender's in the order
    // they were published: 20 at once are answered in that order.
    let refs: Vec<String> = (0..20).map(|i| format!("ORD{i:03}")).collect();
    for r in &refs {
        publish(&ch, &settings, &interchange("guest", r), as_guest()).await;
    }
    let mut answered = Vec::new();
    for _ in &refs {
        let m = next_message(&ch, ack_queue.as_str()).await;
        let text = String::from_utf8_lossy(&m.delivery.data).into_owned();
        let at = text.find("UCI+").unwrap() + 4;
        answered.push(text[at..at + 6].to_owned());
    }
    assert_eq!(answered, refs);

    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 32);

    // Nothing is left unacknowledged on the inbound queue: once the
    // consumer is gone, a delivery it never acknowledged is back on the
    // queue and counted as ready.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // (The broker counts the consumer gone a moment after it is.)
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let inbound = loop {
        let inbound = common::queue_state(&ch, settings.inbound_queue().as_str()).await;
        if inbound.consumer_count() == 0 || tokio::time::Instant::now() > deadline {
            break inbound;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(inbound.consumer_count(), 0);
    assert_eq!(inbound.message_count(), 0);
    remove_topology(
        &conn,
        &ch,
        &settings,
        [
            settings.inbound_queue(),
            settings.dead_inbound_queue(),
            settings.ack_queue("guest"),
        ],
    )
    .await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The outbox relay publishes status events to `tradehub.events` with
/// confirms; subscribers bind their own queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn outbox_events_reach_rabbitmq() {
    let Some(conn) = broker().await else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "tradehub-amqp-outbox-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    store
        .add_partner("guest", "Broker user of the test", "hash", Timestamp::now())
        .await
        .unwrap();
    let partner = store.partner("guest").await.unwrap().unwrap();
    let intake = Intake::new(store.clone(), Limits::default());
    let mut settings = AmqpSettings::new(amqp_url());
    settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());

    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    let sub = bound_queue(&ch, settings.events_exchange(), Some("interchange.#")).await;

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher = std::sync::Arc::new(amqp::OutboxPublisher::new(settings.clone()));
    let relay = tokio::spawn(tradehub::hub::outbox::relay(
        store.clone(),
        publisher,
        intake.outbox_wake(),
        tradehub::hub::outbox::RelaySettings {
            poll: Duration::from_secs(3600),
            ..Default::default()
        },
        async move {
            let _ = stopped.await;
        },
    ));
    let tradehub::hub::Submission::Stored(receipt) = intake
        .submit(&partner, interchange("guest", "EVT001"))
        .await
        .unwrap()
    else {
        panic!("not stored")
    };
    let m = next_message(&ch, sub.name().as_str()).await;
    assert_eq!(m.delivery.routing_key.as_str(), "interchange.validated");
    assert_eq!(
        m.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string()),
        Some(format!("{}/validated", receipt.interchange.id))
    );
    let json: serde_json::Value = serde_json::from_slice(&m.delivery.data).unwrap();
    assert_eq!(json["interchange"]["control_reference"], "EVT001");
    // Marked only after the confirm.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.outbox_backlog().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox row not marked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), relay)
        .await
        .unwrap()
        .unwrap();
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// A permit request whose agency queue was deleted while the hub ran is
/// not lost: it is published mandatory, comes back, waits (not parked),
/// and is delivered once the next link has declared the queue again.
/// Before, the broker confirmed it, the row was marked published and the
/// permit later expired against an agency that never saw it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_agency_queue_was_deleted_waits_for_it() {
    let Some(conn) = broker().await else {
        return;
    };
    let (dir, store, _intake, mut settings) = embedded_hub("guest").await;
    settings.agencies = vec!["KMDIA".into()];
    let ch = conn.create_channel().await.unwrap();
    let publisher = amqp::OutboxPublisher::new(settings.clone());
    let request = |id: &str| tradehub::store::OutboxMessage {
        exchange: "tradehub.permits".into(),
        routing_key: "permit.KMDIA".into(),
        message_id: id.into(),
        content_type: "application/json".into(),
        payload: id.as_bytes().to_vec(),
        correlation_id: None,
    };
    let queue = settings.agency_queue("KMDIA");
    // Queues a request and drains the outbox once: how many went.
    let send = |id: &'static str| {
        let (store, publisher) = (&store, &publisher);
        async move {
            store
                .enqueue_outbox(&[request(id)], Timestamp::now())
                .await
                .unwrap();
            tradehub::hub::outbox::drain(store, publisher)
                .await
                .unwrap()
        }
    };
    assert_eq!(send("p-1").await, 1);
    let m = next_message(&ch, queue.as_str()).await;
    assert_eq!(m.delivery.data, b"p-1");

    ch.queue_delete(queue.clone(), QueueDeleteOptions::default())
        .await
        .unwrap();
    assert_eq!(send("p-2").await, 0);
    let problems = store.outbox_problems(10).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].message_id, "p-2");
    assert!(
        problems[0].parked_at.is_none() && problems[0].retry_at.is_some(),
        "{problems:?}"
    );
    assert!(
        problems[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no queue took")),
        "{problems:?}"
    );

    // The next attempt opens a new link, which declares the queue again.
    store.make_due(problems[0].seq).await.unwrap();
    assert_eq!(
        tradehub::hub::outbox::drain(&store, &publisher)
            .await
            .unwrap(),
        1
    );
    let m = next_message(&ch, queue.as_str()).await;
    assert_eq!(m.delivery.data, b"p-2");
    assert_eq!(store.outbox_counts().await.unwrap(), Default::default());
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// `/readyz` follows the broker: 503 while the AMQP consumer cannot reach
/// RabbitMQ (a closed port), 200 once it consumes from the real broker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_broker() {
    let Some(probe) = broker().await else {
        return;
    };
    let _ = probe.close(200, "reachable".into()).await;
    let dir =
        std::env::temp_dir().join(format!("tradehub-ready-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();

    async fn ready(intake: &Intake) -> (u16, serde_json::Value) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(tradehub::transport::http::serve(
            listener,
            intake.clone(),
            Default::default(),
            async move {
                let _ = stopped.await;
            },
        ));
        let r = common::request(addr, "GET", "/readyz", None, b"").await;
        let _ = stop.send(());
        server.await.unwrap().unwrap();
        (r.status, r.json())
    }

    // Without AMQP the broker does not count.
    let plain = Intake::new(store.clone(), Limits::default());
    let (status, body) = ready(&plain).await;
    assert_eq!(
        (status, body["broker"].as_str()),
        (200, Some("not configured"))
    );

    // A broker that cannot be reached: not ready.
    let down = Intake::new(store.clone(), Limits::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let closed = AmqpSettings::new("amqp://guest:guest@127.0.0.1:1/%2f".to_owned());
    let task = tokio::spawn(amqp::run(down.clone(), closed, stop_rx));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, body) = ready(&down).await;
    assert_eq!(
        (status, body["broker"].as_str()),
        (503, Some("down")),
        "{body}"
    );
    stop_tx.send(true).unwrap();
    task.await.unwrap();

    // The real broker: ready once consuming.
    let up = Intake::new(store.clone(), Limits::default());
    let mut settings = AmqpSettings::new(amqp_url());
    settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(amqp::run(up.clone(), settings.clone(), stop_rx));
    until_consuming(&up).await;
    let (status, body) = ready(&up).await;
    assert_eq!(
        (status, body["broker"].as_str()),
        (200, Some("ok")),
        "{body}"
    );
    stop_tx.send(true).unwrap();
    task.await.unwrap();
    assert_eq!(up.broker().status(), Some(false));

    // Leave nothing behind on the broker.
    let conn = Connection::connect(&amqp_url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// The permit round trip over RabbitMQ: a declaration needing KMDIA's
/// confirmation is answered "awaiting permits" on ack.<partner>, its permit
/// request arrives on agency.KMDIA through the outbox relay, the agency's
/// decision on hub.permit-replies clears it and the sender gets "cleared";
/// a reply that is not a decision is dead-lettered with HUB303. The broker
/// has one user, so `guest` is both the broker and KMDIA's account here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn permits_round_trip_over_amqp() {
    let Some(conn) = broker().await else {
        return;
    };
    let Some((dir, store, mut settings, desk)) = guest_agency_hub().await else {
        return;
    };
    let intake = routed_intake(&store, Default::default());
    settings.max_body_bytes = 256 * 1024;

    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    amqp::declare_ack_queue(&ch, &settings, "guest")
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let consumer = tokio::spawn(amqp::consume(
        intake.clone(),
        settings.clone(),
        wait(stopped.clone()),
    ));
    let relay = tokio::spawn(tradehub::hub::outbox::relay(
        store.clone(),
        std::sync::Arc::new(amqp::OutboxPublisher::new(settings.clone())),
        intake.outbox_wake(),
        tradehub::hub::outbox::RelaySettings {
            poll: Duration::from_millis(200),
            ..Default::default()
        },
        wait(stopped.clone()),
    ));

    let as_guest = || {
        BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2)
    };
    publish(
        &ch,
        &settings,
        &common::cusdec("guest", "PERMIT01", "LRN-AMQP-1", "9", &["901890"]),
        as_guest().with_message_id("broker-msg-1".into()),
    )
    .await;
    let ack_queue = settings.ack_queue("guest");
    let correlation = |m: &lapin::message::BasicGetMessage| {
        m.delivery
            .properties
            .correlation_id()
            .as_ref()
            .map(|c| c.as_str().to_owned())
    };
    // The CONTRL, then the customs answer "awaiting permits" (either order:
    // the consumer and the relay publish independently), each carrying the
    // message_id of the delivery it answers as its correlation_id.
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let m = next_message(&ch, ack_queue.as_str()).await;
        assert_eq!(correlation(&m).as_deref(), Some("broker-msg-1"));
        let text = String::from_utf8(m.delivery.data.clone()).unwrap();
        statuses.push(if text.contains("CONTRL") {
            "contrl".to_owned()
        } else if text.contains("CUSRES") && text.contains("status awaiting_permits") {
            "awaiting_permits".to_owned()
        } else {
            text
        });
    }
    statuses.sort();
    assert_eq!(statuses, ["awaiting_permits", "contrl"]);

    // The permit request on KMDIA's queue, and nothing for MFDS.
    let request = next_message(&ch, settings.agency_queue("KMDIA").as_str()).await;
    assert_eq!(request.delivery.routing_key.as_str(), "permit.KMDIA");
    let request: serde_json::Value = serde_json::from_slice(&request.delivery.data).unwrap();
    assert_eq!(request["agency"], "KMDIA");
    assert_eq!(request["declaration"]["lrn"], "LRN-AMQP-1");
    let permit = request["id"].as_str().unwrap().to_owned();
    let mfds = ch
        .basic_get(settings.agency_queue("MFDS"), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(mfds.is_none());

    // A reply that is not a decision goes to dead.permit-replies, and the
    // agency hears of it on its own queue (the dead-letter queue is shared
    // by every agency: theirs to read is only their own).
    let kmdia = settings.agency_queue("KMDIA");
    let notice = |m: &lapin::message::BasicGetMessage| -> serde_json::Value {
        assert_eq!(
            m.delivery.properties.kind().as_ref().map(|k| k.as_str()),
            Some("permit.reply-refused")
        );
        serde_json::from_slice(&m.delivery.data).unwrap()
    };
    publish_reply(
        &desk.ch,
        &settings,
        b"granted!",
        desk.props().with_message_id("reply-1".into()),
    )
    .await;
    let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
    assert_eq!(header(&dead, "x-tradehub-code"), "HUB303");
    let m = next_message(&ch, kmdia.as_str()).await;
    assert_eq!(
        m.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|k| k.as_str()),
        Some("reply-1/refused")
    );
    let told = notice(&m);
    assert_eq!(told["agency"], "KMDIA");
    assert_eq!(told["account"], desk.user.as_str());
    assert_eq!(told["code"], "HUB303");
    assert_eq!(told["permit_id"], serde_json::Value::Null);
    assert_eq!(told["reply_message_id"], "reply-1");
    assert!(
        told["reason"]
            .as_str()
            .unwrap()
            .starts_with("not a permit decision")
    );
    // One over the size limit is dead-lettered unread, and announced.
    publish_reply(
        &desk.ch,
        &settings,
        &vec![b' '; 256 * 1024 + 1],
        desk.props(),
    )
    .await;
    let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
    assert_eq!(header(&dead, "x-tradehub-code"), "HUB413");
    assert_eq!(
        notice(&next_message(&ch, kmdia.as_str()).await)["code"],
        "HUB413"
    );
    // A reply to another agency's permit: the dead letter says whose it is;
    // the agency is told what it is told of a permit that does not exist,
    // so that it cannot learn which permits exist elsewhere.
    publish(
        &ch,
        &settings,
        &common::cusdec("guest", "PERMIT02", "LRN-AMQP-2", "9", &["020130"]),
        as_guest(),
    )
    .await;
    for _ in 0..2 {
        let _ = next_message(&ch, ack_queue.as_str()).await;
    }
    let mfds_request = next_message(&ch, settings.agency_queue("MFDS").as_str()).await;
    let mfds_request: serde_json::Value =
        serde_json::from_slice(&mfds_request.delivery.data).unwrap();
    let theirs = mfds_request["id"].as_str().unwrap().to_owned();
    let nobodys = "0190f000-0000-7000-8000-000000000000";
    let mut told = Vec::new();
    for (permit, dead_code) in [(theirs.as_str(), "HUB201"), (nobodys, "HUB303")] {
        let reply = serde_json::json!({"permit_id": permit, "outcome": "granted"});
        publish_reply(
            &desk.ch,
            &settings,
            &serde_json::to_vec(&reply).unwrap(),
            desk.props(),
        )
        .await;
        let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
        assert_eq!(header(&dead, "x-tradehub-code"), dead_code);
        let m = next_message(&ch, kmdia.as_str()).await;
        // Named by account and body when the reply has no message id.
        told.push(m.delivery.properties.message_id().clone());
        let notice = notice(&m);
        assert_eq!(notice["code"], "HUB303");
        assert_eq!(notice["reason"], format!("no permit {permit}"));
        assert_eq!(notice["permit_id"], permit);
        assert_eq!(notice["reply_message_id"], serde_json::Value::Null);
    }
    assert!(told.iter().all(|id| {
        id.as_ref()
            .is_some_and(|id| id.as_str().ends_with("/refused"))
    }));
    assert_ne!(told[0], told[1]);
    // One naming a permit of 200 KiB: its reason quotes the id, but the
    // header carries at most 1 KiB of it (a header frame over the broker's
    // frame_max closed the connection, and the delivery came back for
    // ever); the consumer goes on with the grant below.
    let long = serde_json::json!({"permit_id": "P".repeat(200 * 1024), "outcome": "granted"});
    publish_reply(
        &desk.ch,
        &settings,
        &serde_json::to_vec(&long).unwrap(),
        desk.props(),
    )
    .await;
    let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
    let reason = header(&dead, "x-tradehub-reason");
    assert!(
        reason.len() <= amqp::HEADER_TEXT_MAX && reason.ends_with('…'),
        "{} bytes",
        reason.len()
    );
    let told = notice(&next_message(&ch, kmdia.as_str()).await);
    assert_eq!(told["code"], "HUB303");
    assert_eq!(told["permit_id"].as_str().map(str::len), Some(200 * 1024));

    // The agency grants: the sender hears "cleared".
    let decision = serde_json::json!({
        "permit_id": permit,
        "outcome": "granted",
        "reasons": ["device registered"],
    });
    publish_reply(
        &desk.ch,
        &settings,
        &serde_json::to_vec(&decision).unwrap(),
        desk.props(),
    )
    .await;
    // CUSRES: BGM 1225 = 29 accepted, RFF ABE = the LRN (see ack::cusres),
    // correlated with the delivery of the declaration, a day later as well.
    let m = next_message(&ch, ack_queue.as_str()).await;
    let answer = String::from_utf8_lossy(&m.delivery.data).into_owned();
    assert_eq!(correlation(&m).as_deref(), Some("broker-msg-1"));
    assert!(answer.contains("CUSRES:D:96B:UN"), "{answer}");
    assert!(answer.contains("BGM+961+LRN-AMQP-1+29"), "{answer}");
    assert!(answer.contains("RFF+ABE:LRN-AMQP-1'"), "{answer}");
    let p = store.permit(&permit).await.unwrap().unwrap();
    assert_eq!(p.status, "granted");
    // The declaration keeps the record of each answer's delivery: the
    // message id it went out with, and when the broker confirmed it.
    let received = m
        .delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.as_str().to_owned());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let responses = loop {
        let responses = store.responses_of(&p.declaration_id).await.unwrap();
        if responses.iter().all(|r| r.published_at.is_some()) {
            break responses;
        }
        assert!(tokio::time::Instant::now() < deadline, "{responses:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        responses
            .iter()
            .map(|r| r.status.as_str())
            .collect::<Vec<_>>(),
        ["awaiting_permits", "cleared"]
    );
    assert_eq!(responses[1].message_id, received);
    // The agency hears that its answer was recorded, on its own queue,
    // with the declaration as it now stands (without the risk lane).
    let recorded = next_message(&ch, kmdia.as_str()).await;
    let recorded_id = recorded.delivery.properties.message_id().clone();
    assert_eq!(
        recorded_id.as_ref().map(|id| id.as_str().to_owned()),
        Some(format!("{permit}/recorded"))
    );
    assert_eq!(
        recorded
            .delivery
            .properties
            .kind()
            .as_ref()
            .map(|k| k.as_str()),
        Some("permit.decision-recorded")
    );
    let told: serde_json::Value = serde_json::from_slice(&recorded.delivery.data).unwrap();
    assert_eq!(told["permit_id"], permit.as_str());
    assert_eq!(told["outcome"], "granted");
    assert_eq!(told["repeated"], false);
    assert_eq!(told["account"], desk.user.as_str());
    assert_eq!(told["declaration"]["status"], "cleared");
    assert_eq!(told["declaration"]["lrn"], "LRN-AMQP-1");
    assert_eq!(told["declaration"]["lane"], serde_json::Value::Null);
    // The very answer again is taken silently; another one after it (a
    // grant with other reasons, a refusal) is dead-lettered with the answer
    // recorded, and the grant stands.
    let other_reasons = serde_json::json!({"permit_id": permit, "outcome": "granted"});
    let refusal = serde_json::json!({"permit_id": permit, "outcome": "refused"});
    for again in [&decision, &other_reasons, &refusal] {
        publish_reply(
            &desk.ch,
            &settings,
            &serde_json::to_vec(again).unwrap(),
            desk.props(),
        )
        .await;
    }
    for outcome in ["granted", "refused"] {
        let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
        assert_eq!(header(&dead, "x-tradehub-code"), "HUB304");
        assert!(
            header(&dead, "x-tradehub-reason").contains("already answered: granted"),
            "{}",
            header(&dead, "x-tradehub-reason")
        );
        let body = String::from_utf8_lossy(&dead.delivery.data).into_owned();
        assert!(
            body.contains(outcome) && !body.contains("device registered"),
            "{body}"
        );
    }
    // The very answer again: told that it stands, under the same id.
    let again = next_message(&ch, kmdia.as_str()).await;
    assert_eq!(again.delivery.properties.message_id(), &recorded_id);
    let again: serde_json::Value = serde_json::from_slice(&again.delivery.data).unwrap();
    assert_eq!(again["repeated"], true);
    assert_eq!(again["outcome"], "granted");
    for _ in 0..2 {
        let told = notice(&next_message(&ch, kmdia.as_str()).await);
        assert_eq!(told["code"], "HUB304");
        assert_eq!(told["permit_id"].as_str(), Some(permit.as_str()));
    }
    let none = ch
        .basic_get(settings.dead_replies_queue(), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(none.is_none(), "the repeated grant was dead-lettered too");
    let p = store.permit(&permit).await.unwrap().unwrap();
    assert_eq!(p.status, "granted");

    // The desk files nothing: an interchange it publishes under its own
    // name is dead-lettered unread as HUB203, and its refusal recorded.
    let interchanges = store.count(Table::Interchanges).await.unwrap();
    publish(
        &desk.ch,
        &settings,
        &common::cusdec(&desk.user, "DESK01", "LRN-DESK-1", "9", &["901890"]),
        desk.props(),
    )
    .await;
    let dead = next_message(&ch, settings.dead_inbound_queue().as_str()).await;
    assert_eq!(header(&dead, "x-tradehub-code"), "HUB203");
    assert_eq!(header(&dead, "x-tradehub-user"), desk.user);
    assert_eq!(
        store.count(Table::Interchanges).await.unwrap(),
        interchanges
    );
    let refusals = store.refusals(&desk.user, 10).await.unwrap();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].0, "HUB203");
    // The desk is told on its answer queue.
    let told = next_message(&ch, settings.ack_queue(&desk.user).as_str()).await;
    assert_eq!(header(&told, "x-tradehub-code"), "HUB203");

    // Suspended by an operator, the desk's answers are not taken either
    // (HUB204 with the reason, the agency told), nor its interchanges.
    assert!(
        store
            .set_partner_suspension(&desk.user, Some("desk closed"), Timestamp::now())
            .await
            .unwrap()
    );
    publish_reply(
        &desk.ch,
        &settings,
        &serde_json::to_vec(&refusal).unwrap(),
        desk.props(),
    )
    .await;
    let dead = next_message(&ch, settings.dead_replies_queue().as_str()).await;
    assert_eq!(header(&dead, "x-tradehub-code"), "HUB204");
    assert!(
        header(&dead, "x-tradehub-reason").contains("desk closed"),
        "{}",
        header(&dead, "x-tradehub-reason")
    );
    let told = notice(&next_message(&ch, kmdia.as_str()).await);
    assert_eq!(told["code"], "HUB204");
    publish(
        &desk.ch,
        &settings,
        &common::cusdec(&desk.user, "DESK02", "LRN-DESK-2", "9", &["901890"]),
        desk.props(),
    )
    .await;
    let dead = next_message(&ch, settings.dead_inbound_queue().as_str()).await;
    assert_eq!(header(&dead, "x-tradehub-code"), "HUB204");
    let refusals = store.refusals(&desk.user, 10).await.unwrap();
    assert_eq!(refusals[0].0, "HUB204", "{refusals:?}");
    // The record says how it came.
    assert!(
        refusals[0].1.ends_with("; over AMQP, without message_id"),
        "{refusals:?}"
    );
    let told = next_message(&ch, settings.ack_queue(&desk.user).as_str()).await;
    assert_eq!(header(&told, "x-tradehub-code"), "HUB204");
    assert_eq!(
        store.permit(&permit).await.unwrap().unwrap().status,
        "granted"
    );

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), relay)
        .await
        .unwrap()
        .unwrap();
    desk.remove(&ch, &settings).await;
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// Agency answers waiting in the broker when the hub starts (sent while it
/// was down) are taken before any permit expires: a grant sent in time is
/// applied although its permit is overdue by the time the hub reads it
/// (it was expired at once, the grant refused as late and the audit trail
/// said the agency had not answered); a permit nobody answered still
/// expires, once the waiting replies are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_waiting_in_the_broker_are_taken_before_permits_expire() {
    let Some(conn) = broker().await else {
        return;
    };
    let Some((dir, store, settings, desk)) = guest_agency_hub().await else {
        return;
    };
    let intake = routed_intake(
        &store,
        tradehub::hub::clearance::Clearance {
            permit_timeout_secs: 2,
            ..Default::default()
        },
    );
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    amqp::declare_ack_queue(&ch, &settings, "guest")
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();

    // Two declarations, each with a KMDIA permit due in 2 s.
    let partner = store.partner("guest").await.unwrap().unwrap();
    let mut permits = Vec::new();
    for (reference, lrn) in [("WAIT01", "LRN-WAIT-1"), ("WAIT02", "LRN-WAIT-2")] {
        intake
            .submit(
                &partner,
                common::cusdec("guest", reference, lrn, "9", &["901890"]),
            )
            .await
            .unwrap();
        let declaration = store
            .declarations(None, Some("guest"), 10)
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.lrn.as_deref() == Some(lrn))
            .unwrap();
        let of = store.permits_of(&declaration.id).await.unwrap();
        assert_eq!(of.len(), 1, "{of:?}");
        assert_eq!(of[0].agency, "KMDIA");
        permits.push(of[0].id.clone());
    }
    // The requests were sent (here in process: no relay runs in this
    // test), so the agency's time runs.
    tradehub::hub::outbox::drain(&store, &tradehub::hub::outbox::InProcess::new(1024))
        .await
        .unwrap();
    // KMDIA grants the first in time, while the hub is away.
    let grant = serde_json::json!({"permit_id": permits[0], "outcome": "granted"});
    publish_reply(
        &desk.ch,
        &settings,
        &serde_json::to_vec(&grant).unwrap(),
        desk.props(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // The hub starts, its expiry first: nothing expires before the
    // consumer has taken what waits for it.
    intake.broker().set_configured();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let expiry = tokio::spawn(tradehub::hub::permits::expire_loop(
        intake.clone(),
        Duration::from_millis(100),
        wait(stopped.clone()),
    ));
    tokio::time::sleep(Duration::from_millis(600)).await;
    for permit in &permits {
        let p = store.permit(permit).await.unwrap().unwrap();
        assert_eq!(p.status, "pending", "expired before the replies were read");
    }
    let consumer = tokio::spawn(amqp::run(intake.clone(), settings.clone(), stopped.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let statuses = loop {
        // Whenever the agencies count as heard, the waiting grant is in
        // (the replies were counted after the consumer took them, so a
        // backlog within its prefetch counted as none).
        let heard = intake.broker().agencies_heard();
        let mut statuses = Vec::new();
        for permit in &permits {
            statuses.push(store.permit(permit).await.unwrap().unwrap().status);
        }
        assert!(
            !heard || statuses[0] == "granted",
            "the agencies counted as heard before the waiting grant was taken: {statuses:?}"
        );
        if statuses.iter().all(|s| s != "pending") {
            break statuses;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "permits still pending: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(statuses, ["granted", "expired"]);
    let none = ch
        .basic_get(settings.dead_replies_queue(), BasicGetOptions::default())
        .await
        .unwrap();
    assert!(none.is_none(), "the grant was dead-lettered");

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), expiry)
        .await
        .unwrap()
        .unwrap();
    desk.remove(&ch, &settings).await;
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// A storage failure that outlasts the retry budget: the consumer gives
/// the unacknowledged deliveries back by reconnecting, instead of
/// requeueing the one that failed and going on with the sender's next. A
/// cancellation published right after its original is therefore not
/// handled before the original comes back (it was: the original was
/// requeued, the cancellation found no declaration to cancel and was
/// refused, and the original was then accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_long_store_failure_keeps_the_senders_order() {
    let Some(conn) = broker().await else {
        return;
    };
    let (dir, store, _, mut settings) = embedded_hub("guest").await;
    settings.store_retry_budget = Duration::from_millis(300);
    // Routed, so that the original waits for a permit (a cleared one could
    // no longer be cancelled).
    let intake = routed_intake(&store, Default::default());
    let (ch, stop, consumer) = guest_consumer(&conn, &intake, &settings).await;
    let as_guest = || {
        BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2)
    };
    // The original cannot be stored for a while (longer than the budget);
    // its cancellation could.
    let db = common::refuse_interchange_with(&dir, "ORIG01", "database is locked").await;
    publish(
        &ch,
        &settings,
        &common::cusdec("guest", "ORIG01", "LRN-ORDER-1", "9", &["901890"]),
        as_guest(),
    )
    .await;
    publish(
        &ch,
        &settings,
        &common::cusdec("guest", "CANC01", "LRN-ORDER-1", "1", &["901890"]),
        as_guest(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        store.count(Table::Interchanges).await.unwrap(),
        0,
        "nothing is taken while the original cannot be"
    );
    sqlx::query("DROP TRIGGER refuse_poison")
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    // Answered in order once the consumer is back: the original, then the
    // cancellation, which found the declaration and cancelled it.
    let contrls = [
        next_contrl(&ch, &settings).await,
        next_contrl(&ch, &settings).await,
    ];
    assert!(contrls[0].contains("UCI+ORIG01+"), "{}", contrls[0]);
    assert!(contrls[1].contains("UCI+CANC01+"), "{}", contrls[1]);
    let declarations = store.declarations(None, Some("guest"), 10).await.unwrap();
    let mut statuses: Vec<(String, String)> = declarations
        .iter()
        .map(|d| (d.function.clone().unwrap_or_default(), d.status.clone()))
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("cancellation".to_owned(), "accepted".to_owned()),
            ("original".to_owned(), "cancelled".to_owned())
        ],
        "{declarations:#?}"
    );
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    remove_hub(&conn, &ch, &settings, &store, Some(&dir)).await;
}

/// A database outage longer than the retry budget: the consumer gives the
/// delivery back once and takes nothing more until the database answers,
/// so a message waiting out the outage is not sent to the dead-letter
/// queue by the queue's delivery limit (it was: every reconnect with
/// back-off delivered it again, the store failed again, and each give-back
/// counted, so a few minutes' outage dead-lettered every waiting message).
/// The outage is real: the hub reaches PostgreSQL through a forwarder the
/// test cuts, as a network failure or a server restart would.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_does_not_use_up_the_delivery_limit() {
    let Some((url, db_name)) = common::pg_database().await else {
        return;
    };
    let gate = common::TcpGate::start(common::pg_addr_of(&url)).await;
    let through = common::url_through(&url, gate.addr);
    outage_costs_one_delivery(&through, Outage::Network(&gate), "OUTAGE01").await;
    drop(gate);
    common::drop_pg_database(&db_name).await;
}

/// A database that answers queries but refuses writes (a read-only
/// standby after a failover) is an outage too: the consumer waits until
/// the store takes a write before it consumes again. Waiting only for a
/// query to answer, it took the message back at once, failed again and
/// dead-lettered it within seconds at this delivery limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_database_does_not_use_up_the_delivery_limit() {
    let Some((url, db_name)) = common::pg_database().await else {
        return;
    };
    outage_costs_one_delivery(&url, Outage::ReadOnly(&db_name), "READONLY1").await;
    common::drop_pg_database(&db_name).await;
}

/// How a test takes the hub's database away.
enum Outage<'a> {
    /// The connections through this forwarder are cut.
    Network(&'a common::TcpGate),
    /// The database of this name refuses writes.
    ReadOnly(&'a str),
}

impl Outage<'_> {
    async fn set(&self, on: bool) {
        match self {
            Outage::Network(gate) if on => gate.cut(),
            Outage::Network(gate) => gate.restore(),
            Outage::ReadOnly(name) => common::pg_read_only(name, on).await,
        }
    }
}

/// A hub consuming as `guest` on the store at `url`, with a delivery limit
/// of two: a message published during `outage` (9 s) is neither stored nor
/// dead-lettered, and once the outage ends it is taken and answered.
/// Without the wait for the database, the third attempt (within about four
/// seconds) would dead-letter it.
async fn outage_costs_one_delivery(url: &str, outage: Outage<'_>, reference: &str) {
    let Some(conn) = broker().await else {
        return;
    };
    let store = Store::open(url).await.unwrap();
    let (_, hash) = new_token().unwrap();
    store
        .add_partner("guest", "Broker user of the test", &hash, Timestamp::now())
        .await
        .unwrap();
    let intake = Intake::new(store.clone(), Limits::default());
    let mut settings = AmqpSettings::new(amqp_url());
    settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    settings.store_retry_budget = Duration::from_millis(300);
    settings.delivery_limit = 2;
    let (ch, stop, consumer) = guest_consumer(&conn, &intake, &settings).await;
    until_consuming(&intake).await;

    outage.set(true).await;
    publish(
        &ch,
        &settings,
        &interchange("guest", reference),
        BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let dead = common::queue_state(&ch, settings.dead_inbound_queue().as_str()).await;
    assert_eq!(dead.message_count(), 0, "dead-lettered during the outage");
    outage.set(false).await;

    let contrl = next_contrl(&ch, &settings).await;
    assert!(contrl.contains(&format!("UCI+{reference}+")), "{contrl}");
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 1);
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    remove_hub(&conn, &ch, &settings, &store, None).await;
}

/// The next CONTRL on partner `guest`'s answer queue (other answers, the
/// CUSRES, skipped).
async fn next_contrl(ch: &Channel, settings: &AmqpSettings) -> String {
    loop {
        let m = next_message(ch, settings.ack_queue("guest").as_str()).await;
        let text = String::from_utf8_lossy(&m.delivery.data).into_owned();
        if text.contains("CONTRL") {
            return text;
        }
    }
}

/// A consumer started after the test declared the partner `guest`'s
/// answer queue itself, with `options`, as a partner may: the test's
/// connection and confirming channel, the hub's store and settings, and
/// how to stop the consumer.
struct OwnQueue {
    conn: Connection,
    ch: Channel,
    dir: std::path::PathBuf,
    store: Store,
    settings: AmqpSettings,
    stop: tokio::sync::oneshot::Sender<()>,
    consumer: tokio::task::JoinHandle<Result<(), amqp::AmqpError>>,
}

async fn own_answer_queue(options: QueueDeclareOptions) -> Option<OwnQueue> {
    let conn = broker().await?;
    let (dir, store, intake, settings) = embedded_hub("guest").await;
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    ch.queue_declare(settings.ack_queue("guest"), options, FieldTable::default())
        .await
        .unwrap();
    ch.confirm_select(Default::default()).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(amqp::consume(intake, settings.clone(), async move {
        let _ = stopped.await;
    }));
    for reference in ["OWNQ1", "OWNQ2"] {
        let props = BasicProperties::default()
            .with_user_id("guest".into())
            .with_delivery_mode(2);
        publish(&ch, &settings, &interchange("guest", reference), props).await;
    }
    Some(OwnQueue {
        conn,
        ch,
        dir,
        store,
        settings,
        stop,
        consumer,
    })
}

impl OwnQueue {
    /// What the outbox relay makes of an answer to `guest`.
    async fn relay(&self, payload: &[u8]) -> Vec<Result<(), tradehub::hub::outbox::RelayError>> {
        let publisher = amqp::OutboxPublisher::new(self.settings.clone());
        let message = tradehub::store::PendingMessage {
            seq: 1,
            message: tradehub::store::OutboxMessage {
                message_id: format!("own-queue-{}", uuid::Uuid::now_v7()),
                exchange: tradehub::hub::clearance::ACKS_EXCHANGE.into(),
                routing_key: "ack.guest".into(),
                content_type: "text/plain".into(),
                payload: payload.to_vec(),
                correlation_id: None,
            },
            created_at: Timestamp::now().to_string(),
            attempts: 0,
        };
        tradehub::hub::outbox::Publish::publish_all(&publisher, &[message]).await
    }

    async fn finish(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.consumer)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        remove_hub(
            &self.conn,
            &self.ch,
            &self.settings,
            &self.store,
            Some(&self.dir),
        )
        .await;
    }
}

/// A partner's answer queue the broker will not let the hub declare or
/// bind (here declared exclusive by another connection: 405
/// RESOURCE_LOCKED) is that partner's problem: the consumer starts and takes
/// the partner's messages (the answers are kept in the store), and the
/// outbox relay reports the message as refused at its destination (it
/// waits; the others flow) instead of the broker being away.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_answer_queue_the_broker_refuses_stops_nobody() {
    let Some(q) = own_answer_queue(QueueDeclareOptions {
        exclusive: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while q.store.count(Table::Interchanges).await.unwrap() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline && !q.consumer.is_finished(),
            "the consumer stopped or took nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!q.consumer.is_finished());
    let sent = q.relay(b"answer").await;
    assert!(
        matches!(
            sent.as_slice(),
            [Err(tradehub::hub::outbox::RelayError::Refused(_))]
        ),
        "{sent:?}"
    );
    q.finish().await;
}

/// A partner that declared its answer queue itself, as a classic queue
/// (with other arguments than the hub's quorum queue), is answered there:
/// the refused declaration neither stops the consumer at start-up nor
/// closes the channel its deliveries are on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partners_own_classic_answer_queue_is_used() {
    let Some(q) = own_answer_queue(QueueDeclareOptions {
        durable: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    for reference in ["OWNQ1", "OWNQ2"] {
        let m = next_message(&q.ch, q.settings.ack_queue("guest").as_str()).await;
        let text = String::from_utf8(m.delivery.data.clone()).unwrap();
        assert!(text.contains(&format!("UCI+{reference}+guest")), "{text}");
    }
    // And the outbox relay answers there too.
    let sent = q.relay(b"relayed").await;
    assert!(sent.iter().all(|r| r.is_ok()), "{sent:?}");
    let m = next_message(&q.ch, q.settings.ack_queue("guest").as_str()).await;
    assert_eq!(m.delivery.data, b"relayed");
    assert_eq!(q.store.count(Table::Interchanges).await.unwrap(), 2);
    q.finish().await;
}

/// Runs `rabbitmqctl` (the broker of the machine); false when it cannot be
/// run, which fails the test under CI=true.
fn rabbitmqctl(args: &[&str]) -> bool {
    match std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
    {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!(
                "rabbitmqctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            false
        }
        Err(e) => {
            eprintln!("rabbitmqctl {args:?}: {e}");
            false
        }
    }
}

/// A new broker user named `prefix` and a random tail, with every
/// permission on the default virtual host, and its password. None (skip)
/// when `rabbitmqctl` cannot add it, which fails the test under CI=true.
fn add_broker_user(prefix: &str) -> Option<(String, &'static str)> {
    let user = format!(
        "{prefix}{}",
        &uuid::Uuid::now_v7().simple().to_string()[20..]
    );
    let password = "partner-secret";
    if rabbitmqctl(&["add_user", &user, password])
        && rabbitmqctl(&["set_permissions", "-p", "/", &user, ".*", ".*", ".*"])
    {
        return Some((user, password));
    }
    assert!(
        !common::ci(),
        "rabbitmqctl is required under CI=true to add a broker user"
    );
    eprintln!("skipping: cannot add a broker user");
    None
}

/// The test URL with other credentials.
fn url_as(user: &str, password: &str) -> String {
    let url = amqp_url();
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// A partner with its own broker user (as OPERATIONS.md asks) whose
/// message is refused: the hub, connected as another user, dead-letters it
/// with its reason. The copy cannot carry the partner's `user_id` (the
/// broker takes a `user_id` only from that user's connection), so the
/// sender travels as `x-tradehub-user`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_users_poison_message_is_dead_lettered_by_the_hub_user() {
    let Some(conn) = broker().await else {
        return;
    };
    let Some((user, password)) = add_broker_user("thpartner") else {
        return;
    };
    let (dir, store, intake, settings) = embedded_hub(&user).await;
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    amqp::declare_ack_queue(&ch, &settings, &user)
        .await
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let consumer = tokio::spawn(amqp::consume(
        intake.clone(),
        settings.clone(),
        async move {
            let _ = stopped.await;
        },
    ));

    let partner = Connection::connect(&url_as(&user, password), ConnectionProperties::default())
        .await
        .unwrap();
    let pch = partner.create_channel().await.unwrap();
    pch.confirm_select(Default::default()).await.unwrap();
    let as_partner = BasicProperties::default()
        .with_user_id(user.as_str().into())
        .with_delivery_mode(2)
        .with_message_id("poison-1".into())
        .with_expiration("600000".into());
    // UNB names someone else: refused (HUB201).
    publish(
        &pch,
        &settings,
        &interchange("KRBROKER01", "USR001"),
        as_partner.clone(),
    )
    .await;
    let dead = settings.dead_inbound_queue();
    let d = next_message(&ch, dead.as_str()).await;
    assert_eq!(header(&d, "x-tradehub-code"), "HUB201");
    assert_eq!(header(&d, "x-tradehub-user"), user);
    assert_eq!(
        d.delivery
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str()),
        Some("poison-1")
    );
    assert!(d.delivery.properties.user_id().is_none());
    assert!(d.delivery.properties.expiration().is_none());
    let ack_queue = settings.ack_queue(&user);
    let answer = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(header(&answer, "x-tradehub-code"), "HUB201");
    // Refused once: one refusal recorded, the consumer still running.
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 1);
    publish(&pch, &settings, &interchange(&user, "USR002"), as_partner).await;
    let ok = next_message(&ch, ack_queue.as_str()).await;
    assert_eq!(header(&ok, "x-tradehub-status"), "validated");
    assert!(!consumer.is_finished());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = partner.close(200, "done".into()).await;
    remove_topology(
        &conn,
        &ch,
        &settings,
        [
            settings.inbound_queue(),
            settings.dead_inbound_queue(),
            settings.ack_queue(&user),
        ],
    )
    .await;
    rabbitmqctl(&["delete_user", &user]);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The first `n` distinct messages of `queue` (by message id) in the order
/// they first arrived, repeats dropped; then the queue is emptied.
async fn distinct(ch: &Channel, queue: &str, n: usize) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    while seen.len() < n {
        let m = next_message(ch, queue).await;
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default();
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    while let Some(m) = ch
        .basic_get(queue.into(), BasicGetOptions::default())
        .await
        .unwrap()
    {
        let id = m
            .delivery
            .properties
            .message_id()
            .as_ref()
            .map(|s| s.to_string());
        assert!(
            id.is_some_and(|id| seen.contains(&id)),
            "an unexpected message"
        );
        m.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
    seen
}

/// The outbox against a broker that declines some messages: a queue at its
/// length limit that rejects publishes (negative confirms) and an exchange
/// that does not exist (the broker closes the channel). The rest flows on
/// in order; the declined messages wait, and those behind them to the same
/// destination wait too; the message the broker keeps rejecting is parked
/// after `max_attempts`; once the queue has room again the waiting ones are
/// published, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn declined_outbox_messages_wait_or_are_parked_and_the_rest_flows() {
    use tradehub::hub::outbox::{self, RelaySettings};
    use tradehub::store::OutboxMessage;
    let Some(conn) = broker().await else {
        return;
    };
    let (dir, store, _intake, settings) = embedded_hub("guest").await;
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    let full = format!("{}full", settings.prefix);
    let open = format!("{}open", settings.prefix);
    let declare = |name: String, limited: bool| {
        let ch = ch.clone();
        let exchange = settings.permits_exchange();
        async move {
            let mut args = FieldTable::default();
            if limited {
                args.insert("x-max-length".into(), AMQPValue::LongLongInt(0));
                args.insert(
                    "x-overflow".into(),
                    AMQPValue::LongString("reject-publish".into()),
                );
            }
            ch.queue_declare(name.as_str().into(), QueueDeclareOptions::default(), args)
                .await
                .unwrap();
            let key = if name.ends_with("full") {
                "permit.FULL"
            } else {
                "permit.OPEN"
            };
            ch.queue_bind(
                name.as_str().into(),
                exchange,
                key.into(),
                Default::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        }
    };
    declare(full.clone(), true).await;
    declare(open.clone(), false).await;

    let message = |exchange: &str, key: &str, id: &str| OutboxMessage {
        exchange: exchange.into(),
        routing_key: key.into(),
        message_id: id.into(),
        content_type: "text/plain".into(),
        payload: id.as_bytes().to_vec(),
        correlation_id: None,
    };
    let permits = "tradehub.permits";
    store
        .enqueue_outbox(
            &[
                message(permits, "permit.FULL", "full-1"),
                message(permits, "permit.OPEN", "open-1"),
                message("tradehub.nosuch", "k", "bad-1"),
                message(permits, "permit.FULL", "full-2"),
                message(permits, "permit.OPEN", "open-2"),
            ],
            Timestamp::now(),
        )
        .await
        .unwrap();
    let publisher = amqp::OutboxPublisher::new(settings.clone());
    let relay = RelaySettings {
        max_attempts: 2,
        ..RelaySettings::default()
    };

    // The open destination gets both of its messages, in order. (A
    // message pipelined in the batch may arrive twice: the broker closing
    // the channel over the bad publish loses confirms not yet sent, and
    // publishing is at least once; consumers drop repeats by message id.)
    assert_eq!(
        outbox::drain_with(&store, &publisher, &relay)
            .await
            .unwrap(),
        2
    );
    assert_eq!(distinct(&ch, &open, 2).await, ["open-1", "open-2"]);
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.backlog, counts.waiting, counts.parked), (3, 2, 0));
    let problems = store.outbox_problems(10).await.unwrap();
    let ids: Vec<&str> = problems.iter().map(|p| p.message_id.as_str()).collect();
    assert_eq!(ids, ["full-1", "bad-1"], "full-2 waits without an attempt");
    assert!(
        problems
            .iter()
            .all(|p| p.attempts == 1 && p.retry_at.is_some())
    );
    assert!(
        problems[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("negative confirm"),
        "{problems:?}"
    );
    assert!(
        problems[1]
            .last_error
            .as_deref()
            .unwrap()
            .contains("NOT_FOUND")
            || problems[1]
                .last_error
                .as_deref()
                .unwrap()
                .contains("not found"),
        "{problems:?}"
    );
    // Nothing is due before the pause (1 to 2 s after the first attempt).
    assert_eq!(
        outbox::drain_with(&store, &publisher, &relay)
            .await
            .unwrap(),
        0
    );

    // The second attempt: the queue is still full; the missing exchange
    // has had its two attempts, so its message is parked.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(
        outbox::drain_with(&store, &publisher, &relay)
            .await
            .unwrap(),
        0
    );
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.backlog, counts.waiting, counts.parked), (2, 1, 1));
    let problems = store.outbox_problems(10).await.unwrap();
    let bad = problems.iter().find(|p| p.message_id == "bad-1").unwrap();
    assert_eq!(bad.attempts, 2);
    assert!(bad.parked_at.is_some() && bad.retry_at.is_none());
    let waiting = problems.iter().find(|p| p.message_id == "full-1").unwrap();
    assert_eq!(waiting.attempts, 2);

    // The queue has room again; the operator retries the waiting message
    // at once: both of its destination's messages go, in order. The
    // parked one stays parked.
    ch.queue_delete(full.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    declare(full.clone(), false).await;
    assert_eq!(store.retry_outbox(Some(&[waiting.seq])).await.unwrap(), 1);
    assert_eq!(
        outbox::drain_with(&store, &publisher, &relay)
            .await
            .unwrap(),
        2
    );
    assert_eq!(distinct(&ch, &full, 2).await, ["full-1", "full-2"]);
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.backlog, counts.waiting, counts.parked), (0, 0, 1));

    remove_topology(
        &conn,
        &ch,
        &settings,
        [
            full.as_str().into(),
            open.as_str().into(),
            settings.inbound_queue(),
            settings.dead_inbound_queue(),
        ],
    )
    .await;
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A connection the broker closes (as when it restarts: `rabbitmqctl
/// close_connection`, CONNECTION_FORCED) is the broker being away, not the
/// message's fault. Seen before the relay claims rows, it reconnects at
/// once; closed after the claim, the publish fails as such (no attempt
/// counted, nothing parked), and the next one reconnects and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_the_broker_closes_is_not_the_messages_fault() {
    use tradehub::hub::outbox::{Publish, RelayError};
    use tradehub::store::{OutboxMessage, PendingMessage};
    let Some(conn) = broker().await else {
        return;
    };
    let mut settings = AmqpSettings::new(amqp_url());
    settings.prefix = format!("t{}.", uuid::Uuid::now_v7().simple());
    let ch = conn.create_channel().await.unwrap();
    amqp::declare_topology(&ch, &settings).await.unwrap();
    let publisher = amqp::OutboxPublisher::new(settings.clone());
    let pending = |id: &str| PendingMessage {
        seq: 1,
        created_at: "2026-11-27T00:00:00Z".into(),
        attempts: 1,
        message: OutboxMessage {
            exchange: "tradehub.events".into(),
            routing_key: "test.closed".into(),
            message_id: id.into(),
            content_type: "text/plain".into(),
            payload: b"x".to_vec(),
            correlation_id: None,
        },
    };
    publisher.publish(&pending("m-1")).await.unwrap();

    // The relay's connection, by its name, closed by the broker: the
    // relay asks whether it is ready before it claims rows, and reconnects
    // then, so that the rows it claims go out.
    let tag = settings.prefix.trim_end_matches('.').to_owned();
    if !close_relay_connection(&tag).await {
        return;
    }
    publisher.ready().await.unwrap();
    publisher.publish(&pending("m-2")).await.unwrap();

    // Closed between the claim and the publish: the broker away.
    assert!(close_relay_connection(&tag).await);
    match publisher.publish(&pending("m-3")).await {
        Err(RelayError::Publish(_)) => {}
        other => panic!("not the broker away: {other:?}"),
    }
    publisher.publish(&pending("m-4")).await.unwrap();
    // The relay declared the whole topology, inbound queues too.
    remove_topology(
        &conn,
        &ch,
        &settings,
        [settings.inbound_queue(), settings.dead_inbound_queue()],
    )
    .await;
}

/// Has the broker close the outbox relay's connection whose client
/// properties hold `tag` (as when it restarts: CONNECTION_FORCED), and
/// gives the client a moment to see it. False (skip) when rabbitmqctl
/// cannot be run outside CI.
async fn close_relay_connection(tag: &str) -> bool {
    let out = std::process::Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "pid",
            "client_properties",
            "--no-table-headers",
            "-q",
        ])
        .output();
    let listed = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            assert!(
                !common::ci(),
                "rabbitmqctl is needed under CI=true: {other:?}"
            );
            eprintln!("skipping: rabbitmqctl not usable");
            return false;
        }
    };
    let pid = listed
        .lines()
        .find(|l| l.contains("tradehub outbox relay") && l.contains(tag))
        .and_then(|l| l.split('\t').next())
        .unwrap_or_else(|| panic!("the relay's connection is not listed: {listed}"))
        .to_owned();
    assert!(rabbitmqctl(&[
        "close_connection",
        &pid,
        "broker restarting (test)"
    ]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    true
}

/// A broker that takes the connection and never answers does not hold the
/// AMQP intake: setting up gives up after the connect timeout and the
/// consumer tries again (it used to wait on the first connection for good,
/// not ready and never retrying).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_answers_is_tried_again() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = accepted.clone();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            open.push(connection);
        }
    });
    let (dir, store, intake, _) = embedded_hub("guest").await;
    let mut settings = AmqpSettings::new(format!("amqp://guest:guest@{addr}/%2f"));
    settings.connect_timeout = Duration::from_millis(500);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(amqp::run(intake.clone(), settings, stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while accepted.load(std::sync::atomic::Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never tried again"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(intake.broker().status(), Some(false), "not ready meanwhile");
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    held.abort();
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}
