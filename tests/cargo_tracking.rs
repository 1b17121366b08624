//! Cargo tracking over real HTTP on the embedded store: a carrier's sea
//! manifest (CUSCAR) and a broker's import declaration (CUSDEC) naming the
//! same container and bill of lading, then `GET /v1/cargo/{ref}` as each
//! kind of account sees it — the officer everything, each partner its own
//! messages, the agency the declaration it has a permit on, a stranger
//! nothing (404).

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;

use common::{HttpHub, request};

const CARRIER: &str = "KRCARRIER01";
const BROKER: &str = "KRBROKER01";
const CONTAINER: &str = "HDMU1234565";
const BILL_OF_LADING: &str = "HDMUSHAB1234567";

/// The sea manifest fixture, sent by `sender`.
fn manifest(sender: &str) -> Vec<u8> {
    let text = String::from_utf8(common::fixture("ok/cuscar-d96b-sea-manifest.edi")).unwrap();
    // Addressed to this hub (the fixture names KRCUSTOMS, which a hub
    // takes with `--recipient-id KRCUSTOMS`).
    let text = text.replace(
        "UNB+UNOC:3+HDMU:ZZZ+KRCUSTOMS:ZZZ+",
        &format!("UNB+UNOC:3+{sender}:ZZZ+TRADEHUB:ZZZ+"),
    );
    assert!(text.contains(&format!("+{sender}:ZZZ+")));
    text.into_bytes()
}

/// An import declaration (a medical device, so KMDIA must confirm it) for
/// goods in `CONTAINER`, referring to the manifest's `BILL_OF_LADING`.
fn declaration(sender: &str) -> Vec<u8> {
    let text = String::from_utf8(common::cusdec(
        sender,
        "CARGO0001",
        "LRN-CARGO-1",
        "9",
        &["901890"],
    ))
    .unwrap();
    let dtm = "DTM+137:202611241030:203'";
    assert!(text.contains(dtm));
    let text = text.replace(
        dtm,
        &format!("{dtm}EQD+CN+{CONTAINER}'RFF+BM:{BILL_OF_LADING}'"),
    );
    // Two more segments in the message.
    let (head, tail) = text.split_once("UNT+").unwrap();
    let (count, rest) = tail.split_once('+').unwrap();
    let count: u32 = count.parse().unwrap();
    format!("{head}UNT+{}+{rest}", count + 2).into_bytes()
}

async fn get(addr: SocketAddr, path: &str, token: &str) -> common::Response {
    request(addr, "GET", path, Some(token), b"").await
}

