//! The hub's HTTP intake over real TCP, on the embedded store (SQLite in a
//! temporary directory) and on the machine's PostgreSQL: durable 202 with
//! CONTRL, duplicates, wrong sender, authentication, size limit, status
//! reads, the append-only trail and concurrent redelivery.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use common::{fixture, request};
use tradehub::edifact::Limits;
use tradehub::hub::{Intake, Submission, new_token};
use tradehub::store::{Store, Table};
use tradehub::timestamp::Timestamp;
use tradehub::transport::http::{self, HttpSettings};

struct Hub {
    addr: SocketAddr,
    store: Store,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    broker: String,
    other: String,
}

async fn start(url: &str) -> Hub {
    let store = Store::open(url).await.unwrap();
    let (broker, hash) = new_token().unwrap();
    store
        .add_partner(
            "KRBROKER01",
            "Hanbit Customs Brokers",
            &hash,
            Timestamp::now(),
        )
        .await
        .unwrap();
    let (other, hash) = new_token().unwrap();
    store
        .add_partner("OTHERBROKER", "Other Broker", &hash, Timestamp::now())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let intake = Intake::new(store.clone(), Limits::default());
    let settings = HttpSettings {
        max_body_bytes: 64 * 1024,
        ..HttpSettings::default()
    };
    let task = tokio::spawn(http::serve(listener, intake, settings, async move {
        let _ = stopped.await;
    }));
    Hub {
        addr,
        store,
        stop,
        task,
        broker,
        other,
    }
}

/// Submits `bytes` as the broker: stored (202) as rejected, its first
/// issue `code`; the answer and its CONTRL.
async fn submit_rejected(
    addr: SocketAddr,
    hub: &Hub,
    bytes: &[u8],
    code: &str,
) -> (serde_json::Value, String) {
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), bytes).await;
    assert_eq!(r.status, 202);
    let answer = r.json();
    assert_eq!(answer["interchange"]["status"], "rejected");
    assert_eq!(answer["interchange"]["issues"][0]["code"], code);
    let ack = answer["interchange"]["acknowledgement"]
        .as_str()
        .unwrap()
        .to_owned();
    (answer, ack)
}

