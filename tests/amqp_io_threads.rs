//! The AMQP client's connection attempts to a broker that never answers
//! end with their sockets and I/O threads. In a test binary of its own: it
//! counts the process's `lapin-io-loop` threads, which the other AMQP tests'
//! connections would add to when run in the same process (`cargo test`
//! runs a binary's tests on threads of one process).

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use tradehub::edifact::Limits;
use tradehub::hub::Intake;
use tradehub::store::Store;
use tradehub::transport::amqp::{self, AmqpSettings};

/// Each connection attempt given up on is closed: a broker that takes the
/// connection and never answers sees the socket shut once the connect
/// timeout has run out, and the client's I/O thread of that attempt ends.
/// (Every attempt used to keep its socket and its thread for good, about
/// three a minute for as long as such a broker lasted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_attempt_given_up_on_is_closed() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::AsyncReadExt;
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let closed = std::sync::Arc::new(AtomicUsize::new(0));
    let (counted, ended) = (accepted.clone(), closed.clone());
    let held = tokio::spawn(async move {
        while let Ok((mut connection, _)) = silent.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            let ended = ended.clone();
            // Reads what the client sends (its protocol header) and
            // never answers, until the client closes.
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = connection.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
                ended.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    let io_threads = || {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.unwrap().path().join("comm")).ok())
            .filter(|name| name.trim() == "lapin-io-loop")
            .count()
    };
    let dir = std::env::temp_dir().join(format!(
        "tradehub-amqp-io-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let store = Store::open(&Store::embedded_url(&dir).unwrap())
        .await
        .unwrap();
    let intake = Intake::new(store.clone(), Limits::default());
    let mut settings = AmqpSettings::new(format!("amqp://guest:guest@{addr}/%2f"));
    settings.connect_timeout = Duration::from_millis(300);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let consumer = tokio::spawn(amqp::run(intake.clone(), settings, stopped));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while closed.load(Ordering::SeqCst) < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} attempt(s) made, {} closed",
            accepted.load(Ordering::SeqCst),
            closed.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), consumer)
        .await
        .unwrap()
        .unwrap();
    // Every attempt was given up on: each is closed and its thread gone.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while closed.load(Ordering::SeqCst) < accepted.load(Ordering::SeqCst) || io_threads() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} attempt(s), {} closed, {} I/O thread(s) left",
            accepted.load(Ordering::SeqCst),
            closed.load(Ordering::SeqCst),
            io_threads()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    held.abort();
    store.close().await;
    std::fs::remove_dir_all(dir).unwrap();
}