/// The declaration ids of a timeline answer, in timeline order, once each.
fn timeline_declarations(body: &serde_json::Value) -> Vec<String> {
    let mut ids: Vec<String> = vec![];
    for entry in body["timeline"].as_array().unwrap() {
        let id = entry["declaration_id"].as_str().unwrap().to_owned();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_and_a_bill_of_lading_are_tracked_over_http() {
    let hub = HttpHub::start(&[
        (CARRIER, None),
        (BROKER, None),
        ("KRBROKER02", None),
        ("kmdia-desk", Some("KMDIA")),
        ("mfds-desk", Some("MFDS")),
        ("officer", Some("CUSTOMS")),
    ])
    .await;
    let addr = hub.addr;
    let token = |id: &str| hub.token(id);

    // The carrier's manifest, then the broker's declaration.
    let mut ids = vec![];
    for (sender, body) in [(CARRIER, manifest(CARRIER)), (BROKER, declaration(BROKER))] {
        let r = request(addr, "POST", "/v1/interchanges", Some(token(sender)), &body).await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
        let interchange = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
        let r = get(
            addr,
            &format!("/v1/interchanges/{interchange}"),
            token(sender),
        )
        .await;
        let declarations = r.json()["declarations"].clone();
        assert_eq!(declarations.as_array().unwrap().len(), 1, "{declarations}");
        ids.push((
            declarations[0]["id"].as_str().unwrap().to_owned(),
            declarations[0]["status"].as_str().unwrap().to_owned(),
        ));
    }
    let (manifest_id, manifest_status) = ids[0].clone();
    let (declaration_id, declaration_status) = ids[1].clone();
    assert_eq!(manifest_status, "accepted");
    assert_eq!(declaration_status, "awaiting_permits");

    // The carrier tracks its bill of lading, its container, the voyage and
    // the manifest's own number: the manifest's whole trail, in order; not
    // the broker's declaration.
    for reference in [BILL_OF_LADING, CONTAINER, "0045E", "MNF2026112001"] {
        let r = get(addr, &format!("/v1/cargo/{reference}"), token(CARRIER)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        assert_eq!(body["reference"], reference);
        assert_eq!(
            timeline_declarations(&body),
            [manifest_id.as_str()],
            "{body}"
        );
        let kinds: Vec<&str> = body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["received", "validated", "accepted"], "{body}");
        let entry = &body["timeline"][0];
        assert_eq!(entry["message_type"], "CUSCAR");
        assert_eq!(entry["status"], "accepted");
        assert!(entry["at"].as_str().unwrap().ends_with('Z'), "{entry}");
        assert!(
            entry["detail"].as_str().unwrap().contains("cargo_report"),
            "{entry}"
        );
        assert_eq!(body["declarations"].as_array().unwrap().len(), 1);
        assert_eq!(body["declarations"][0]["id"], manifest_id.as_str());
        assert_eq!(body["declarations"][0]["partner_id"], CARRIER);
    }

    // An officer sees the manifest and the declaration on the same
    // container and bill of lading, the manifest first.
    for reference in [BILL_OF_LADING, CONTAINER] {
        let r = get(addr, &format!("/v1/cargo/{reference}"), token("officer")).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        assert_eq!(
            timeline_declarations(&body),
            [manifest_id.as_str(), declaration_id.as_str()],
            "{body}"
        );
        let timeline = body["timeline"].as_array().unwrap();
        let order: Vec<(&str, i64)> = timeline
            .iter()
            .map(|e| (e["at"].as_str().unwrap(), e["seq"].as_i64().unwrap()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
        assert!(
            timeline
                .iter()
                .any(|e| e["declaration_id"] == declaration_id.as_str()
                    && e["kind"] == "awaiting_permits"
                    && e["message_type"] == "CUSDEC"
                    && e["status"] == "awaiting_permits"),
            "{body}"
        );
        assert_eq!(body["declarations"].as_array().unwrap().len(), 2);
    }

    // The broker and the agency with a permit see the declaration only; by
    // its LRN as well.
    for (who, reference) in [
        (BROKER, CONTAINER),
        (BROKER, "LRN-CARGO-1"),
        ("kmdia-desk", BILL_OF_LADING),
    ] {
        let r = get(addr, &format!("/v1/cargo/{reference}"), token(who)).await;
        assert_eq!(r.status, 200, "{who}: {}", String::from_utf8_lossy(&r.body));
        let body = r.json();
        assert_eq!(
            timeline_declarations(&body),
            [declaration_id.as_str()],
            "{who}: {body}"
        );
    }

    // Strangers, an agency without a permit and unknown references: 404.
    for (who, reference) in [
        ("KRBROKER02", CONTAINER),
        ("KRBROKER02", BILL_OF_LADING),
        ("mfds-desk", CONTAINER),
        (CARRIER, "LRN-CARGO-1"),
        ("officer", "NOSUCHREF"),
    ] {
        let r = get(addr, &format!("/v1/cargo/{reference}"), token(who)).await;
        assert_eq!(r.status, 404, "{who} {reference}");
        assert_eq!(
            r.header("content-type"),
            Some("application/problem+json"),
            "{who} {reference}"
        );
    }
    let r = request(addr, "GET", &format!("/v1/cargo/{CONTAINER}"), None, b"").await;
    assert_eq!(r.status, 401);

    hub.stop().await;
}

/// A carrier replaces its manifest (BGM 1225 5) and then cancels it (1):
/// each refers to its live manifest with that reference, which becomes
/// amended, then cancelled, each with its own event; a cancellation of a
/// manifest the carrier never sent is refused (RUL008). Before, every one
/// was stored as another accepted manifest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_is_replaced_and_cancelled_by_its_reference() {
    let dir = std::env::temp_dir().join(format!("tradehub-cargo-{}", uuid::Uuid::now_v7()));
    let store = tradehub::store::Store::open(&tradehub::store::Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    store
        .add_partner(
            CARRIER,
            "Carrier",
            "hash",
            tradehub::timestamp::Timestamp::now(),
        )
        .await
        .unwrap();
    let partner = store.partner(CARRIER).await.unwrap().unwrap();
    let intake = tradehub::hub::Intake::new(store.clone(), tradehub::edifact::Limits::default());
    let send = |reference: &str, function: &str, manifest_no: &str| {
        let text = String::from_utf8(manifest(CARRIER))
            .unwrap()
            .replace("CUSCAR2611001", reference)
            .replace(
                "BGM+785+MNF2026112001+9'",
                &format!("BGM+785+{manifest_no}+{function}'"),
            );
        assert!(text.contains(&format!("+{function}'")));
        text.into_bytes()
    };
    let statuses = |ids: &[&str]| {
        let store = store.clone();
        let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
        async move {
            let mut out = Vec::new();
            for id in ids {
                out.push(store.declaration(&id).await.unwrap().unwrap().status);
            }
            out
        }
    };
    let submit = |bytes: Vec<u8>| {
        let (intake, partner, store) = (intake.clone(), partner.clone(), store.clone());
        async move {
            match intake.submit(&partner, bytes).await.unwrap() {
                tradehub::hub::Submission::Stored(r) => store
                    .declarations_of(&r.interchange.id)
                    .await
                    .unwrap()
                    .remove(0),
                other => panic!("{other:?}"),
            }
        }
    };
    let original = submit(send("MNF001", "9", "MNF2026112001")).await;
    assert_eq!(original.status, "accepted");
    // The same original again under a new interchange reference: refused
    // (RUL009), not a second live manifest that no replacement reaches.
    let again = submit(send("MNF001B", "9", "MNF2026112001")).await;
    assert_eq!(again.status, "rejected");
    assert!(
        again.issues_json.contains("RUL009"),
        "{}",
        again.issues_json
    );
    // A change of items only (1225 4) is not taken as a replacement.
    let change = submit(send("MNF001C", "4", "MNF2026112001")).await;
    assert_eq!(change.status, "rejected");
    assert!(
        change.issues_json.contains("MAP003"),
        "{}",
        change.issues_json
    );
    assert!(
        !change.issues_json.contains("RUL009"),
        "{}",
        change.issues_json
    );
    assert_eq!(statuses(&[&original.id]).await, ["accepted"]);
    // Two originals with one number at the same moment: one goes live, the
    // other is refused (the store's index has the last word).
    for round in 0..3 {
        let number = format!("MNF-RACE-{round}");
        let (a, b) = tokio::join!(
            submit(send(&format!("RACE{round}A"), "9", &number)),
            submit(send(&format!("RACE{round}B"), "9", &number)),
        );
        let mut statuses = [a.status.clone(), b.status.clone()];
        statuses.sort();
        assert_eq!(statuses, ["accepted", "rejected"], "round {round}");
    }
    let replacement = submit(send("MNF002", "5", "MNF2026112001")).await;
    assert_eq!(
        replacement.status, "accepted",
        "{}",
        replacement.issues_json
    );
    assert_eq!(
        statuses(&[&original.id, &replacement.id]).await,
        ["amended", "accepted"]
    );
    let cancellation = submit(send("MNF003", "1", "MNF2026112001")).await;
    assert_eq!(
        cancellation.status, "accepted",
        "{}",
        cancellation.issues_json
    );
    assert_eq!(
        statuses(&[&original.id, &replacement.id]).await,
        ["amended", "cancelled"]
    );
    // The carrier is told its manifest is cancelled, as a declarant is of
    // a declaration (it was told "accepted", as for an original).
    let answers = store.responses_of(&cancellation.id).await.unwrap();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0].status, "cancelled");
    assert!(
        answers[0].body.contains("status cancelled"),
        "{}",
        answers[0].body
    );
    // Each says what it is, original or not.
    assert_eq!(original.function.as_deref(), Some("original"));
    assert_eq!(cancellation.function.as_deref(), Some("cancellation"));
    // Once cancelled, the reference may start a new manifest.
    let anew = submit(send("MNF004", "9", "MNF2026112001")).await;
    assert_eq!(anew.status, "accepted", "{}", anew.issues_json);
    let cancel_anew = submit(send("MNF005", "1", "MNF2026112001")).await;
    assert_eq!(
        cancel_anew.status, "accepted",
        "{}",
        cancel_anew.issues_json
    );
    // Nothing left to cancel, and a reference never sent: refused.
    for manifest_no in ["MNF2026112001", "MNF-NEVER"] {
        let refused = submit(send(&format!("X{}", &manifest_no[..4]), "1", manifest_no)).await;
        assert_eq!(refused.status, "rejected");
        assert!(
            refused.issues_json.contains("RUL008")
                && refused
                    .issues_json
                    .contains("a cancellation of cargo report")
                && refused.issues_json.contains("or it was cancelled"),
            "{}",
            refused.issues_json
        );
        assert_eq!(refused.function.as_deref(), Some("cancellation"));
    }
    // Without a document number (BGM 1004) a report names no manifest:
    // not taken (MAP004), whether original, replacement or cancellation,
    // and it touches no live manifest of the sender. (The UNH message
    // reference, 1 in most interchanges, used to stand in for it, so a
    // cancellation without a number cancelled the manifest numbered "1",
    // and a second original without one was refused as its duplicate.)
    let numbered_one = submit(send("MNF006", "9", "1")).await;
    assert_eq!(
        numbered_one.status, "accepted",
        "{}",
        numbered_one.issues_json
    );
    for (reference, function) in [("MNF007", "9"), ("MNF008", "5"), ("MNF009", "1")] {
        let unnumbered = submit(send(reference, function, "")).await;
        assert_eq!(unnumbered.status, "rejected", "{function}");
        assert!(
            unnumbered.issues_json.contains("MAP004")
                && unnumbered.issues_json.contains("reference")
                && !unnumbered.issues_json.contains("RUL"),
            "{function}: {}",
            unnumbered.issues_json
        );
    }
    assert_eq!(statuses(&[&numbered_one.id]).await, ["accepted"]);
    // Each replaced manifest had its own event.
    let outbox = store.pending_outbox(1000).await.unwrap();
    // The cancellation's one answer went out: "cancelled", not "accepted".
    let answers_of = |id: &str| -> Vec<String> {
        outbox
            .iter()
            .map(|m| m.message.message_id.clone())
            .filter(|m| m.starts_with(id) && m.ends_with("/response"))
            .collect()
    };
    assert_eq!(
        answers_of(&cancellation.id),
        [format!("{}/cancelled/0/response", cancellation.id)]
    );
    for (id, key) in [
        (&original.id, "declaration.amended"),
        (&replacement.id, "declaration.cancelled"),
    ] {
        assert!(
            outbox.iter().any(|m| m.message.routing_key == key
                && String::from_utf8_lossy(&m.message.payload).contains(id.as_str())),
            "no {key} event for {id}"
        );
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