async fn scenario(url: &str) {
    let hub = start(url).await;
    let addr = hub.addr;
    let good = fixture("ok/cusdec-d96b-unoc.edi");

    // Health.
    assert_eq!(
        request(addr, "GET", "/healthz", None, b"").await.status,
        200
    );
    assert_eq!(request(addr, "GET", "/readyz", None, b"").await.status, 200);

    // Authentication.
    let r = request(addr, "POST", "/v1/interchanges", None, &good).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        request(addr, "POST", "/v1/interchanges", Some("th_wrong"), &good)
            .await
            .status,
        401
    );

    // A valid interchange: 202 after the commit, with an accepting CONTRL.
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), &good).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    let id = body["interchange"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        r.header("location"),
        Some(format!("/v1/interchanges/{id}").as_str())
    );
    assert_eq!(body["duplicate"], false);
    assert_eq!(body["interchange"]["status"], "validated");
    assert_eq!(body["interchange"]["message_count"], 2);
    let ack = body["interchange"]["acknowledgement"].as_str().unwrap();
    assert!(
        ack.contains("UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+7'"),
        "{ack}"
    );
    assert_eq!(
        hub.store.raw(&id).await.unwrap().unwrap(),
        good,
        "raw bytes kept exactly"
    );

    // The same bytes again: the original answer, nothing new.
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), &good).await;
    assert_eq!(r.status, 200);
    let again = r.json();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["interchange"]["id"], id.as_str());
    assert_eq!(
        again["interchange"]["acknowledgement"],
        body["interchange"]["acknowledgement"]
    );
    assert_eq!(hub.store.count(Table::Interchanges).await.unwrap(), 1);

    // Other bytes with the same sender and control reference: refused, 26.
    let clash = fixture("err/unt-count.edi");
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), &clash).await;
    assert_eq!(r.status, 409);
    let p = r.json();
    assert_eq!(p["code"], "E0026");
    assert_eq!(p["original"], id.as_str());
    assert!(
        p["acknowledgement"]
            .as_str()
            .unwrap()
            .contains("UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+4+26+UNB+6'"),
        "{p}"
    );
    assert_eq!(hub.store.count(Table::Interchanges).await.unwrap(), 1);
    // The refusal's record keeps the CONTRL sent, as an interchange's
    // record keeps its answer (it was stored nowhere).
    let refusals = hub.store.refusals("KRBROKER01", 1).await.unwrap();
    assert_eq!(refusals[0].0, "E0026");
    let sent = p["acknowledgement"].as_str().unwrap().trim_end();
    assert!(
        refusals[0]
            .1
            .ends_with(&format!("; over HTTP; answered with {sent}")),
        "{refusals:?}"
    );
    // A clash whose UNB has another error too (a date that does not
    // exist): the UCI, which holds one error, names the 26 the hub refused
    // it for, as the 409 does (it named the date).
    let misdated = String::from_utf8(good.clone())
        .unwrap()
        .replace("261124:1030", "261399:1030")
        .into_bytes();
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(&hub.broker),
        &misdated,
    )
    .await;
    assert_eq!(r.status, 409);
    let ack = r.json()["acknowledgement"].as_str().unwrap().to_owned();
    assert!(
        ack.contains("UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+4+26+UNB+6'"),
        "{ack}"
    );

    // An invalid interchange with a new reference: stored as rejected, and
    // the CONTRL says where.
    let bad = String::from_utf8(clash)
        .unwrap()
        .replace("20261124001", "20261124777")
        .into_bytes();
    let (rejected, ack) = submit_rejected(addr, &hub, &bad, "E0029").await;
    assert_eq!(rejected["interchange"]["error_count"], 1);
    assert!(ack.contains("UCM+1+CUSDEC:D:96B:UN+4+29+UNT+2'"), "{ack}");

    // A structure error (letters in an n..18 amount, D.96B CUSDEC) is found
    // by the hub's validation and located in the CONTRL: UCS with the
    // message segment, UCD with code 37 at position 2 (0098 counts the tag as 1),
    // component 2.
    let wrong_amount = String::from_utf8(good.clone())
        .unwrap()
        .replace("20261124001", "20261124778")
        .replace("MOA+39:125000.50:USD", "MOA+39:12X000.50:USD")
        .into_bytes();
    let (_, ack) = submit_rejected(addr, &hub, &wrong_amount, "E0037").await;
    assert!(ack.contains("UCS+9'UCD+37+2:2'"), "{ack}");

    // An interchange addressed to another party: rejected (0085 code 7 at
    // UNB S003), answered by the hub in its own name, never as that party.
    let misaddressed = String::from_utf8(good.clone())
        .unwrap()
        .replace("20261124001", "20261124779")
        .replace("+TRADEHUB:ZZZ+", "+OTHERHUB:ZZZ+")
        .into_bytes();
    let (_, ack) = submit_rejected(addr, &hub, &misaddressed, "E0007").await;
    assert!(ack.contains("UNB+UNOC:3+TRADEHUB+KRBROKER01:ZZZ+"), "{ack}");
    assert!(ack.contains("+OTHERHUB:ZZZ+4+7+UNB+4:1'"), "{ack}");
    assert!(!ack.contains("UNB+UNOC:3+OTHERHUB"), "{ack}");

    // Another partner may not submit as KRBROKER01, nor read its interchanges.
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.other), &good).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["code"], "HUB201");
    let r = request(
        addr,
        "GET",
        &format!("/v1/interchanges/{id}"),
        Some(&hub.other),
        b"",
    )
    .await;
    assert_eq!(r.status, 404);
    let refusals = hub.store.refusals("OTHERBROKER", 10).await.unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].0, "HUB201");
    // An account acting for an agency files nothing, not even under its
    // own name (nor may a customs officer): 403, HUB203, recorded, and no
    // interchange is stored.
    let stored = hub.store.count(Table::Interchanges).await.unwrap();
    for (account, acts_for) in [("KMDIA-DESK", "KMDIA"), ("OFFICER1", "CUSTOMS")] {
        let (token, hash) = new_token().unwrap();
        hub.store
            .add_partner(account, account, &hash, Timestamp::now())
            .await
            .unwrap();
        hub.store
            .set_partner_agency(account, Some(acts_for))
            .await
            .unwrap();
        let own = String::from_utf8(good.clone())
            .unwrap()
            .replace("KRBROKER01", account)
            .into_bytes();
        let r = request(addr, "POST", "/v1/interchanges", Some(&token), &own).await;
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["code"], "HUB203");
        assert_eq!(r.json()["type"], "urn:tradehub:problem:not-a-sender");
        let refusals = hub.store.refusals(account, 10).await.unwrap();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].0, "HUB203");
    }
    assert_eq!(hub.store.count(Table::Interchanges).await.unwrap(), stored);

    // Neither EDIFACT nor XML.
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(&hub.broker),
        b"just some text",
    )
    .await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "EDI104");
    // EDIFACT saved as UTF-16 (a byte order mark first) is not taken for
    // XML: the refusal names the encoding. An empty body says so.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "UNB+UNOC:3+KRBROKER01+KRCUSTOMS+260101:1200+1'"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), &utf16).await;
    assert_eq!(r.status, 415);
    assert_eq!(r.json()["code"], "EDI104");
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("UTF-16LE"), "{detail}");
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), b"").await;
    assert_eq!(r.status, 415);
    let detail = r.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(detail.contains("input is empty"), "{detail}");
    // XML that is not a valid WCO declaration: stored as rejected and
    // answered with a WCO RES 03.
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(&hub.broker),
        b"<Declaration/>",
    )
    .await;
    assert_eq!(r.status, 202);
    let body = r.json();
    assert_eq!(body["interchange"]["format"], "xml");
    assert_eq!(body["interchange"]["status"], "rejected");
    let res = body["interchange"]["acknowledgement"].as_str().unwrap();
    assert!(
        res.contains("<res:FunctionCode>03</res:FunctionCode>"),
        "{res}"
    );

    // Over the body limit.
    let big = vec![b'A'; 100 * 1024];
    let r = request(addr, "POST", "/v1/interchanges", Some(&hub.broker), &big).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let problem: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(problem["code"], "HUB413", "{problem}");
    assert_eq!(problem["limit"], 64 * 1024, "{problem}");
    // Refused on its declared length, before its body was read.
    let said = "the request body of 102400 bytes (Content-Length) exceeds the limit of 65536 \
                bytes; not read";
    assert_eq!(problem["detail"], said, "{problem}");
    let refusals = hub.store.refusals("KRBROKER01", 10).await.unwrap();
    assert_eq!(
        refusals
            .first()
            .map(|(code, detail)| (code.as_str(), detail.as_str())),
        Some(("HUB413", said)),
        "{refusals:?}"
    );
    // The sender reads its own refusals over the API, newest first; the
    // other partner sees none of them.
    let r = request(addr, "GET", "/v1/refusals?limit=5", Some(&hub.broker), b"").await;
    assert_eq!(r.status, 200);
    let listed = r.json()["refusals"].clone();
    assert_eq!(listed[0]["code"], "HUB413", "{listed}");
    assert_eq!(listed[0]["detail"], said, "{listed}");
    assert_eq!(listed[0]["size_bytes"], 100 * 1024, "{listed}");
    assert_eq!(listed[0]["partner_id"], "KRBROKER01", "{listed}");
    assert!(listed.as_array().unwrap().len() <= 5);
    let r = request(addr, "GET", "/v1/refusals", Some(&hub.other), b"").await;
    assert_eq!(r.status, 200);
    assert!(
        r.json()["refusals"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["partner_id"] != "KRBROKER01"),
        "{}",
        r.json()
    );
    let r = request(addr, "GET", "/v1/refusals?limt=5", Some(&hub.broker), b"").await;
    assert_eq!(r.status, 400);

    // Every error is problem details: a path the API does not have (404),
    // a method a path does not take (405), a query not understood (400).
    for (method, path, status) in [
        ("GET", "/v1/nothing-here", 404),
        ("DELETE", "/v1/interchanges", 405),
        ("GET", "/v1/agencies/KMDIA/inbox?limit=abc", 400),
    ] {
        let r = request(addr, method, path, Some(&hub.broker), b"").await;
        assert_eq!(r.status, status, "{method} {path}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{method} {path}"
        );
    }
    // A request target or headers over the limits: 414 and 431, with
    // problem details too.
    let start = format!(
        "Host: {addr}\r\nConnection: close\r\nAuthorization: Bearer {}",
        hub.broker
    );
    let long = format!(
        "GET /v1/declarations?status={} HTTP/1.1\r\n{start}",
        "a".repeat(9000)
    );
    let many = format!(
        "GET /v1/declarations HTTP/1.1\r\n{start}{}",
        (0..150)
            .map(|i| format!("\r\nX-Note-{i}: n"))
            .collect::<String>()
    );
    let large = format!(
        "GET /v1/declarations HTTP/1.1\r\n{start}\r\nX-A: {a}\r\nX-B: {a}",
        a = "v".repeat(40 * 1024)
    );
    for (head, status, slug) in [
        (long, 414, "uri-too-long"),
        (many, 431, "headers-too-large"),
        (large, 431, "headers-too-large"),
    ] {
        let r = common::request_raw(addr, &head).await;
        assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["type"], format!("urn:tradehub:problem:{slug}"));
    }
    // The authorization scheme is case-insensitive (RFC 9110).
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "GET /v1/interchanges/{id} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
             authorization: bearer {}\r\n\r\n",
            hub.broker
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    }

    // Status with the audit trail.
    let r = request(
        addr,
        "GET",
        &format!("/v1/interchanges/{id}"),
        Some(&hub.broker),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let status = r.json();
    let kinds: Vec<&str> = status["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "received",
            "validated",
            "duplicate_received",
            "duplicate_reference_refused",
            "duplicate_reference_refused"
        ]
    );
    // Each names the channel it came by.
    for event in &status["events"].as_array().unwrap()[..3] {
        let detail = event["detail"].as_str().unwrap();
        assert!(
            event["kind"] == "validated" || detail.ends_with("; over HTTP"),
            "{event}"
        );
    }
    // The store's triggers refuse both, with their own message.
    let before = hub.store.count(Table::Events).await.unwrap();
    assert!(before > 0);
    for delete in [false, true] {
        let refused = hub.store.try_rewrite_events(delete).await.unwrap_err();
        assert!(
            refused.to_string().contains("events are append-only"),
            "delete {delete}: {refused}"
        );
    }
    assert_eq!(hub.store.count(Table::Events).await.unwrap(), before);

    // Concurrent redelivery of a new interchange: exactly one is stored.
    let fresh = String::from_utf8(good.clone())
        .unwrap()
        .replace("20261124001", "20261124555")
        .into_bytes();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (body, token) = (fresh.clone(), hub.broker.clone());
        tasks.push(tokio::spawn(async move {
            request(addr, "POST", "/v1/interchanges", Some(&token), &body).await
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap().status);
    }
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 200, 202],
        "one stored, seven duplicates"
    );
    assert_eq!(hub.store.count(Table::Interchanges).await.unwrap(), 6);

    // Metrics count every submission received: 23 (the 401 stops before
    // that; the 413 is received and refused unread, with no intake time).
    let r = request(addr, "GET", "/metrics", None, b"").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "tradehub_interchanges_received_total 23\n",
        "tradehub_interchanges_validated_total 2\n",
        "tradehub_interchanges_rejected_total 4\n",
        "tradehub_duplicates_total 8\n",
        "tradehub_refused_total 9\n",
        "tradehub_submit_seconds_count 22\n",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }

    // A replaced token (`partner token`): the new one is the partner's, the
    // old one nobody's; an unknown partner changes nothing. (Checked in the
    // store: the running hub keeps a checked token for 30 s; tests/cli_hub.rs
    // checks a fresh hub refuses the old one.)
    let (_, replacement_hash) = new_token().unwrap();
    assert!(
        hub.store
            .set_partner_token("OTHERBROKER", &replacement_hash)
            .await
            .unwrap()
    );
    assert!(
        !hub.store
            .set_partner_token("NOBODY", &replacement_hash)
            .await
            .unwrap()
    );
    let owner = |hash: String| {
        let store = hub.store.clone();
        async move { store.partner_by_token(&hash).await.unwrap().map(|p| p.id) }
    };
    let old_hash = tradehub::hub::sha256_hex(hub.other.as_bytes());
    assert_eq!(owner(old_hash).await, None, "the old token");
    assert_eq!(
        owner(replacement_hash).await.as_deref(),
        Some("OTHERBROKER"),
        "the new token"
    );

    // Two messages under one reference (UNH 0062): refused with a CONTRL
    // that says where (0085 code 26), stored, never a store error.
    let reused = String::from_utf8(good.clone())
        .unwrap()
        .replace("20261124001", "20261124009")
        .replacen("UNH+2+", "UNH+1+", 1)
        .replacen("UNT+24+2'", "UNT+24+1'", 1);
    let reused_answer = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(&hub.broker),
        reused.as_bytes(),
    )
    .await;
    assert_eq!(
        reused_answer.status,
        202,
        "{}",
        String::from_utf8_lossy(&reused_answer.body)
    );
    let reused_body = reused_answer.json();
    assert_eq!(
        reused_body["interchange"]["status"], "rejected",
        "{reused_body}"
    );
    let ack = reused_body["interchange"]["acknowledgement"]
        .as_str()
        .unwrap();
    assert!(ack.contains("UCM+1+CUSDEC:D:96B:UN+4+26"), "{ack}");

    hub.stop.send(()).unwrap();
    hub.task.await.unwrap().unwrap();
    hub.store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_sqlite_intake() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-serve-{}", uuid::Uuid::now_v7().simple()));
    let url = Store::embedded_url(&dir).unwrap();
    scenario(&url).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_intake() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    scenario(&url).await;
    common::drop_pg_database(&name).await;
}

