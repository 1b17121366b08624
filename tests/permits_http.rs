//! The clearance API over real HTTP on the embedded store: a broker's
//! declaration routed to an agency, the agency's inbox and decision
//! (`GET /v1/agencies/{code}/inbox`, `POST /v1/permits/{id}/decision`), the
//! declaration read back with its permits, trail and responses, and an
//! officer's release, each refused to accounts without the role.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{HttpHub, request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agencies_answer_and_officers_release_over_http() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("kmdia-desk", Some("KMDIA")),
        ("mfds-desk", Some("MFDS")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));

    // A medical device import: KMDIA must confirm it.
    let body = common::cusdec("KRBROKER01", "HTTP0001", "LRN-HTTP-1", "9", &["901890"]);
    let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), &body).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let interchange = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
    let r = request(
        addr,
        "GET",
        &format!("/v1/interchanges/{interchange}"),
        token("KRBROKER01"),
        b"",
    )
    .await;
    let declarations = r.json()["declarations"].clone();
    assert_eq!(declarations.as_array().unwrap().len(), 1, "{declarations}");
    assert_eq!(declarations[0]["status"], "awaiting_permits");
    let declaration = declarations[0]["id"].as_str().unwrap().to_owned();

    // The inbox is KMDIA's own: MFDS and the broker may not read it.
    let inbox = "/v1/agencies/KMDIA/inbox";
    assert_eq!(
        request(addr, "GET", inbox, token("mfds-desk"), b"")
            .await
            .status,
        403
    );
    assert_eq!(
        request(addr, "GET", inbox, token("KRBROKER01"), b"")
            .await
            .status,
        403
    );
    // An officer reads any agency's inbox; a code of no agency is a 404,
    // not an empty page.
    let r = request(addr, "GET", inbox, token("officer"), b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["permits"].as_array().map(Vec::len), Some(1));
    let r = request(
        addr,
        "GET",
        "/v1/agencies/KMDIAX/inbox",
        token("officer"),
        b"",
    )
    .await;
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.json()["detail"],
        "no agency \"KMDIAX\" in the agency catalogue"
    );
    let r = request(addr, "GET", inbox, token("kmdia-desk"), b"").await;
    assert_eq!(r.status, 200);
    let permits = r.json()["permits"].clone();
    assert_eq!(permits.as_array().unwrap().len(), 1, "{permits}");
    assert_eq!(permits[0]["request"]["declaration"]["lrn"], "LRN-HTTP-1");
    let permit = permits[0]["permit"]["id"].as_str().unwrap().to_owned();
    let decide = format!("/v1/permits/{permit}/decision");

    // Decisions: only KMDIA's account, only a well-formed body, only once.
    let granted = br#"{"outcome": "granted", "reasons": ["registered device"]}"#;
    // Another agency is told "no permit", as for an id that does not
    // exist: it cannot learn which permits exist. A broker is refused.
    let r = request(addr, "POST", &decide, token("mfds-desk"), granted).await;
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
    let unknown = "0190f000-0000-7000-8000-000000000000";
    let other = request(
        addr,
        "POST",
        &format!("/v1/permits/{unknown}/decision"),
        token("mfds-desk"),
        granted,
    )
    .await;
    assert_eq!(other.status, 404);
    let mut seen = r.json();
    seen["detail"] = serde_json::Value::Null;
    let mut unseen = other.json();
    unseen["detail"] = serde_json::Value::Null;
    assert_eq!(seen, unseen, "same answer for another agency's permit");
    assert_eq!(r.json()["detail"], format!("no permit {permit}"));
    let r = request(addr, "POST", &decide, token("KRBROKER01"), granted).await;
    assert_eq!(r.status, 403);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("does not act for an agency"),
        "{}",
        r.json()
    );
    let r = request(
        addr,
        "POST",
        &decide,
        token("kmdia-desk"),
        br#"{"outcome": "maybe"}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    let r = request(
        addr,
        "POST",
        "/v1/permits/no-such-permit/decision",
        token("kmdia-desk"),
        granted,
    )
    .await;
    assert_eq!(r.status, 404);
    let r = request(addr, "POST", &decide, token("kmdia-desk"), granted).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declaration"]["status"], "cleared");
    // The very answer again (a resend after a lost reply): taken as the
    // first was, nothing changes.
    let r = request(addr, "POST", &decide, token("kmdia-desk"), granted).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["repeated"], true);
    assert_eq!(r.json()["recorded"], false);
    assert_eq!(r.json()["declaration"]["status"], "cleared");
    // Another answer: the first stands.
    let refused = br#"{"outcome": "refused", "reasons": ["not registered"]}"#;
    let r = request(addr, "POST", &decide, token("kmdia-desk"), refused).await;
    assert_eq!(r.status, 409);
    // RFC 9457: `status` is the HTTP status; the permit's is its own member.
    assert_eq!(
        (
            r.json()["status"].clone(),
            r.json()["permit_status"].clone()
        ),
        (serde_json::json!(409), serde_json::json!("granted"))
    );
    assert_eq!(r.json()["code"], "HUB304");
    // Every answer not taken is on record, under the account that sent
    // it, with the code its AMQP dead letter would carry (another
    // agency's account is told "no permit", and recorded as whose it is).
    let mut recorded: Vec<(String, String)> = Vec::new();
    for account in ["kmdia-desk", "mfds-desk", "KRBROKER01"] {
        for (code, detail) in hub.store.refusals(account, 10).await.unwrap() {
            recorded.push((format!("{account} {code}"), detail));
        }
    }
    recorded.sort();
    let codes: Vec<&str> = recorded.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        codes,
        [
            "KRBROKER01 HUB201",
            "kmdia-desk HUB303",
            "kmdia-desk HUB303",
            "kmdia-desk HUB304",
            "mfds-desk HUB303",
            "mfds-desk HUB303"
        ],
        "{recorded:?}"
    );
    let detail = |code: &str| {
        recorded
            .iter()
            .find(|(c, _)| c == code)
            .map(|(_, d)| d.as_str())
            .unwrap()
    };
    assert!(
        detail("kmdia-desk HUB304").contains("granted"),
        "{recorded:?}"
    );
    // What MFDS's account may read of its answer to KMDIA's permit is what
    // it was told: no permit of that id, as for one that does not exist.
    assert!(
        recorded
            .iter()
            .filter(|(c, _)| c == "mfds-desk HUB303")
            .all(|(_, d)| d.starts_with("no permit ") && !d.contains("KMDIA")),
        "{recorded:?}"
    );
    let r = request(addr, "GET", "/v1/refusals", token("mfds-desk"), b"").await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 200, "{text}");
    assert!(
        !text.contains("KMDIA") && !text.contains("HUB201"),
        "{text}"
    );

    // The sender reads its declaration with the whole story; another
    // broker's account would not find it, the agency that answered does.
    let path = format!("/v1/declarations/{declaration}");
    let r = request(addr, "GET", &path, token("KRBROKER01"), b"").await;
    assert_eq!(r.status, 200);
    let d = r.json();
    assert_eq!(d["declaration"]["status"], "cleared");
    assert_eq!(d["canonical"]["lrn"], "LRN-HTTP-1");
    assert_eq!(d["permits"][0]["status"], "granted");
    let statuses: Vec<&str> = d["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["awaiting_permits", "cleared"]);
    // The answer names the account that gave it.
    assert!(
        d["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "permit_granted"
                && e["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with("KMDIA answered (account kmdia-desk) permit ")),
        "{d}"
    );
    assert_eq!(
        request(addr, "GET", &path, token("kmdia-desk"), b"")
            .await
            .status,
        200
    );
    assert_eq!(
        request(addr, "GET", &path, token("mfds-desk"), b"")
            .await
            .status,
        404
    );

    // Listing: the broker's own, filtered by status.
    let r = request(
        addr,
        "GET",
        "/v1/declarations?status=cleared",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert_eq!(r.json()["declarations"].as_array().unwrap().len(), 1);
    let r = request(
        addr,
        "GET",
        "/v1/declarations?status=held",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert!(r.json()["declarations"].as_array().unwrap().is_empty());
    // A status no declaration can have (a typo) is not an empty list.
    let r = request(
        addr,
        "GET",
        "/v1/declarations?status=Cleared",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("awaiting_permits"),
        "{}",
        r.json()
    );
    // A query that cannot be read: a problem document, as every error.
    let r = request(
        addr,
        "GET",
        "/v1/declarations?limit=many",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-query");
    // A misspelt field is refused, not ignored (which would list every
    // declaration as if filtered).
    let r = request(
        addr,
        "GET",
        "/v1/declarations?satus=held",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-query");
    assert!(
        r.json()["detail"].as_str().unwrap().contains("satus"),
        "{}",
        r.json()
    );
    // A form left blank filters nothing.
    let r = request(
        addr,
        "GET",
        "/v1/declarations?status=&limit=",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declarations"].as_array().unwrap().len(), 1);
    // A path that is not UTF-8 once decoded: a problem document too.
    for path in [
        "/v1/declarations/%FF",
        "/v1/interchanges/%C3",
        "/v1/cargo/%FF",
    ] {
        let r = request(addr, "GET", path, token("KRBROKER01"), b"").await;
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-path");
    }

    // Release: officers only, once.
    let release = format!("/v1/declarations/{declaration}/release");
    let r = request(addr, "POST", &release, token("KRBROKER01"), b"").await;
    assert_eq!(r.status, 403);
    let r = request(
        addr,
        "POST",
        &release,
        token("officer"),
        br#"{"note": "gate out"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declaration"]["status"], "released");
    // Sent again (a lost reply, a 408): answered as done, nothing added.
    let r = request(addr, "POST", &release, token("officer"), b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["repeated"], true);
    assert_eq!(r.json()["declaration"]["status"], "released");
    let r = request(
        addr,
        "GET",
        &format!("/v1/declarations/{declaration}"),
        token("officer"),
        b"",
    )
    .await;
    let releases = r.json()["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "released")
        .count();
    assert_eq!(releases, 1, "{}", r.json()["events"]);

    // The workflow shows in the metrics.
    let r = request(addr, "GET", "/metrics", None, b"").await;
    let text = String::from_utf8(r.body).unwrap();
    for line in [
        "tradehub_declarations_accepted_total 1\n",
        "tradehub_permit_decisions_total 1\n",
        "tradehub_permits_pending 0\n",
        "# TYPE tradehub_outbox_backlog gauge\n",
    ] {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }

    hub.stop().await;
}

/// A submission that the request timeout cuts off after its body was read
/// is answered 408, yet finishes what it started: stored, and counted as
/// validated with its latency (the handler's future was dropped, and with
/// it the counters and the relay's wake-up). A resend is a duplicate.
/// A suspended partner acts no more: a broker's interchange, an agency's
/// decision and an officer's release are each refused 403 with HUB204 and
/// the reason, recorded in the refusals, and change nothing; reading what
/// is there stays allowed. (There was no way to stop a partner short of
/// replacing its token, which an agency's other desks share.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_partner_submits_decides_and_releases_nothing() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("KRBROKER02", None),
        ("kmdia-desk", Some("KMDIA")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    let suspend = |id: &'static str| {
        let store = hub.store.clone();
        async move {
            assert!(
                store
                    .set_partner_suspension(
                        id,
                        Some("licence withdrawn"),
                        tradehub::timestamp::Timestamp::now()
                    )
                    .await
                    .unwrap()
            );
        }
    };
    let body = common::cusdec("KRBROKER01", "SUSP0001", "LRN-SUSP-1", "9", &["901890"]);
    let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), &body).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let interchanges = hub
        .store
        .count(tradehub::store::Table::Interchanges)
        .await
        .unwrap();

    // Suspended before their first request (the hub keeps a partner it has
    // looked up for 30 s).
    for id in ["KRBROKER02", "kmdia-desk", "officer"] {
        suspend(id).await;
    }
    let other = common::cusdec("KRBROKER02", "SUSP0002", "LRN-SUSP-2", "9", &["901890"]);
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        token("KRBROKER02"),
        &other,
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "HUB204");
    assert_eq!(r.json()["type"], "urn:tradehub:problem:partner-suspended");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("licence withdrawn"), "{detail}");
    assert_eq!(
        hub.store
            .count(tradehub::store::Table::Interchanges)
            .await
            .unwrap(),
        interchanges
    );

    // The agency still reads its inbox, and answers nothing.
    let r = request(
        addr,
        "GET",
        "/v1/agencies/KMDIA/inbox",
        token("kmdia-desk"),
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let permit = r.json()["permits"][0]["permit"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let decide = format!("/v1/permits/{permit}/decision");
    let r = request(
        addr,
        "POST",
        &decide,
        token("kmdia-desk"),
        br#"{"outcome": "granted"}"#,
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "HUB204");
    let r = request(
        addr,
        "GET",
        "/v1/agencies/KMDIA/inbox",
        token("kmdia-desk"),
        b"",
    )
    .await;
    assert_eq!(r.json()["permits"][0]["permit"]["status"], "pending");

    // Nor does a suspended officer release.
    let r = request(addr, "GET", "/v1/declarations", token("KRBROKER01"), b"").await;
    let declaration = r.json()["declarations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = request(
        addr,
        "POST",
        &format!("/v1/declarations/{declaration}/release"),
        token("officer"),
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "HUB204");

    for id in ["KRBROKER02", "kmdia-desk"] {
        let refusals = hub.store.refusals(id, 10).await.unwrap();
        assert_eq!(refusals.len(), 1, "{id}: {refusals:?}");
        assert_eq!(refusals[0].0, "HUB204", "{id}");
        assert!(refusals[0].1.contains("licence withdrawn"), "{refusals:?}");
    }
    hub.stop().await;
}

/// A connection to the hub's embedded store holding its write lock (a
/// transaction begun IMMEDIATE) until it commits: the store busy.
async fn hold_the_store(hub: &HttpHub) -> sqlx::SqliteConnection {
    use sqlx::Connection;
    let url = tradehub::store::Store::embedded_url(&hub.dir).unwrap();
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submission_cut_off_after_its_body_was_read_is_counted() {
    let hub = HttpHub::builder()
        .partner("KRBROKER01", "KRBROKER01", None)
        .settings(tradehub::transport::http::HttpSettings {
            request_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .start()
        .await;
    let addr = hub.addr;
    let token = Some(hub.token("KRBROKER01"));
    // Another writer holds the database for 3 s.
    let mut blocker = hold_the_store(&hub).await;
    let body = common::cusdec("KRBROKER01", "SLOW0001", "LRN-SLOW-1", "9", &["847989"]);
    let r = request(addr, "POST", "/v1/interchanges", token, &body).await;
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    drop(blocker);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let metrics = loop {
        let text =
            String::from_utf8(request(addr, "GET", "/metrics", None, b"").await.body).unwrap();
        if text.contains("tradehub_interchanges_validated_total 1\n")
            || tokio::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        metrics.contains("tradehub_interchanges_validated_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tradehub_submit_seconds_count 1\n"),
        "{metrics}"
    );
    let again = request(addr, "POST", "/v1/interchanges", token, &body).await;
    assert_eq!(
        again.status,
        200,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    hub.stop().await;
}

/// A release the request timeout cuts off (the store busy) still happens
/// once the store is free, the relay woken for the sender's answer, as a
/// submission or decision does; its resend is answered as repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_cut_off_by_the_timeout_still_happens() {
    let hub = HttpHub::builder()
        .partner("KRBROKER01", "KRBROKER01", None)
        .partner("officer", "officer", Some("CUSTOMS"))
        .settings(tradehub::transport::http::HttpSettings {
            request_timeout: std::time::Duration::from_secs(1),
            ..Default::default()
        })
        .start()
        .await;
    let addr = hub.addr;
    let body = common::cusdec("KRBROKER01", "REL0001", "LRN-REL-1", "9", &["847989"]);
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(hub.token("KRBROKER01")),
        &body,
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let interchange = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
    let declaration = hub.store.declarations_of(&interchange).await.unwrap()[0].clone();
    assert_eq!(declaration.status, "cleared");
    // Another writer holds the database for 2 s.
    let mut blocker = hold_the_store(&hub).await;
    let path = format!("/v1/declarations/{}/release", declaration.id);
    let r = request(addr, "POST", &path, Some(hub.token("officer")), b"").await;
    assert_eq!(r.status, 408, "{}", String::from_utf8_lossy(&r.body));
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    sqlx::query("COMMIT").execute(&mut blocker).await.unwrap();
    drop(blocker);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let d = hub
            .store
            .declaration(&declaration.id)
            .await
            .unwrap()
            .unwrap();
        if d.status == "released" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not released: {}",
            d.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let again = request(addr, "POST", &path, Some(hub.token("officer")), b"").await;
    assert_eq!(
        again.status,
        200,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(again.json()["repeated"], true);
    hub.stop().await;
}

/// An agency's answer too large to read is refused 413 and on record
/// (HUB413), as an interchange too large is; it was refused unrecorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_large_is_recorded() {
    let hub = HttpHub::builder()
        .partner("kmdia-desk", "KMDIA desk", Some("KMDIA"))
        .settings(tradehub::transport::http::HttpSettings {
            max_body_bytes: 1024,
            ..Default::default()
        })
        .start()
        .await;
    let big = format!(
        r#"{{"outcome": "refused", "reasons": ["{}"]}}"#,
        "x".repeat(4096)
    );
    let r = request(
        hub.addr,
        "POST",
        "/v1/permits/P-1/decision",
        Some(hub.token("kmdia-desk")),
        big.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 413, "{}", String::from_utf8_lossy(&r.body));
    let recorded = hub.store.refusals("kmdia-desk", 10).await.unwrap();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0].0, "HUB413", "{recorded:?}");
    assert!(recorded[0].1.contains("permit P-1"), "{recorded:?}");
    hub.stop().await;
}

/// Submits a one-item import from KRBROKER01 (control reference and LRN
/// `reference`, goods `hs`) and returns the oldest permit of `agency`'s
/// inbox, read by its `desk` account.
async fn oldest_permit(
    hub: &HttpHub,
    reference: &str,
    hs: &str,
    desk: &str,
    agency: &str,
) -> serde_json::Value {
    let body = common::cusdec("KRBROKER01", reference, reference, "9", &[hs]);
    let r = request(
        hub.addr,
        "POST",
        "/v1/interchanges",
        Some(hub.token("KRBROKER01")),
        &body,
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let path = format!("/v1/agencies/{agency}/inbox");
    let inbox = request(hub.addr, "GET", &path, Some(hub.token(desk)), b"").await;
    inbox.json()["permits"][0]["permit"].clone()
}

/// An agency pages through a long inbox: oldest first, `limit` at a time,
/// each full page giving the id to go on `after`; the last page has no
/// `next`. A permit decided since still serves as the place to go on
/// from; an id that is not a permit of this agency is refused (400), the
/// same way whether it exists elsewhere or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agency_pages_through_its_inbox() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("kmdia-desk", Some("KMDIA")),
        ("mfds-desk", Some("MFDS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    for n in 1..=5 {
        let body = common::cusdec(
            "KRBROKER01",
            &format!("PAGE{n:04}"),
            &format!("LRN-PAGE-{n}"),
            "9",
            &["901890"],
        );
        let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), &body).await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    }
    // Fish: MFDS's.
    let fish = oldest_permit(&hub, "PAGEFISH", "030211", "mfds-desk", "MFDS").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let page = |after: Option<String>| {
        let cursor = after.map(|a| format!("&after={a}")).unwrap_or_default();
        let path = format!("/v1/agencies/KMDIA/inbox?limit=2{cursor}");
        let token = token("kmdia-desk");
        async move { request(addr, "GET", &path, token, b"").await }
    };
    let mut lrns = Vec::new();
    let mut ids = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let r = page(after.clone()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let json = r.json();
        for p in json["permits"].as_array().unwrap() {
            lrns.push(
                p["request"]["declaration"]["lrn"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
            ids.push(p["permit"]["id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match json["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), ids.last().map(String::as_str));
                after = Some(next.to_owned());
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        lrns,
        [
            "LRN-PAGE-1",
            "LRN-PAGE-2",
            "LRN-PAGE-3",
            "LRN-PAGE-4",
            "LRN-PAGE-5"
        ]
    );

    // The second permit decided: the page after it is still the 3rd on.
    let granted = br#"{"outcome": "granted"}"#;
    let decide = format!("/v1/permits/{}/decision", ids[1]);
    let r = request(addr, "POST", &decide, token("kmdia-desk"), granted).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let r = page(Some(ids[1].clone())).await;
    let rest: Vec<String> = r.json()["permits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["permit"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(rest, [ids[2].clone(), ids[3].clone()]);
    // From the start the decided one is gone.
    let r = page(None).await;
    assert_eq!(r.json()["permits"][1]["permit"]["id"], ids[2].as_str());

    // The inbox lists pending permits only: a status filter is refused,
    // not ignored.
    let r = request(
        addr,
        "GET",
        "/v1/agencies/KMDIA/inbox?status=granted",
        token("kmdia-desk"),
        b"",
    )
    .await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.json()["detail"].as_str().unwrap().contains("status"),
        "{}",
        r.json()
    );

    // Not a place in KMDIA's inbox: refused alike.
    let unknown = "0190f000-0000-7000-8000-000000000000".to_owned();
    let mut answers = Vec::new();
    for cursor in [fish, unknown] {
        let r = page(Some(cursor)).await;
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        let mut json = r.json();
        assert_eq!(json["type"], "urn:tradehub:problem:bad-query");
        json["detail"] = serde_json::Value::Null;
        answers.push(json);
    }
    assert_eq!(answers[0], answers[1]);
    hub.stop().await;
}

/// Control characters are refused where they come in, the same on every
/// store (PostgreSQL cannot store U+0000, and answered such requests with
/// a 500 that said the same request would fail again): in a path or query
/// (400 bad-path), in a decision's reasons or conditions (422, nothing
/// recorded) and in a release note (422).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_refused_where_they_come_in() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("kmdia-desk", Some("KMDIA")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    let oldest = oldest_permit(&hub, "CTRL0001", "901890", "kmdia-desk", "KMDIA").await;
    let permit = oldest["id"].as_str().unwrap().to_owned();
    // Not releasable while it waits for its permit.
    let waiting = oldest["declaration_id"].as_str().unwrap().to_owned();
    let early = format!("/v1/declarations/{waiting}/release");
    let r = request(addr, "POST", &early, token("officer"), b"").await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["type"], "urn:tradehub:problem:not-releasable");
    assert_eq!(r.json()["declaration_status"], "awaiting_permits");

    for path in [
        "/v1/declarations/a%00b".to_owned(),
        "/v1/cargo/a%1Fb".to_owned(),
        "/v1/interchanges/%7f".to_owned(),
        format!("/v1/agencies/KMDIA/inbox?after={permit}%00"),
    ] {
        let who = if path.contains("inbox") {
            "kmdia-desk"
        } else {
            "officer"
        };
        let r = request(addr, "GET", &path, token(who), b"").await;
        assert_eq!(
            r.status,
            400,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-path", "{path}");
    }
    let decide = format!("/v1/permits/{permit}/decision");
    for (body, named) in [
        (
            &br#"{"outcome": "granted", "reasons": ["ok", "a\u0000b"]}"#[..],
            "reasons[1]",
        ),
        (
            &br#"{"outcome": "conditional", "conditions": "keep\u0007cold"}"#[..],
            "conditions",
        ),
        // C1 controls and bidirectional overrides too (they were stored
        // and echoed to the trader).
        (
            &br#"{"outcome": "granted", "reasons": ["a\u0085b"]}"#[..],
            "reasons[0]",
        ),
        (
            &br#"{"outcome": "refused", "reasons": ["\u202Eevil"]}"#[..],
            "reasons[0]",
        ),
        // A conditional grant states its conditions (the trader was told
        // "conditions not stated").
        (
            &br#"{"outcome": "conditional", "reasons": ["see letter"]}"#[..],
            "a conditional grant",
        ),
        (
            &br#"{"outcome": "conditional", "conditions": "  "}"#[..],
            "a conditional grant",
        ),
        // An array is not a decision (serde read it field by field, and
        // this was a grant).
        (&br#"["granted"]"#[..], "expected a JSON object"),
    ] {
        let r = request(addr, "POST", &decide, token("kmdia-desk"), body).await;
        assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-decision");
        assert_eq!(r.json()["code"], "HUB303", "{}", r.json());
        assert!(
            r.json()["detail"].as_str().unwrap().starts_with(named),
            "{}",
            r.json()
        );
    }
    // Nothing was recorded: the permit still takes an answer, with tabs
    // and line breaks in its text.
    let r = request(
        addr,
        "POST",
        &decide,
        token("kmdia-desk"),
        br#"{"outcome": "granted", "reasons": ["line one\nline two\tend"]}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let declaration = r.json()["declaration"]["id"].as_str().unwrap().to_owned();
    let release = format!("/v1/declarations/{declaration}/release");
    let r = request(
        addr,
        "POST",
        &release,
        token("officer"),
        br#"{"note": "x\u0000y"}"#,
    )
    .await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-release");
    let r = request(
        addr,
        "POST",
        &release,
        token("officer"),
        br#"{"note": "seen"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    hub.stop().await;
}

/// A passenger list's travellers are screened by the traveller rules:
/// customs officers see the list's lane and who was selected and why; the
/// carrier that sent it sees neither, wherever it looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passenger_lists_are_screened_for_officers_only() {
    let risk = r#"
[[traveller_rule]]
id = "watch-list"
lane = "red"
reason = "named on the watch list"
watch = [{ surname = "smith", birth_date = "1979-03-02" }]

[[traveller_rule]]
id = "uk-documents"
lane = "yellow"
reason = "documents of this issuer are checked"
roles = ["passenger"]
document_issuers = ["GB"]

[[traveller_rule]]
id = "expired-document"
lane = "red"
reason = "travel document expired"
document_expired = true
"#;
    let hub = HttpHub::builder()
        .partner("AIR1", "Airline", None)
        .partner("officer", "Officer", Some("CUSTOMS"))
        .risk(risk)
        .start()
        .await;
    let addr = hub.addr;
    let body = String::from_utf8(common::fixture("ok/paxlst-d02b-iata-references.edi"))
        .unwrap()
        .replace("+DHS:ZZ+", "+TRADEHUB:ZZ+");
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        Some(hub.token("AIR1")),
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let interchange = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
    let r = request(
        addr,
        "GET",
        &format!("/v1/interchanges/{interchange}"),
        Some(hub.token("AIR1")),
        b"",
    )
    .await;
    let seen_by_carrier = r.json()["declarations"][0].clone();
    assert_eq!(seen_by_carrier["status"], "accepted", "{}", r.json());
    assert_eq!(seen_by_carrier["lane"], serde_json::Value::Null);
    let id = seen_by_carrier["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/declarations/{id}");

    // The officer: red (the watch list), two travellers named.
    let r = request(addr, "GET", &path, Some(hub.token("officer")), b"").await;
    assert_eq!(r.status, 200);
    let officer = r.json();
    assert_eq!(officer["declaration"]["lane"], "red", "{officer}");
    let screened: Vec<&str> = officer["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "screened")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        screened,
        vec![
            "red lane: 2 traveller(s) selected; \
             #1 SMITH JANE (yellow): uk-documents: documents of this issuer are checked; \
             #2 SMITH JOHN (red): watch-list: named on the watch list, \
             uk-documents: documents of this issuer are checked"
        ]
    );
    let r = request(
        addr,
        "GET",
        "/v1/declarations?status=accepted",
        Some(hub.token("officer")),
        b"",
    )
    .await;
    assert_eq!(r.json()["declarations"][0]["lane"], "red");

    // The carrier: the same list without lane or screening.
    let r = request(addr, "GET", &path, Some(hub.token("AIR1")), b"").await;
    assert_eq!(r.status, 200);
    let carrier = r.json();
    assert_eq!(carrier["declaration"]["lane"], serde_json::Value::Null);
    let kinds: Vec<&str> = carrier["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        !kinds.is_empty() && !kinds.contains(&"screened"),
        "{kinds:?}"
    );
    assert!(!carrier.to_string().contains("watch-list"), "{carrier}");
    let r = request(
        addr,
        "GET",
        "/v1/declarations",
        Some(hub.token("AIR1")),
        b"",
    )
    .await;
    assert_eq!(r.json()["declarations"][0]["id"], id.as_str());
    assert_eq!(r.json()["declarations"][0]["lane"], serde_json::Value::Null);
    // Nothing of the screening anywhere the carrier can read: not in
    // the metrics either (no token needed there).
    let metrics =
        String::from_utf8(request(addr, "GET", "/metrics", None, b"").await.body).unwrap();
    assert!(
        ["screen", "selected", "lane"]
            .iter()
            .all(|w| !metrics.contains(w)),
        "{metrics}"
    );
    hub.stop().await;
}

/// An agency reads of a declaration it has a permit on what concerns it:
/// its own permit and the declaration's milestones, not another agency's
/// permit, answer or reasons, the risk lane, or the answers sent to the
/// sender (which quote every agency's reasons); nor in the cargo
/// timeline. The sender and customs officers read everything.
#[tokio::test]
async fn an_agency_reads_nothing_of_another_agencys_answer() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("mfds-desk", Some("MFDS")),
        ("apqa-desk", Some("APQA")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    // Beef: MFDS and APQA must both confirm it.
    let body = common::cusdec("KRBROKER01", "HTTP0101", "LRN-BEEF-1", "9", &["020130"]);
    let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), &body).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let mut found = Vec::new();
    for (agency, desk) in [("MFDS", "mfds-desk"), ("APQA", "apqa-desk")] {
        let inbox = format!("/v1/agencies/{agency}/inbox");
        let r = request(addr, "GET", &inbox, token(desk), b"").await;
        assert_eq!(r.status, 200);
        let p = r.json()["permits"][0]["permit"].clone();
        found.push((
            p["id"].as_str().unwrap().to_owned(),
            p["declaration_id"].as_str().unwrap().to_owned(),
        ));
    }
    let [(mfds, declaration), (apqa, _)] = <[_; 2]>::try_from(found).unwrap();
    let secret = "salmonella found in lab sample 7731";
    let refusal = format!(r#"{{"outcome": "refused", "reasons": ["{secret}"]}}"#);
    let r = request(
        addr,
        "POST",
        &format!("/v1/permits/{mfds}/decision"),
        token("mfds-desk"),
        refusal.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Held at the refusal, APQA's answer not waited for: the sender is
    // told now (it was told when the last agency answered, up to a day
    // later), and APQA's permit is withdrawn.
    assert_eq!(r.json()["declaration"]["status"], "held");

    let path = format!("/v1/declarations/{declaration}");
    let r = request(addr, "GET", &path, token("KRBROKER01"), b"").await;
    let d = r.json();
    let answered: Vec<&str> = d["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(answered, ["awaiting_permits", "held"], "{d}");
    let withdrawn = d["permits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == apqa.as_str())
        .unwrap()["status"]
        .clone();
    assert_eq!(withdrawn, "withdrawn", "{d}");
    // APQA is told on its permit queue, and not why.
    let outbox = hub.store.pending_outbox(1000).await.unwrap();
    let notice = outbox
        .iter()
        .find(|m| m.message.message_id == format!("{apqa}/withdrawn"))
        .expect("a withdrawal notice");
    assert_eq!(notice.message.routing_key, "permit.APQA");
    let body = String::from_utf8_lossy(&notice.message.payload).into_owned();
    assert!(
        body.contains("\"permit.withdrawn\"") && !body.contains(secret) && !body.contains("MFDS"),
        "{body}"
    );
    for reader in ["KRBROKER01", "officer"] {
        let r = request(addr, "GET", &path, token(reader), b"").await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            text.contains(secret) && text.contains(&mfds),
            "{reader}: {text}"
        );
        assert!(
            r.json()["declaration"]["lane"].is_string(),
            "{reader}: {text}"
        );
    }
    let r = request(addr, "GET", &path, token("apqa-desk"), b"").await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !text.contains(secret) && !text.contains(&mfds) && !text.contains("MFDS"),
        "{text}"
    );
    let d = r.json();
    let permits = d["permits"].as_array().unwrap();
    assert_eq!(permits.len(), 1, "{d}");
    assert_eq!(permits[0]["id"], apqa.as_str());
    assert_eq!(d["declaration"]["lane"], serde_json::Value::Null);
    assert_eq!(d["responses"], serde_json::json!([]));
    assert_eq!(d["canonical"]["lrn"], "LRN-BEEF-1");
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"awaiting_permits"), "{kinds:?}");
    assert!(
        !kinds.contains(&"permit_refused") && !kinds.contains(&"permits_refused"),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"lane_assigned"), "{kinds:?}");
    // MFDS's refusal held the declaration at once, and withdrew APQA's
    // permit: an answer to it is not taken, and says nothing of why.
    let r = request(
        addr,
        "POST",
        &format!("/v1/permits/{apqa}/decision"),
        token("apqa-desk"),
        br#"{"outcome": "granted"}"#,
    )
    .await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["permit_status"], "withdrawn");
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !text.contains(secret) && !text.contains(&mfds) && !text.contains("MFDS"),
        "{text}"
    );
    let r = request(addr, "GET", &path, token("apqa-desk"), b"").await;
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(
        !text.contains(secret) && !text.contains(&mfds) && !text.contains("MFDS"),
        "{text}"
    );
    let d = r.json();
    assert_eq!(d["declaration"]["status"], "held");
    let kinds: Vec<&str> = d["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"held") && kinds.contains(&"permit_withdrawn"),
        "{kinds:?}"
    );
    // Not even that another agency refused (the milestone with its detail
    // replaced said so): held, for a reason that is not APQA's to know.
    assert!(
        !kinds.contains(&"permit_refused") && !kinds.contains(&"permits_refused"),
        "{kinds:?}"
    );
    // The cargo timeline by LRN: the same.
    let r = request(addr, "GET", "/v1/cargo/LRN-BEEF-1", token("apqa-desk"), b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(!text.contains(secret) && !text.contains(&mfds), "{text}");
    let r = request(
        addr,
        "GET",
        "/v1/cargo/LRN-BEEF-1",
        token("KRBROKER01"),
        b"",
    )
    .await;
    assert!(String::from_utf8_lossy(&r.body).contains(secret));
    hub.stop().await;
}

/// `GET /v1/declarations` pages through more than one page holds: each
/// full page names the `next` to go on from, the pages together are the
/// whole list in its order (newest first; declarations of one interchange,
/// stored at the same moment, by id), and `after` must name a declaration
/// the caller may list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarations_are_listed_page_by_page() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("KRBROKER02", None),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    // Three declarations in one interchange, then two more on their own.
    let one = |sender: &str, reference: &str, lrn: &str| {
        common::cusdec(sender, reference, lrn, "9", &["847989"])
    };
    let message = |bytes: &[u8], n: usize| {
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let start = text.find("UNH+1+").unwrap();
        let end = text.find("UNZ+").unwrap();
        let body = text[start..end].to_owned();
        let body = body.replacen("UNH+1+", &format!("UNH+{n}+"), 1);
        let unt = body.rfind("UNT+").unwrap();
        let tail = body[unt..].replacen("+1'", &format!("+{n}'"), 1);
        format!("{}{tail}", &body[..unt])
    };
    let first = one("KRBROKER01", "PAGE0001", "LRN-PAGE-1");
    let text = String::from_utf8(first.clone()).unwrap();
    let head = &text[..text.find("UNH+1+").unwrap()];
    let together = format!(
        "{head}{}{}{}UNZ+3+PAGE0001'",
        message(&first, 1),
        message(&one("KRBROKER01", "X", "LRN-PAGE-2"), 2),
        message(&one("KRBROKER01", "X", "LRN-PAGE-3"), 3),
    );
    let mut bodies = vec![together.into_bytes()];
    bodies.push(one("KRBROKER01", "PAGE0002", "LRN-PAGE-4"));
    bodies.push(one("KRBROKER01", "PAGE0003", "LRN-PAGE-5"));
    for body in &bodies {
        let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), body).await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    }
    let other = one("KRBROKER02", "PAGE0004", "LRN-PAGE-6");
    let r = request(
        addr,
        "POST",
        "/v1/interchanges",
        token("KRBROKER02"),
        &other,
    )
    .await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));

    let list = |who: &'static str, query: String| {
        let token = token(who);
        async move {
            let r = request(addr, "GET", &format!("/v1/declarations{query}"), token, b"").await;
            (r.status, r.json())
        }
    };
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["declarations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, whole) = list("KRBROKER01", String::new()).await;
    assert_eq!(status, 200);
    // The interchange's three share their moment: the id orders them.
    let moments: Vec<&str> = whole["declarations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert_eq!(moments[2], moments[3], "{moments:?}");
    assert_eq!(moments[3], moments[4], "{moments:?}");
    let whole = ids(&whole);
    assert_eq!(whole.len(), 5, "{whole:?}");
    // Page by page, two at a time.
    let mut paged = Vec::new();
    let mut pages = 0;
    let mut query = "?limit=2".to_owned();
    loop {
        let (status, page) = list("KRBROKER01", query.clone()).await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        paged.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=2&after={next}"),
            None => break,
        }
        assert!(pages < 10, "{page}");
    }
    assert_eq!(pages, 3);
    assert_eq!(paged, whole);
    // Page size equal to what is left: one more, empty, page says so.
    let (_, page) = list("KRBROKER01", format!("?limit=1&after={}", whole[3])).await;
    assert_eq!(ids(&page), [whole[4].clone()]);
    assert!(page["next"].is_string(), "{page}");
    let (_, page) = list("KRBROKER01", format!("?limit=1&after={}", whole[4])).await;
    assert!(ids(&page).is_empty());
    assert!(page["next"].is_null(), "{page}");
    // Another sender's declaration, or no declaration, is no place to go
    // on from: a 400, the same for both.
    let (_, theirs) = list("KRBROKER02", String::new()).await;
    let theirs = ids(&theirs);
    assert_eq!(theirs.len(), 1);
    for after in [theirs[0].as_str(), "no-such-declaration"] {
        let (status, problem) = list("KRBROKER01", format!("?after={after}")).await;
        assert_eq!(status, 400, "{problem}");
        assert_eq!(problem["type"], "urn:tradehub:problem:bad-query");
        assert_eq!(
            problem["detail"],
            format!("after: {after:?} is not a declaration of KRBROKER01")
        );
    }
    // An officer pages through everyone's.
    let (_, all) = list("officer", String::new()).await;
    let all = ids(&all);
    assert_eq!(all.len(), 6);
    let (_, rest) = list("officer", format!("?after={}", all[0])).await;
    assert_eq!(ids(&rest), all[1..]);
}

/// A warning (RUL010: the list declares more passengers than it lists)
/// does not keep a passenger list from being accepted, and its carrier
/// hears of it: the accepting CUSRES lists it (ERP/ERC, its text marked
/// a warning), still a general response (BGM 961, not 963) with the
/// message content accepted (GIS 1). The list with the right total gets
/// none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_go_with_an_accepting_answer() {
    let hub = HttpHub::builder()
        .partner("AIR1", "Airline", None)
        .start()
        .await;
    let addr = hub.addr;
    let body = String::from_utf8(common::fixture("ok/paxlst-d02b-iata-references.edi"))
        .unwrap()
        .replace("+DHS:ZZ+", "+TRADEHUB:ZZ+");
    assert!(body.contains("CNT+42:2'"));
    let answer_of = |body: String| {
        let token = Some(hub.token("AIR1"));
        async move {
            let r = request(addr, "POST", "/v1/interchanges", token, body.as_bytes()).await;
            assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
            let interchange = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
            let r = request(
                addr,
                "GET",
                &format!("/v1/interchanges/{interchange}"),
                token,
                b"",
            )
            .await;
            let declaration = r.json()["declarations"][0].clone();
            assert_eq!(declaration["status"], "accepted", "{}", r.json());
            let id = declaration["id"].as_str().unwrap();
            let r = request(addr, "GET", &format!("/v1/declarations/{id}"), token, b"").await;
            let responses = r.json()["responses"].clone();
            assert_eq!(responses.as_array().map(Vec::len), Some(1), "{responses}");
            assert_eq!(responses[0]["kind"], "cusres");
            responses[0]["body"].as_str().unwrap().to_owned()
        }
    };
    let right = answer_of(body.clone()).await;
    assert!(!right.contains("ERC+"), "{right}");
    let wrong = answer_of(
        // Another interchange (its own control reference).
        body.replace("CNT+42:2'", "CNT+42:3'")
            .replace("000007001", "000007002"),
    )
    .await;
    assert!(wrong.contains("ERC+RUL010::ZZZ'"), "{wrong}");
    // (The list came in UNOA, so its answer is in upper case.)
    assert!(
        wrong.contains("(WARNING) THE LIST DECLARES 3 PASSENGERS"),
        "{wrong}"
    );
    assert!(wrong.contains("BGM+961+"), "{wrong}");
    assert!(wrong.contains("GIS+1'"), "{wrong}");
    assert!(wrong.contains("ERP++CNT:"), "{wrong}");
}

