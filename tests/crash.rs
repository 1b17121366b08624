//! Crash safety of intake: under continuous submissions from several
//! clients the hub process is killed with SIGKILL and restarted on the same
//! embedded store; every interchange that was acknowledged (HTTP 202) must
//! exist exactly once afterwards, and resubmitting anything whose answer was
//! lost must not store it twice.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::request_blocking;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradehub"))
}

fn start(data: &Path) -> (Child, String) {
    let (child, addr, _log) = common::spawn_serve(data);
    (child, addr)
}

fn interchange(template: &str, reference: &str) -> Vec<u8> {
    template.replace("20261124001", reference).into_bytes()
}

#[test]
fn kill_9_loses_no_acknowledged_interchange() {
    let dir = std::env::temp_dir().join(format!("tradehub-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data: PathBuf = dir.join("data");
    let out = bin()
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
        .unwrap();
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();

    let (mut server, addr) = start(&data);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default(); // (reference, id)
    let unknown: Arc<Mutex<Vec<String>>> = Arc::default(); // answer lost
    let running = Arc::new(AtomicBool::new(true));
    let mut clients = Vec::new();
    for t in 0..4 {
        let (acked, unknown, running) = (acked.clone(), unknown.clone(), running.clone());
        let (addr, token, template) = (addr.clone(), token.clone(), template.clone());
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
                    &interchange(&template, &reference),
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
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
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
            &interchange(&template, reference),
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
        &interchange(&template, reference),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["interchange"]["id"], id.as_str());

    // Exactly one row per reference.
    let metrics = request_blocking(&addr, "GET", "/metrics", None, b"").unwrap();
    assert_eq!(metrics.status, 200);
    server.kill().unwrap();
    server.wait().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let count = rt.block_on(async {
        let store =
            tradehub::store::Store::open(&tradehub::store::Store::embedded_url(&data).unwrap())
                .await
                .unwrap();
        let n = store
            .count(tradehub::store::Table::Interchanges)
            .await
            .unwrap();
        store.close().await;
        n
    });
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