/// An embedded hub served with `settings` on a port of its own, with the
/// broker KRBROKER01 registered (its token in `token`).
struct Served {
    dir: std::path::PathBuf,
    store: Store,
    addr: SocketAddr,
    token: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn served(settings: HttpSettings, max_messages: usize) -> Served {
    let dir = std::env::temp_dir().join(format!("tradehub-http-{}", uuid::Uuid::now_v7().simple()));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    let (token, hash) = new_token().unwrap();
    store
        .add_partner("KRBROKER01", "Broker", &hash, Timestamp::now())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let intake = Intake::new(store.clone(), Limits::default()).with_max_messages(max_messages);
    let task = tokio::spawn(http::serve(listener, intake, settings, async move {
        let _ = stopped.await;
    }));
    Served {
        dir,
        store,
        addr,
        token,
        stop,
        task,
    }
}

impl Served {
    /// Stops the server (it must stop within 10 s) and removes its store.
    async fn shut(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
            .await
            .expect("the server did not stop")
            .unwrap()
            .unwrap();
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The HTTP401 refusals recorded so far, waiting up to 10 s for `count`.
async fn refused_401(store: &Store, count: usize) -> Vec<tradehub::store::StoredRefusal> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows: Vec<_> = store
            .refusal_list(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.code == "HTTP401")
            .collect();
        if rows.len() >= count || std::time::Instant::now() > deadline {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Requests without a partner's token are answered 401 and recorded: a
/// tally per client address as each window ends (how many, with or
/// without a token, when, the last request), counted on /metrics, not a
/// row per request; those of a window cut short by shutdown are recorded
/// as the server stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_401_are_recorded_per_address() {
    let hub = served(
        HttpSettings {
            unauthorized_window: std::time::Duration::from_millis(500),
            ..HttpSettings::default()
        },
        1000,
    )
    .await;
    let addr = hub.addr;
    let good = fixture("ok/cusdec-d96b-unoc.edi");
    for _ in 0..3 {
        let r = request(addr, "POST", "/v1/interchanges", None, &good).await;
        assert_eq!(r.status, 401);
    }
    for _ in 0..2 {
        let r = request(addr, "GET", "/v1/declarations", Some("th_wrong"), b"").await;
        assert_eq!(r.status, 401);
    }
    // A partner's requests are not tallied.
    let r = request(addr, "GET", "/v1/declarations", Some(&hub.token), b"").await;
    assert_eq!(r.status, 200);
    let rows = refused_401(&hub.store, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row.partner_id, None);
    assert_eq!(row.size_bytes, -1);
    assert!(
        // `at` a second, or `between` two (the store keeps seconds).
        row.detail
            .starts_with("5 requests refused (401) from 127.0.0.1 at ")
            || row
                .detail
                .starts_with("5 requests refused (401) from 127.0.0.1 between "),
        "{row:?}"
    );
    assert!(
        row.detail.ends_with(
            ": 3 without an API token, 2 with a token that is no partner's; the last: GET /v1/declarations"
        ),
        "{row:?}"
    );
    let metrics = request(addr, "GET", "/metrics", None, b"").await;
    let metrics = String::from_utf8_lossy(&metrics.body);
    assert!(
        metrics.contains("\ntradehub_http_unauthorized_total 5\n"),
        "{metrics}"
    );
    // The tally started over: nothing more is recorded while nothing more
    // is refused.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let later = hub.store.refusal_list(None, 100).await.unwrap();
    assert_eq!(later.len(), 1, "{later:?}");
    hub.shut().await;

    // A window cut short by shutdown.
    let hub = served(HttpSettings::default(), 1000).await;
    let r = request(hub.addr, "GET", "/v1/refusals", Some("th_wrong"), b"").await;
    assert_eq!(r.status, 401);
    let Served {
        dir,
        store,
        stop,
        task,
        ..
    } = hub;
    // Not before the window (a minute) ends, or the server stops.
    let early = store.refusal_list(None, 10).await.unwrap();
    assert!(early.iter().all(|r| r.code != "HTTP401"), "{early:?}");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let rows = refused_401(&store, 1).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(
        rows[0]
            .detail
            .starts_with("1 request refused (401) from 127.0.0.1 at "),
        "{rows:?}"
    );
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hub limited to one request at a time and two seconds per request:
/// while a client uploads slowly (a body announced, a part sent, then
/// nothing), a second request is answered 503 with Retry-After at once,
/// the probes still answer, and the stalled upload ends with 408, after
/// which the slot is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_beyond_the_limit_are_shed_and_stalled_uploads_time_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = served(
        HttpSettings {
            max_body_bytes: 64 * 1024,
            max_in_flight: 1,
            request_timeout: std::time::Duration::from_secs(2),
            ..HttpSettings::default()
        },
        tradehub::hub::DEFAULT_MAX_MESSAGES,
    )
    .await;
    let (addr, token) = (hub.addr, hub.token.clone());

    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    let sent = "UNA:+.? 'UNB+UNOC:3+";
    let head = format!(
        "POST /v1/interchanges HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1000\r\n\r\n{sent}"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let busy = request(addr, "POST", "/v1/interchanges", Some(&token), b"x").await;
    assert_eq!(busy.status, 503);
    assert_eq!(busy.header("retry-after"), Some("1"));
    assert_eq!(busy.json()["type"], "urn:tradehub:problem:busy");
    assert_eq!(
        request(addr, "GET", "/healthz", None, b"").await.status,
        200
    );

    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the stalled upload was not answered");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("urn:tradehub:problem:timeout"), "{answer}");
    // The submission cut off is recorded, with its sender and the size of
    // what came of it (not the 1000 bytes it declared).
    let refusals = hub
        .store
        .refusal_list(Some("KRBROKER01"), 10)
        .await
        .unwrap();
    let cut_off = refusals.iter().find(|r| r.code == "HTTP408");
    let cut_off = cut_off.unwrap_or_else(|| panic!("{refusals:?}"));
    assert_eq!(cut_off.size_bytes, sent.len() as i64, "{cut_off:?}");
    assert!(
        cut_off.detail.ends_with(&format!(
            "; {} bytes received of the 1000 declared (Content-Length)",
            sent.len()
        )),
        "{cut_off:?}"
    );

    let good = fixture("ok/cusdec-d96b-unoc.edi");
    let r = request(addr, "POST", "/v1/interchanges", Some(&token), &good).await;
    assert_eq!(r.status, 202);

    // A body declared over the limit is refused at once, unread: no
    // `100 Continue` invites it, no timeout is waited for, and the refusal
    // is HUB413 with the declared size (it was a 100, then a 408).
    // The first bytes answered to a submission that declares 200,000
    // bytes and waits for `100 Continue`, with the header `auth`.
    let declared_large = |auth: String| async move {
        let mut large = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /v1/interchanges HTTP/1.1\r\nHost: hub\r\n{auth}\
             Content-Length: 200000\r\nExpect: 100-continue\r\n\r\n"
        );
        large.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(
            std::time::Duration::from_millis(1500),
            large.read(&mut answer),
        )
        .await
        .expect("answered before the request timeout")
        .unwrap();
        String::from_utf8_lossy(&answer[..n]).into_owned()
    };
    let answer = declared_large(format!("Authorization: Bearer {token}\r\n")).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let refusals = hub.store.refusals("KRBROKER01", 10).await.unwrap();
    assert_eq!(
        refusals.first().map(|(code, _)| code.as_str()),
        Some("HUB413"),
        "{refusals:?}"
    );
    assert!(refusals[0].1.contains("200000 bytes"), "{refusals:?}");
    // Without a valid token the same request is a 401, and nothing is
    // recorded: a header alone cannot fill the refusals table.
    let before = hub.store.count(Table::Refusals).await.unwrap();
    for auth in ["", "Authorization: Bearer bogus\r\n"] {
        let answer = declared_large(auth.to_owned()).await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    assert_eq!(hub.store.count(Table::Refusals).await.unwrap(), before);

    hub.shut().await;
}

/// What the hub answered on `client` until it closed (10 s at most).
async fn answer_of(client: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// An upload whose client stops sending and closes its side before the
/// declared length is refused (400, `bad-body`) and recorded as HTTP400
/// with its sender and the bytes that came, not the length it declared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_closed_early_is_recorded_with_what_came() {
    use tokio::io::AsyncWriteExt;
    let limit = 64 * 1024;
    let hub = served(
        HttpSettings {
            max_body_bytes: limit,
            ..HttpSettings::default()
        },
        tradehub::hub::DEFAULT_MAX_MESSAGES,
    )
    .await;
    let sent = "UNA:+.? 'UNB+UNOC:3+KRBROKER01+TRADEHUB+";
    let mut client = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let head = format!(
        "POST /v1/interchanges HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 5000\r\n\r\n{sent}",
        hub.token
    );
    client.write_all(head.as_bytes()).await.unwrap();
    client.shutdown().await.unwrap();
    let answer = answer_of(&mut client).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    // Recorded once the handler has seen the body end (the answer may
    // not reach a client that closed its side).
    let mut refusals = Vec::new();
    for _ in 0..100 {
        refusals = hub
            .store
            .refusal_list(Some("KRBROKER01"), 10)
            .await
            .unwrap();
        if !refusals.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].code, "HTTP400", "{refusals:?}");
    assert_eq!(refusals[0].size_bytes, sent.len() as i64, "{refusals:?}");
    assert!(
        refusals[0].detail.ends_with(&format!(
            "; {} bytes received of the 5000 declared (Content-Length)",
            sent.len()
        )),
        "{refusals:?}"
    );

    // Sent in chunks, with no length declared, past the limit: 413, and
    // HUB413 recorded with at least the limit's worth received.
    let mut client = tokio::net::TcpStream::connect(hub.addr).await.unwrap();
    let head = format!(
        "POST /v1/interchanges HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer {}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        hub.token
    );
    client.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, "X".repeat(16 * 1024));
    for _ in 0..(limit / (16 * 1024) + 4) {
        if client.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = client.write_all(b"0\r\n\r\n").await;
    let answer = answer_of(&mut client).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let refusals = hub
        .store
        .refusal_list(Some("KRBROKER01"), 10)
        .await
        .unwrap();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    assert_eq!(refusals[0].code, "HUB413", "{refusals:?}");
    assert!(refusals[0].size_bytes >= limit as i64, "{refusals:?}");
    hub.shut().await;
}

/// A hub that serves two connections at once and gives each a second to
/// send its headers: a client that trickles a request's headers and one
/// that connects and sends nothing are both disconnected, and a third
/// client, which waited in the listen backlog while they held both
/// connection slots, is answered afterwards. The slots are free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_headers_and_silent_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hub = served(
        HttpSettings {
            header_timeout: std::time::Duration::from_secs(1),
            max_connections: 2,
            ..HttpSettings::default()
        },
        tradehub::hub::DEFAULT_MAX_MESSAGES,
    )
    .await;
    let addr = hub.addr;

