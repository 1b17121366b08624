//! HTTPS: `tradehub serve --tls-cert --tls-key` serves the API over TLS
//! (rustls) to a client that trusts the certificate; a plain-HTTP client
//! gets no answer; a client that stalls its handshake holds no one else
//! up, takes a connection slot while it lasts and loses it at the
//! header deadline; a missing key stops `serve` with the file named.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get_over_tls(addr: &str, cert: &[u8], path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(cert) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

use rustls::pki_types::pem::PemObject;

/// `tradehub serve` over TLS with a fresh self-signed certificate for
/// localhost (written under `dir`) and `extra` arguments: the server, its
/// address and the certificate (PEM) a client is to trust.
fn serve_tls(dir: &std::path::Path, extra: &[&str]) -> (Server, String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = generated.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), generated.key_pair.serialize_pem()).unwrap();
    let mut args: Vec<std::ffi::OsString> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        dir.join("data").into(),
        "--tls-cert".into(),
        dir.join("cert.pem").into(),
        "--tls-key".into(),
        dir.join("key.pem").into(),
    ];
    args.extend(extra.iter().map(std::ffi::OsString::from));
    let (child, addr, _log) = common::spawn_serve_with(&args);
    (Server(child), addr, cert_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_is_served_over_tls() {
    let dir = std::env::temp_dir().join(format!("tradehub-tls-{}", uuid::Uuid::now_v7()));
    let (server, addr, cert_pem) = serve_tls(&dir, &[]);
    let _server = server;

    // A client that connects and never says anything.
    let _stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        get_over_tls(&addr, cert_pem.as_bytes(), "/healthz"),
    )
    .await
    .expect("a stalled handshake held up another client");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(&addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut out)).await;
    assert!(
        !out.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );

    // A missing key: serve refuses to start and names the file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data2"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("missing.pem"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing.pem"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A handshake in progress takes one of `--max-connections`: with one
/// slot, a client that connects and says nothing holds the next one up
/// until `--header-timeout-secs` (which bounds the handshake too) drops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_holds_a_connection_slot_until_the_header_deadline() {
    let dir = std::env::temp_dir().join(format!("tradehub-tls-slot-{}", uuid::Uuid::now_v7()));
    let (server, addr, cert_pem) = serve_tls(
        &dir,
        &["--max-connections", "1", "--header-timeout-secs", "2"],
    );
    let _server = server;
    // The one slot is free: served at once.
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        get_over_tls(&addr, cert_pem.as_bytes(), "/healthz"),
    )
    .await
    .expect("served");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Let the server take it into the slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(8),
        get_over_tls(&addr, cert_pem.as_bytes(), "/healthz"),
    )
    .await
    .expect("the stalled handshake was not dropped at the header deadline");
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        waited >= Duration::from_millis(1500),
        "served after {waited:?}: the stalled handshake took no slot"
    );
    // The stalled client was closed by the server.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(1), stalled.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `submit` and `status` reach a hub whose certificate is of the
/// operator's own authority (here self-signed) with `--ca-file`; without
/// it the certificate is not trusted (exit 2), and a file that holds no
/// certificate is named.
#[test]
fn the_cli_trusts_the_authority_of_its_ca_file() {
    let dir = std::env::temp_dir().join(format!("tradehub-tls-cli-{}", uuid::Uuid::now_v7()));
    let bin = || std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"));
    let token = common::add_partner(&dir.join("data"), "KRBROKER01");
    let (_server, addr, _cert) = serve_tls(&dir, &[]);
    let port = addr.rsplit(':').next().unwrap();
    let url = format!("https://localhost:{port}");
    let ca = dir.join("cert.pem");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact/ok/cusdec-d96b-medical-import.edi");
    let submit = |extra: &[&std::ffi::OsStr]| {
        bin()
            .arg("submit")
            .arg(&fixture)
            .args(["--url", &url, "--token", &token])
            .args(extra)
            .output()
            .unwrap()
    };

    let out = submit(&["--ca-file".as_ref(), ca.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(": validated (1 message(s)"), "{text}");
    let id = text
        .split_whitespace()
        .map(|w| w.trim_end_matches(':'))
        .find(|w| w.len() == 36 && w.matches('-').count() == 4)
        .unwrap_or_else(|| panic!("no interchange id in {text}"))
        .to_owned();
    let out = bin()
        .args(["status", &id, "--url", &url, "--token", &token, "--ca-file"])
        .arg(&ca)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // The public authorities do not vouch for it.
    let out = submit(&[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.to_lowercase().contains("certificate"), "{said}");

    // A file that holds no certificate is named.
    let key = dir.join("key.pem");
    let out = submit(&["--ca-file".as_ref(), key.as_os_str()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("key.pem") && said.contains("no CERTIFICATE"),
        "{said}"
    );
    let _ = std::fs::remove_dir_all(dir);
}