/// An officer orders goods examined (`POST /v1/declarations/{id}/hold`):
/// a cleared declaration is held at once and its sender answered; one
/// awaiting permits is held once they are granted. Its lane is red from
/// then on; who ordered it and why is for officers only. Only officers
/// hold, with a reason; a resend changes nothing; released goods are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn officers_hold_goods_for_examination() {
    let hub = HttpHub::start(&[
        ("KRBROKER01", None),
        ("kmdia-desk", Some("KMDIA")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| Some(hub.token(id));
    let read = |id: String, who: &'static str| {
        let path = format!("/v1/declarations/{id}");
        let token = hub.token(who).to_owned();
        async move {
            let r = request(addr, "GET", &path, Some(&token), b"").await;
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            r.json()
        }
    };
    let kinds = |json: &serde_json::Value, key: &str, field: &str| -> Vec<String> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[field].as_str().unwrap().to_owned())
            .collect()
    };

    // Computers need no permit: cleared on the declared data.
    let body = common::cusdec("KRBROKER01", "HOLD0001", "LRN-HOLD-1", "9", &["847130"]);
    let r = request(addr, "POST", "/v1/interchanges", token("KRBROKER01"), &body).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let r = request(addr, "GET", "/v1/declarations", token("KRBROKER01"), b"").await;
    let cleared = r.json()["declarations"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(r.json()["declarations"][0]["status"], "cleared");
    let hold = format!("/v1/declarations/{cleared}/hold");
    let why = br#"{"reason": "intelligence report 2026-118"}"#;

    // Officers only, and with a reason.
    for who in ["KRBROKER01", "kmdia-desk"] {
        let r = request(addr, "POST", &hold, token(who), why).await;
        assert_eq!(r.status, 403, "{who}: {}", String::from_utf8_lossy(&r.body));
    }
    for body in [
        &b""[..],
        br#"{}"#,
        br#"{"reason": "  "}"#,
        br#"{"reason": "a\u0000b"}"#,
        br#"{"reason": "x", "lane": "green"}"#,
    ] {
        let r = request(addr, "POST", &hold, token("officer"), body).await;
        assert_eq!(
            r.status,
            422,
            "{}: {}",
            String::from_utf8_lossy(body),
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.json()["type"], "urn:tradehub:problem:bad-hold");
    }
    let r = request(
        addr,
        "POST",
        "/v1/declarations/no-such-declaration/hold",
        token("officer"),
        why,
    )
    .await;
    assert_eq!(r.status, 404);
    let d = read(cleared.clone(), "officer").await;
    assert_eq!(d["declaration"]["status"], "cleared", "refusals changed it");

    // Held at once, the sender answered "held".
    let r = request(addr, "POST", &hold, token("officer"), why).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declaration"]["status"], "held");
    assert_eq!(r.json()["declaration"]["lane"], "red");
    assert_eq!(r.json().get("repeated"), None);
    // Sent again: nothing more.
    let r = request(addr, "POST", &hold, token("officer"), why).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["repeated"], true);
    let officer_view = read(cleared.clone(), "officer").await;
    assert_eq!(
        kinds(&officer_view, "responses", "status"),
        ["cleared", "held"]
    );
    let events = kinds(&officer_view, "events", "kind");
    assert_eq!(
        events
            .iter()
            .filter(|k| *k == "examination_ordered")
            .count(),
        1,
        "{events:?}"
    );
    let ordered = officer_view["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "examination_ordered")
        .unwrap()["detail"]
        .clone();
    assert_eq!(ordered, "by officer: intelligence report 2026-118");
    // The sender sees that it is held, not who ordered it or why.
    let sender_view = read(cleared.clone(), "KRBROKER01").await;
    assert_eq!(sender_view["declaration"]["status"], "held");
    assert_eq!(
        kinds(&sender_view, "responses", "status"),
        ["cleared", "held"]
    );
    assert!(
        !kinds(&sender_view, "events", "kind").contains(&"examination_ordered".to_owned()),
        "{}",
        sender_view["events"]
    );
    assert!(
        !sender_view["events"].to_string().contains("intelligence"),
        "{}",
        sender_view["events"]
    );

    // Examined and released; released goods are not held any more.
    let release = format!("/v1/declarations/{cleared}/release");
    let r = request(addr, "POST", &release, token("officer"), b"").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declaration"]["status"], "released");
    let r = request(addr, "POST", &hold, token("officer"), why).await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["type"], "urn:tradehub:problem:not-holdable");
    assert_eq!(r.json()["declaration_status"], "released");

    // Awaiting KMDIA's permit: held once it is granted, not cleared.
    let permit = oldest_permit(&hub, "HOLD0002", "901890", "kmdia-desk", "KMDIA").await;
    let waiting = permit["declaration_id"].as_str().unwrap().to_owned();
    let hold_waiting = format!("/v1/declarations/{waiting}/hold");
    let r = request(addr, "POST", &hold_waiting, token("officer"), why).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["declaration"]["status"], "awaiting_permits");
    assert_eq!(r.json()["declaration"]["lane"], "red");
    // The sender is told at once that the goods are to be examined (a
    // CUSRES on hold, goods required for examination), not who ordered
    // it or why; once.
    let r = request(addr, "POST", &hold_waiting, token("officer"), why).await;
    assert_eq!(r.json()["repeated"], true);
    let sender_view = read(waiting.clone(), "KRBROKER01").await;
    assert_eq!(sender_view["declaration"]["status"], "awaiting_permits");
    assert_eq!(
        kinds(&sender_view, "responses", "status"),
        ["awaiting_permits", "examination_ordered"]
    );
    let told = sender_view["responses"][1]["body"].as_str().unwrap();
    assert!(told.contains("BGM+961+HOLD0002+23'"), "{told}");
    assert!(told.contains("GIS+5'"), "{told}");
    assert!(told.contains("status examination_ordered"), "{told}");
    assert!(!told.contains("intelligence"), "{told}");
    // The agency reads neither the order nor the lane.
    let agency_view = read(waiting.clone(), "kmdia-desk").await;
    assert!(
        !agency_view.to_string().contains("intelligence"),
        "{agency_view}"
    );
    assert_eq!(agency_view["declaration"]["lane"], serde_json::Value::Null);
    let r = request(
        addr,
        "POST",
        &format!("/v1/permits/{}/decision", permit["id"].as_str().unwrap()),
        token("kmdia-desk"),
        br#"{"outcome": "granted"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let d = read(waiting, "officer").await;
    assert_eq!(d["declaration"]["status"], "held");
    assert_eq!(
        kinds(&d, "responses", "status"),
        ["awaiting_permits", "examination_ordered", "held"]
    );
    hub.stop().await;
}