    let started = std::time::Instant::now();
    let mut trickling = tokio::net::TcpStream::connect(addr).await.unwrap();
    trickling
        .write_all(b"POST /v1/interchanges HTTP/1.1\r\nHost: hub\r\n")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // Both slots are taken: this one waits until a slot is free.
    let waiting = tokio::spawn(async move { request(addr, "GET", "/healthz", None, b"").await });
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "served while both slots were taken");
    // The trickling client goes on sending a header line now and then; its
    // headers never complete in time.
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let _ = trickling.write_all(b"X-Slow: 1\r\n").await;
    }
    for (name, stream) in [("trickling", &mut trickling), ("silent", &mut silent)] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut rest),
        )
        .await;
        assert!(closed.is_ok(), "the {name} connection was kept open");
    }
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the waiting client was never served")
        .unwrap();
    assert_eq!(answered.status, 200);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "served before a slot was free"
    );
    // Both slots are free again: two connections held open at once are
    // served.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: hub\r\n\r\n")
            .await
            .unwrap();
        held.push(c);
    }
    for c in &mut held {
        let mut head = [0u8; 12];
        tokio::time::timeout(std::time::Duration::from_secs(5), c.read_exact(&mut head))
            .await
            .expect("a slot was not given back")
            .unwrap();
        assert_eq!(&head, b"HTTP/1.1 200");
    }
    drop(held);
    hub.shut().await;
}

