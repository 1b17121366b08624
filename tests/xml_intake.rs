//! WCO XML through the hub over real HTTP: a real WCO DEC (HMRC CDS test
//! declaration, fixtures/wco/corpus) is validated against the WCO schema,
//! answered with WCO RES 02, mapped to the canonical declaration and
//! answered again with a WCO RES when the clearance workflow decides; a
//! WCO response posted as if it were a declaration is rejected (XML012);
//! the same bytes again are a duplicate.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{HttpHub, request};

fn corpus(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/wco/corpus")
            .join(name),
    )
    .unwrap()
}

/// Submits a WCO declaration the hub takes in and rejects, and returns
/// the answer it sent (its first response's body).
async fn rejected_answer(addr: std::net::SocketAddr, token: Option<&str>, body: &[u8]) -> String {
    let r = request(addr, "POST", "/v1/interchanges", token, body).await;
    assert_eq!(r.status, 202);
    let id = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
    let r = request(addr, "GET", &format!("/v1/interchanges/{id}"), token, b"").await;
    let d = r.json()["declarations"][0].clone();
    assert_eq!(d["status"], "rejected", "{d}");
    let r = request(
        addr,
        "GET",
        &format!("/v1/declarations/{}", d["id"].as_str().unwrap()),
        token,
        b"",
    )
    .await;
    r.json()["responses"][0]["body"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wco_declarations_are_validated_mapped_and_answered_in_wco_res() {
    let hub = HttpHub::builder()
        .partner("GB-BROKER", "CDS trader", None)
        .start()
        .await;
    let addr = hub.addr;
    let token = Some(hub.token("GB-BROKER"));

    let dec = corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let r = request(addr, "POST", "/v1/interchanges", token, &dec).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["interchange"]["format"], "xml");
    assert_eq!(body["interchange"]["status"], "validated");
    let receipt = body["interchange"]["acknowledgement"].as_str().unwrap();
    assert!(
        receipt.contains("<res:FunctionCode>02</res:FunctionCode>"),
        "{receipt}"
    );
    let id = body["interchange"]["id"].as_str().unwrap().to_owned();

    let r = request(addr, "GET", &format!("/v1/interchanges/{id}"), token, b"").await;
    let declarations = r.json()["declarations"].clone();
    assert_eq!(declarations.as_array().unwrap().len(), 1, "{declarations}");
    let declaration = &declarations[0];
    assert_eq!(declaration["message_type"], "WCO DEC");
    assert_eq!(declaration["status"], "cleared", "{declaration}");
    let r = request(
        addr,
        "GET",
        &format!("/v1/declarations/{}", declaration["id"].as_str().unwrap()),
        token,
        b"",
    )
    .await;
    let d = r.json();
    assert_eq!(d["canonical"]["kind"], "import");
    let response = &d["responses"][0];
    assert_eq!(response["kind"], "res");
    let text = response["body"].as_str().unwrap();
    // 09 cleared, with the declaration's LRN.
    assert!(
        text.contains("<res:FunctionCode>09</res:FunctionCode>"),
        "{text}"
    );
    let lrn = d["declaration"]["lrn"].as_str().unwrap();
    assert!(text.contains(lrn), "{lrn} in {text}");
    // The MRN customs gave it: on the declaration, in its canonical form
    // and as the response's declaration ID.
    let mrn = d["declaration"]["mrn"].as_str().unwrap();
    assert!(tradehub::hub::mrn::is_valid(mrn), "{mrn}");
    assert_eq!(d["canonical"]["mrn"], mrn);
    assert!(text.contains(&format!("<res:ID>{mrn}</res:ID>")), "{text}");

    // The same bytes again: the original answer, nothing new.
    let r = request(addr, "POST", "/v1/interchanges", token, &dec).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["duplicate"], true);
    assert_eq!(r.json()["interchange"]["id"], id.as_str());

    // A business-rule finding (a currency that is not ISO 4217) rejects the
    // declaration with a WCO RES 03 whose Error points at the element.
    let bad = String::from_utf8(dec.clone())
        .unwrap()
        .replacen(r#"currencyID="GBP">1000<"#, r#"currencyID="QQQ">1000<"#, 1)
        .replacen("<FunctionalReferenceID>", "<FunctionalReferenceID>X", 1);
    let res = rejected_answer(addr, token, bad.as_bytes()).await;
    for part in [
        "<res:FunctionCode>03</res:FunctionCode>",
        "<res:ValidationCode>RUL004</res:ValidationCode>",
        "<res:DocumentSectionCode>79A</res:DocumentSectionCode>",
        "<res:TagID>112</res:TagID>",
    ] {
        assert!(res.contains(part), "{part} in {res}");
    }
    // A declaration that does not map whole (an original of a type that
    // names no kind: MAP004) is still checked by the rules: its RES lists
    // both errors, the currency's with its pointer.
    let incomplete = bad
        .replacen("<TypeCode>IMA</TypeCode>", "<TypeCode>INV</TypeCode>", 1)
        .replacen("<FunctionalReferenceID>", "<FunctionalReferenceID>Y", 1);
    assert_ne!(incomplete, bad);
    let answer = rejected_answer(addr, token, incomplete.as_bytes()).await;
    for part in [
        "<res:FunctionCode>03</res:FunctionCode>",
        "<res:ValidationCode>MAP004</res:ValidationCode>",
        "missing field `kind`",
        "<res:ValidationCode>RUL004</res:ValidationCode>",
        "<res:TagID>112</res:TagID>",
    ] {
        assert!(answer.contains(part), "{part} in {answer}");
    }

    // `tradehub ack --kind res` answers the same.
    let file = hub.dir.join("bad-currency.xml");
    std::fs::write(&file, &bad).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["ack", "--kind", "res", "--at", "2026-11-24T10:30"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("<res:ValidationCode>RUL004</res:ValidationCode>"),
        "{text}"
    );

    // A WCO response is not a declaration.
    let res = corpus("valid/hmrcns__Example_DMS_notifications__03_DMSREJ.xml");
    let r = request(addr, "POST", "/v1/interchanges", token, &res).await;
    assert_eq!(r.status, 202);
    let body = r.json();
    assert_eq!(body["interchange"]["status"], "rejected");
    assert_eq!(body["interchange"]["issues"][0]["code"], "XML012", "{body}");

    hub.stop().await;
}

/// WCO declarations name no sender as UNB does: a partner with registered
/// trader identifiers may only submit declarations whose Submitter (or,
/// without one, Declarant) is one of them; a partner with none submits as
/// itself. The real HMRC declaration's Declarant is GB603202734852.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wco_submitter_must_be_a_trader_of_the_partner() {
    let hub = HttpHub::builder()
        .partner("GB-BROKER", "CDS broker", None)
        .partner("OTHER-BROKER", "Another broker", None)
        .start()
        .await;
    let addr = hub.addr;
    hub.store
        .add_trader_id("GB-BROKER", "GB603202734852")
        .await
        .unwrap();
    hub.store
        .add_trader_id("OTHER-BROKER", "GB000000000001")
        .await
        .unwrap();
    let dec = corpus("valid/hmrc__TT_IM001d__TT_IM001d.xml");

    // Another broker's partner account may not file it.
    let other = Some(hub.token("OTHER-BROKER"));
    let r = request(addr, "POST", "/v1/interchanges", other, &dec).await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let problem = r.json();
    assert_eq!(problem["code"], "HUB201");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("GB603202734852"),
        "{problem}"
    );
    let refusals = hub.store.refusals("OTHER-BROKER", 10).await.unwrap();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].0, "HUB201");

    // The declarant's own broker may.
    let own = Some(hub.token("GB-BROKER"));
    let r = request(addr, "POST", "/v1/interchanges", own, &dec).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["interchange"]["status"], "validated");

    // A Submitter, when named, is the one checked: this declaration's
    // (cancellation) Submitter is GB150454489082, whoever its declarant.
    let exp = corpus("valid/hmrc__TT_EX010a__TT_EX010a_Cancellation.xml");
    let r = request(addr, "POST", "/v1/interchanges", own, &exp).await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    hub.store
        .add_trader_id("GB-BROKER", "GB150454489082")
        .await
        .unwrap();
    let r = request(addr, "POST", "/v1/interchanges", own, &exp).await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
}
