//! The OpenAPI document (docs/openapi.json, served at /v1/openapi.json)
//! and the router agree: every route of src/transport/http.rs is
//! documented, and every documented path and method is routed (a request
//! to it is answered by its handler, never by the router's 404/405).

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::{HttpHub, request};
use tradehub::transport::http;

fn document() -> serde_json::Value {
    serde_json::from_str(http::OPENAPI).unwrap()
}

#[test]
fn every_route_is_documented() {
    let source = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/transport/http.rs"),
    )
    .unwrap();
    let routed: BTreeSet<String> = source
        .split(".route(\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect();
    let doc = document();
    let documented: BTreeSet<String> = doc["paths"].as_object().unwrap().keys().cloned().collect();
    assert!(routed.len() >= 10, "{routed:?}");
    assert_eq!(routed, documented);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed() {
    let hub = HttpHub::builder().start().await;
    let addr = hub.addr;
    let doc = document();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", "x").replace("{code}", "KMDIA");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let r = request(addr, &method.to_uppercase(), &concrete, None, b"").await;
            assert_ne!(r.status, 405, "{method} {path} not routed");
            // The router's own 404 is a problem too, so tell it by its
            // type: a handler's 404 names what it did not find.
            if r.status == 404 {
                assert_ne!(
                    r.json()["type"],
                    "urn:tradehub:problem:no-such-resource",
                    "{method} {path}: the router answered 404"
                );
            }
            let documented = op["responses"]
                .as_object()
                .unwrap()
                .contains_key(&r.status.to_string());
            assert!(
                documented,
                "{method} {path} answered {}, undocumented",
                r.status
            );
        }
    }
    assert!(operations >= 11);
    let r = request(addr, "GET", "/v1/openapi.json", None, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), doc);
    hub.stop().await;
}