/// A client that sends requests and never reads the responses holds its
/// connection only until a write has waited `request_timeout`: then the
/// connection is dropped and its slot serves the next client.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_never_reads_loses_its_connection() {
    use tokio::io::AsyncWriteExt;
    let hub = served(
        HttpSettings {
            request_timeout: std::time::Duration::from_secs(1),
            max_connections: 1,
            ..HttpSettings::default()
        },
        tradehub::hub::DEFAULT_MAX_MESSAGES,
    )
    .await;
    let addr = hub.addr;

    // Small buffers so that the responses fill them quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut deaf = socket.connect(addr).await.unwrap();
    let pipelined = "GET /v1/openapi.json HTTP/1.1\r\nHost: hub\r\n\r\n".repeat(400);
    deaf.write_all(pipelined.as_bytes()).await.unwrap();

    let waiting = tokio::spawn(async move { request(addr, "GET", "/healthz", None, b"").await });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "served while the only slot was held"
    );
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .expect("the deaf client kept its connection")
        .unwrap();
    assert_eq!(answered.status, 200);
    drop(deaf);
    hub.shut().await;
}

/// An interchange with more messages than the hub takes in one is refused
/// before any is mapped: 413 `too-many-messages` (HUB414) with the count
/// and the limit, recorded as a refusal, nothing stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interchange_with_too_many_messages_is_refused() {
    let hub = served(HttpSettings::default(), 1).await;
    let (addr, token, store) = (hub.addr, hub.token.clone(), hub.store.clone());
    // The fixture holds two CUSDECs.
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(&token),
        &fixture("ok/cusdec-d96b-unoc.edi"),
    )
    .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let problem = r.json();
    assert_eq!(problem["type"], "urn:tradehub:problem:too-many-messages");
    assert_eq!(problem["code"], "HUB414");
    assert_eq!(
        (problem["messages"].as_u64(), problem["limit"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 0);
    assert_eq!(store.count(Table::Declarations).await.unwrap(), 0);
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 1);
    hub.shut().await;
}

