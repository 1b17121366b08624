//! Crash safety of intake and of the permit workflow: under continuous
//! submissions from several clients, while an agency answers its permit
//! inbox, the hub process is killed with SIGKILL and restarted on the same
//! embedded store. Afterwards every interchange that was acknowledged (HTTP
//! 202) exists exactly once, resubmitting anything whose answer was lost does
//! not store it twice, every permit request was published (its outbox row
//! relayed) and every permit was decided exactly once, so that every
//! declaration ends cleared.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, request_blocking, token_of};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradehub"))
}

fn start(data: &Path) -> (Server, String) {
    let (child, addr, _log) = common::spawn_serve(data);
    (Server(child), addr)
}

/// A declaration of a medical device (KMDIA confirms it); the LRN is the
/// reference, so that every submission is a new declaration.
fn interchange(reference: &str) -> Vec<u8> {
    common::cusdec("KRBROKER01", reference, reference, "9", &["901890"])
}

/// Answers every permit in KMDIA's inbox; returns how many were granted
/// now, or `None` when the hub did not answer (killed).
fn answer_inbox(addr: &str, token: &str) -> Option<usize> {
    let r = request_blocking(addr, "GET", "/v1/agencies/KMDIA/inbox", Some(token), b"")?;
    assert_eq!(r.status, 200);
    let mut granted = 0;
    for p in r.json()["permits"].as_array().unwrap() {
        let id = p["permit"]["id"].as_str().unwrap();
        let r = request_blocking(
            addr,
            "POST",
            &format!("/v1/permits/{id}/decision"),
            Some(token),
            br#"{"outcome": "granted", "reasons": ["registered device"]}"#,
        )?;
        // 409: answered before (the first answer's reply was lost).
        assert!(r.status == 200 || r.status == 409, "decision: {}", r.status);
        granted += usize::from(r.status == 200);
    }
    Some(granted)
}