/// An interchange taken in before the limit was lowered is, delivered
/// again, a duplicate answered with its original acknowledgement, not a
/// refusal.
/// The store at `url` with the broker KRBROKER01 registered, and that
/// partner.
async fn with_broker(url: &str) -> (Store, tradehub::store::Partner) {
    let store = Store::open(url).await.unwrap();
    store
        .add_partner("KRBROKER01", "Broker", "hash", Timestamp::now())
        .await
        .unwrap();
    let partner = store.partner("KRBROKER01").await.unwrap().unwrap();
    (store, partner)
}

#[tokio::test]
async fn a_redelivery_over_a_lowered_message_limit_is_a_duplicate() {
    let dir =
        std::env::temp_dir().join(format!("tradehub-limit-{}", uuid::Uuid::now_v7().simple()));
    let (store, partner) = with_broker(&Store::embedded_url(&dir).unwrap()).await;
    let bytes = fixture("ok/cusdec-d96b-unoc.edi");
    let before = Intake::new(store.clone(), Limits::default()).with_max_messages(10);
    let Submission::Stored(first) = before.submit(&partner, bytes.clone()).await.unwrap() else {
        panic!("the first delivery is stored");
    };
    let after = Intake::new(store.clone(), Limits::default()).with_max_messages(1);
    match after.submit(&partner, bytes).await.unwrap() {
        Submission::Duplicate(again) => {
            assert_eq!(again.interchange.id, first.interchange.id);
            assert_eq!(
                again.interchange.acknowledgement,
                first.interchange.acknowledgement
            );
        }
        other => panic!("not a duplicate: {other:?}"),
    }
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 1);
    assert_eq!(store.count(Table::Refusals).await.unwrap(), 0);
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A partner suspended after an interchange was taken: a redelivery of
/// those same bytes (a drop-folder file the hub committed and had not yet
/// moved when it stopped, an answer lost on the way) gets the original
/// answer; anything else is refused (HUB204).
#[tokio::test]
async fn a_suspended_partner_redelivering_gets_its_original_answer() {
    let dir = std::env::temp_dir().join(format!("tradehub-susp-{}", uuid::Uuid::now_v7().simple()));
    let (store, partner) = with_broker(&Store::embedded_url(&dir).unwrap()).await;
    let intake = Intake::new(store.clone(), Limits::default());
    let bytes = fixture("ok/cusdec-d96b-unoc.edi");
    let Submission::Stored(first) = intake.submit(&partner, bytes.clone()).await.unwrap() else {
        panic!("the first delivery is stored");
    };
    assert!(
        store
            .set_partner_suspension("KRBROKER01", Some("licence withdrawn"), Timestamp::now())
            .await
            .unwrap()
    );
    let suspended = store.partner("KRBROKER01").await.unwrap().unwrap();
    match intake.submit(&suspended, bytes.clone()).await.unwrap() {
        Submission::Duplicate(again) => {
            assert_eq!(again.interchange.id, first.interchange.id);
            assert_eq!(
                again.interchange.acknowledgement,
                first.interchange.acknowledgement
            );
        }
        other => panic!("not its original answer: {other:?}"),
    }
    let other = String::from_utf8(bytes)
        .unwrap()
        .replace("20261124001", "20261124077");
    match intake.submit(&suspended, other.into_bytes()).await.unwrap() {
        Submission::Refused(refused) => assert_eq!(refused.code.as_str(), "HUB204"),
        other => panic!("not refused: {other:?}"),
    }
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 1);
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A sender that repeats itself without end (the same bytes, or other
/// bytes under the same reference) cannot grow the original interchange's
/// trail without bound: the first `MAX_REPEAT_EVENTS` repeats of each kind
/// are recorded one by one, then one event says that further ones are
/// not, and the trail stops growing; every repeat is still counted, with
/// its first and last time (`repeat_counts`), also when taken at once.
/// Each repeat is still answered as before.
async fn repeats_are_recorded_up_to_a_bound(url: &str) {
    use tradehub::hub::MAX_REPEAT_EVENTS;
    let (store, partner) = with_broker(url).await;
    let intake = Intake::new(store.clone(), Limits::default());
    let bytes = fixture("ok/cusdec-d96b-unoc.edi");
    let Submission::Stored(first) = intake.submit(&partner, bytes.clone()).await.unwrap() else {
        panic!("the first delivery is stored");
    };
    let other = String::from_utf8(bytes.clone())
        .unwrap()
        .replace("UNS+S'", "UNS+S'\n");
    assert_ne!(other.as_bytes(), &bytes[..]);
    let repeats = usize::try_from(MAX_REPEAT_EVENTS).unwrap() + 5;
    for _ in 0..repeats {
        match intake.submit(&partner, bytes.clone()).await.unwrap() {
            Submission::Duplicate(again) => {
                assert_eq!(again.interchange.id, first.interchange.id)
            }
            other => panic!("not a duplicate: {other:?}"),
        }
    }
    for _ in 0..repeats {
        match intake
            .submit(&partner, other.clone().into_bytes())
            .await
            .unwrap()
        {
            Submission::Refused(refused) => assert_eq!(refused.code.as_str(), "E0026"),
            other => panic!("not refused: {other:?}"),
        }
    }
    let events = store.events(&first.interchange.id).await.unwrap();
    for kind in ["duplicate_received", "duplicate_reference_refused"] {
        let of: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.detail.as_str())
            .collect();
        assert_eq!(of.len() as i64, MAX_REPEAT_EVENTS + 1, "{kind}");
        assert!(
            of.last().unwrap().contains("not recorded one by one"),
            "{kind}: {:?}",
            of.last()
        );
        assert!(
            of.iter().rev().skip(1).all(|d| !d.contains("not recorded")),
            "{kind}"
        );
    }
    let counted = store.repeat_counts(&first.interchange.id).await.unwrap();
    let kinds: Vec<(&str, i64)> = counted.iter().map(|c| (c.kind.as_str(), c.count)).collect();
    assert_eq!(
        kinds,
        [
            ("duplicate_received", repeats as i64),
            ("duplicate_reference_refused", repeats as i64)
        ]
    );
    for c in &counted {
        let of: Vec<&str> = events
            .iter()
            .filter(|e| e.kind == c.kind)
            .map(|e| e.at.as_str())
            .collect();
        assert_eq!(Some(&c.first_at.as_str()), of.first(), "{c:?}");
        assert!(c.last_at.as_str() >= *of.last().unwrap(), "{c:?}");
    }

    // Repeats taken at once (8 at a time, as several connections or hubs
    // take them) keep to the same bound: the count and the insert are one
    // step, so no two read the same count.
    let second = String::from_utf8(bytes)
        .unwrap()
        .replace("20261124001", "20261124002")
        .into_bytes();
    let Submission::Stored(first) = intake.submit(&partner, second.clone()).await.unwrap() else {
        panic!("the second interchange is stored");
    };
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (intake, partner, second) = (intake.clone(), partner.clone(), second.clone());
            tokio::spawn(async move {
                for _ in 0..20 {
                    let outcome = intake.submit(&partner, second.clone()).await.unwrap();
                    assert!(matches!(outcome, Submission::Duplicate(_)), "{outcome:?}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let events = store.events(&first.interchange.id).await.unwrap();
    let repeats = events
        .iter()
        .filter(|e| e.kind == "duplicate_received")
        .count();
    assert_eq!(repeats as i64, MAX_REPEAT_EVENTS + 1);
    let counted = store.repeat_counts(&first.interchange.id).await.unwrap();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].count, 8 * 20, "{counted:?}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeats_are_recorded_up_to_a_bound_on_sqlite() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-repeats-{}",
        uuid::Uuid::now_v7().simple()
    ));
    repeats_are_recorded_up_to_a_bound(&Store::embedded_url(&dir).unwrap()).await;
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A store upgraded from a version that had no `repeat_counts` gets its
/// counts from the repeats its trail recorded, and counts on from there.
#[tokio::test]
async fn repeat_counts_of_an_upgraded_store_start_from_its_trail() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-repeat-upgrade-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let url = Store::embedded_url(&dir).unwrap();
    let (store, partner) = with_broker(&url).await;
    let intake = Intake::new(store.clone(), Limits::default());
    let bytes = fixture("ok/cusdec-d96b-unoc.edi");
    let Submission::Stored(first) = intake.submit(&partner, bytes.clone()).await.unwrap() else {
        panic!("the first delivery is stored");
    };
    for _ in 0..3 {
        intake.submit(&partner, bytes.clone()).await.unwrap();
    }
    let id = first.interchange.id;
    let events: Vec<String> = store
        .events(&id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "duplicate_received")
        .map(|e| e.at)
        .collect();
    assert_eq!(events.len(), 3);
    store.close().await;
    // The store as the version before left it: no table, no migration.
    let pool = sqlx::AnyPool::connect(&url).await.unwrap();
    for sql in [
        "DROP TABLE repeat_counts",
        "DELETE FROM _sqlx_migrations WHERE version = 19",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::open(&url).await.unwrap();
    let counted = store.repeat_counts(&id).await.unwrap();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert_eq!(counted[0].kind, "duplicate_received");
    assert_eq!(counted[0].count, 3);
    assert_eq!(counted[0].first_at, events[0]);
    assert_eq!(counted[0].last_at, events[2]);
    let intake = Intake::new(store.clone(), Limits::default());
    intake.submit(&partner, bytes).await.unwrap();
    assert_eq!(store.repeat_counts(&id).await.unwrap()[0].count, 4);
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repeats_are_recorded_up_to_a_bound_on_postgres() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    repeats_are_recorded_up_to_a_bound(&url).await;
    common::drop_pg_database(&name).await;
}

/// `/readyz` asks the store for a write: a database that answers queries
/// but refuses writes (a read-only standby after a failover) is not ready,
/// and ready again once it takes writes. Before, a `SELECT 1` said ready
/// while every submission got 503.
#[tokio::test]
async fn readiness_needs_a_store_that_takes_writes() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let hub = start(&url).await;
    let addr = hub.addr;
    let ready_is = |want: u16| async move {
        // Sessions the setting ended are replaced one request at a time.
        for _ in 0..50 {
            let r = request(addr, "GET", "/readyz", None, b"").await;
            if r.status == want {
                return r;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("/readyz never answered {want}");
    };
    ready_is(200).await;
    common::pg_read_only(&name, true).await;
    let r = ready_is(503).await;
    assert_eq!(r.json()["store"], "down", "{}", r.json());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("read-only"),
        "{}",
        r.json()
    );
    common::pg_read_only(&name, false).await;
    ready_is(200).await;
    hub.stop.send(()).unwrap();
    hub.task.await.unwrap().unwrap();
    common::drop_pg_database(&name).await;
}

/// A UNA whose separators cannot be separators leaves the UNB unreadable:
/// the interchange is rejected for its UNA (CONTRL code 20 at UNA) under
/// the authenticated partner, not refused as another sender's (the UNB
/// read with the wrong separators named "KRBROKER0"); a UNA cut short is
/// refused as no interchange with its own error named.
#[tokio::test]
async fn a_broken_una_is_answered_for_what_it_is() {
    let dir = std::env::temp_dir().join(format!("tradehub-una-{}", uuid::Uuid::now_v7().simple()));
    let (store, partner) = with_broker(&Store::embedded_url(&dir).unwrap()).await;
    let intake = Intake::new(store.clone(), Limits::default());
    let digit = b"UNA:+.? 1UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+R1'\
        UNH+1+CUSDEC:D:96B:UN'BGM+929+LRNR1+9'UNT+3+1'UNZ+1+R1'";
    match intake.submit(&partner, digit.to_vec()).await.unwrap() {
        Submission::Stored(r) => {
            assert_eq!(r.interchange.status, "rejected");
            assert_eq!(r.interchange.sender, "KRBROKER01");
            assert!(
                r.interchange.acknowledgement.contains("+4+20+UNA'"),
                "{}",
                r.interchange.acknowledgement
            );
            assert_eq!(r.issues[0].code.as_str(), "E0020");
        }
        other => panic!("not stored as rejected: {other:?}"),
    }
    // One character advised for two purposes: the UNB read with it named
    // another recipient ("TRADEHUB?:ZZZ"), and the interchange was
    // rejected as misaddressed (code 7), its CONTRL addressed to a sender
    // id holding a colon. Its UNA is what is wrong, and the CONTRL goes to
    // the authenticated partner.
    let same = b"UNA++.? 'UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+R4'\
        UNH+1+CUSDEC:D:96B:UN'BGM+929+LRNR4+9'UNT+3+1'UNZ+1+R4'";
    let hub = Intake::new(store.clone(), Limits::default())
        .with_clearance(tradehub::hub::clearance::Clearance::default());
    match hub.submit(&partner, same.to_vec()).await.unwrap() {
        Submission::Stored(r) => {
            let ack = &r.interchange.acknowledgement;
            assert_eq!(r.interchange.status, "rejected");
            assert!(ack.contains("+4+20+UNA"), "{ack}");
            assert!(!ack.contains("ZZZ"), "{ack}");
            assert_eq!(r.issues[0].code.as_str(), "E0020", "{:?}", r.issues);
            // Its control reference cannot be read either (a party's id
            // stood in its place): not echoed, not kept.
            assert!(ack.contains("UCI+UNKNOWN+"), "{ack}");
            assert_eq!(r.interchange.control_reference, None);
        }
        other => panic!("not stored as rejected: {other:?}"),
    }
    // The sender's next interchange with the same UNA, another reference
    // and other content, is rejected for its UNA too, not refused as a
    // reuse of the reference misread the first time (E0026).
    let again = b"UNA++.? 'UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1031+R5'\
        UNH+1+CUSDEC:D:96B:UN'BGM+929+LRNR5+9'UNT+3+1'UNZ+1+R5'";
    match hub.submit(&partner, again.to_vec()).await.unwrap() {
        Submission::Stored(r) => {
            assert_eq!(r.interchange.status, "rejected");
            assert_eq!(r.issues[0].code.as_str(), "E0020", "{:?}", r.issues);
        }
        other => panic!("not stored as rejected: {other:?}"),
    }
    // A bad decimal mark leaves the separators as advised: the UNB reads
    // as written, and another sender's is refused as such.
    let other = b"UNA:+X? 'UNB+UNOC:3+OTHERSENDER:ZZZ+TRADEHUB:ZZZ+261124:1030+R2'\
        UNH+1+CUSDEC:D:96B:UN'BGM+929+LRNR2+9'UNT+3+1'UNZ+1+R2'";
    match intake.submit(&partner, other.to_vec()).await.unwrap() {
        Submission::Refused(refused) => assert_eq!(refused.code.as_str(), "HUB201"),
        other => panic!("not refused as another sender's: {other:?}"),
    }
    let twice = b"UNA:+.? 'UNA:+.? 'UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+R3'\
        UNH+1+CUSDEC:D:96B:UN'BGM+929+LRNR3+9'UNT+3+1'UNZ+1+R3'";
    match intake.submit(&partner, twice.to_vec()).await.unwrap() {
        Submission::Refused(refused) => {
            assert_eq!(refused.code.as_str(), "EDI104");
            assert!(
                refused.detail.contains("a second UNA"),
                "{}",
                refused.detail
            );
        }
        other => panic!("not refused: {other:?}"),
    }
    match intake.submit(&partner, b"UNA:+.".to_vec()).await.unwrap() {
        Submission::Refused(refused) => {
            assert_eq!(refused.code.as_str(), "EDI104");
            assert!(refused.detail.contains("E0001"), "{}", refused.detail);
        }
        other => panic!("not refused: {other:?}"),
    }
    store.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