#[test]
fn kill_9_loses_no_acknowledged_interchange() {
    let dir = std::env::temp_dir().join(format!("tradehub-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data: PathBuf = dir.join("data");
    let token = token_of(
        bin()
            .args([
                "partner",
                "add",
                "KRBROKER01",
                "--name",
                "Crash Test",
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .unwrap(),
    );
    let agency = token_of(
        bin()
            .args([
                "partner",
                "add",
                "kmdia-desk",
                "--name",
                "KMDIA desk",
                "--agency",
                "KMDIA",
                "--data-dir",
            ])
            .arg(&data)
            .output()
            .unwrap(),
    );

    let (mut server, addr) = start(&data);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default(); // (reference, id)
    let unknown: Arc<Mutex<Vec<String>>> = Arc::default(); // answer lost
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    // The agency answers while the load runs, until the hub goes away.
    let agency_thread = {
        let (addr, agency, running) = (addr.clone(), agency.clone(), running.clone());
        std::thread::spawn(move || {
            let mut granted = 0;
            while running.load(Ordering::Relaxed) {
                match answer_inbox(&addr, &agency) {
                    Some(n) => granted += n,
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            granted
        })
    };
    for t in 0..4 {
        let (acked, unknown, running) = (acked.clone(), unknown.clone(), running.clone());
        let (addr, token) = (addr.clone(), token.clone());
        clients.push(std::thread::spawn(move || {
            let mut i = 0;
            while running.load(Ordering::Relaxed) && i < 100_000 {
                let reference = format!("K{t}{i:06}");
                i += 1;
                match request_blocking(
                    &addr,
                    "POST",
                    "/v1/interchanges",
                    Some(&token),
                    &interchange(&reference),
                ) {
                    Some(r) if r.status == 202 => {
                        let id = r.json()["interchange"]["id"].as_str().unwrap().to_owned();
                        acked.lock().unwrap().push((reference, id));
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
    // Let load build up, then kill without warning.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill(); // SIGKILL
    running.store(false, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let granted_before = agency_thread.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    let unknown = unknown.lock().unwrap().clone();
    assert!(
        acked.len() >= 50,
        "too little load before the kill: {}",
        acked.len()
    );

    // Restart on the same store.
    let (mut server, addr) = start(&data);
    for (reference, id) in &acked {
        let r = request_blocking(
            &addr,
            "GET",
            &format!("/v1/interchanges/{id}"),
            Some(&token),
            b"",
        )
        .unwrap();
        assert_eq!(
            r.status, 200,
            "acknowledged interchange {reference} ({id}) lost"
        );
        assert_eq!(
            r.json()["interchange"]["control_reference"],
            reference.as_str()
        );
    }
    // Senders whose answer was lost resubmit: stored at most once.
    for reference in &unknown {
        let r = request_blocking(
            &addr,
            "POST",
            "/v1/interchanges",
            Some(&token),
            &interchange(reference),
        )
        .unwrap();
        assert!(
            r.status == 200 || r.status == 202,
            "{reference}: {}",
            r.status
        );
    }
    // Resubmitting an acknowledged one is a duplicate.
    let (reference, id) = &acked[acked.len() / 2];
    let r = request_blocking(
        &addr,
        "POST",
        "/v1/interchanges",
        Some(&token),
        &interchange(reference),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["interchange"]["id"], id.as_str());

    // The agency answers what is left; the relay publishes what is pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut granted_after = 0;
    loop {
        granted_after += answer_inbox(&addr, &agency).unwrap();
        let metrics = request_blocking(&addr, "GET", "/metrics", None, b"").unwrap();
        let text = String::from_utf8(metrics.body).unwrap();
        if text.contains("tradehub_permits_pending 0\n")
            && text.contains("tradehub_outbox_backlog 0\n")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "work left after restart:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Every acknowledged declaration ended cleared, or held for
    // examination when config/risk.toml's random sample put it in the red
    // lane.
    for (reference, id) in &acked {
        let r = request_blocking(
            &addr,
            "GET",
            &format!("/v1/interchanges/{id}"),
            Some(&token),
            b"",
        )
        .unwrap();
        let d = r.json()["declarations"][0].clone();
        let done = d["status"] == "cleared" || (d["status"] == "held" && d["lane"] == "red");
        assert!(done, "{reference} ({id}): {d}");
    }
    server.kill();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (count, declarations, permits) = rt.block_on(async {
        use tradehub::store::Table;
        let store =
            tradehub::store::Store::open(&tradehub::store::Store::embedded_url(&data).unwrap())
                .await
                .unwrap();
        let counts = (
            store.count(Table::Interchanges).await.unwrap(),
            store.count(Table::Declarations).await.unwrap(),
            store.count(Table::Permits).await.unwrap(),
        );
        assert_eq!(
            store.outbox_backlog().await.unwrap(),
            0,
            "every row relayed"
        );
        // Each permit decided exactly once: granted, with one decision event.
        for d in store.declarations(None, None, 1_000_000).await.unwrap() {
            let permits = store.permits_of(&d.id).await.unwrap();
            assert_eq!(permits.len(), 1, "{}", d.id);
            assert_eq!(permits[0].status, "granted");
            let decided = store
                .declaration_events(&d.id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.kind.starts_with("permit_granted"))
                .count();
            assert_eq!(decided, 1, "declaration {} decided {decided} times", d.id);
        }
        store.close().await;
        counts
    });
    // One declaration and one permit per interchange. Decisions answered
    // 200 are at most the permits (an answer may have been committed just
    // before the kill, its reply lost).
    assert_eq!(declarations, count);
    assert_eq!(permits, count);
    assert!(
        granted_before + granted_after <= count as usize,
        "{granted_before} decisions before the kill, {granted_after} after"
    );
    let expected = acked.len() + unknown.len();
    assert_eq!(
        count as usize,
        expected,
        "{} acknowledged + {} resubmitted",
        acked.len(),
        unknown.len()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
