//! Helpers shared by the integration tests: a minimal HTTP/1.1 client (so
//! tests speak real HTTP over TCP), the hub's HTTP API served in the test's
//! process ([`HttpHub`]) and the test databases of DESIGN §6.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tradehub::edifact::Limits;
use tradehub::hub::clearance::Clearance;
use tradehub::hub::{Intake, new_token};
use tradehub::store::Store;
use tradehub::timestamp::Timestamp;
use tradehub::transport::http::{self, HttpSettings};

/// A response: status, lower-cased headers and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`).
pub async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) before reading everything: ignore a reset.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_response(&raw)
}

/// Sends `head` (request line and headers, without the blank line that
/// ends them) as it is, with no body, and reads the answer.
pub async fn request_raw(addr: std::net::SocketAddr, head: &str) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(format!("{head}\r\n\r\n").as_bytes()).await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v == "chunked")
    {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// True when tests must fail rather than skip for a missing service.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A fresh PostgreSQL database for one test, dropped by [`drop_pg_database`];
/// `None` (skip) when PostgreSQL is not reachable outside CI.
pub async fn pg_database() -> Option<(String, String)> {
    use sqlx::Connection;
    let base = pg_base_url();
    let mut admin = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            if ci() {
                panic!("PostgreSQL at TRADEHUB_TEST_PG_URL is required under CI=true: {e}");
            }
            eprintln!("skipping: PostgreSQL not reachable ({e})");
            return None;
        }
    };
    let name = format!("tradehub_test_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    // Same server, other database: replace the path of the URL.
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let url = match base[scheme_end..].find('/') {
        Some(i) => format!("{}/{name}", &base[..scheme_end + i]),
        None => format!("{base}/{name}"),
    };
    Some((url, name))
}

pub async fn drop_pg_database(name: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = sqlx::PgConnection::connect(&pg_base_url()).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut admin)
            .await;
    }
}

/// The URL of the test server's administration database.
fn pg_base_url() -> String {
    std::env::var("TRADEHUB_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Runs `statements` in order on the administration database, as the
/// server's superuser (changing a test database's settings, ending its
/// sessions).
pub async fn pg_admin(statements: &[&str]) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(&pg_base_url()).await.unwrap();
    for sql in statements {
        sqlx::query(sql).execute(&mut admin).await.unwrap();
    }
}

/// Makes test database `name` refuse writes (`read_only`) or take them
/// again, as a standby does and then a promoted one: the default of new
/// sessions is changed and every open session of the database is ended,
/// so that a pool's next connections take it.
pub async fn pg_read_only(name: &str, read_only: bool) {
    let setting = if read_only {
        format!("ALTER DATABASE {name} SET default_transaction_read_only = on")
    } else {
        format!("ALTER DATABASE {name} RESET default_transaction_read_only")
    };
    let end_sessions = format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    );
    pg_admin(&[&setting, &end_sessions]).await;
}

/// Blocking variant of [`request`] for tests that drive processes from
/// threads; `None` when the connection fails (e.g. the server was killed).
pub fn request_blocking(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> Option<Response> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        return None;
    }
    Some(parse_response(&raw))
}

/// A fixture file under fixtures/edifact.
pub fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/edifact")
            .join(rel),
    )
    .unwrap()
}

/// `tradehub serve` as a child process on `data` (embedded store), port
/// chosen by the system. Returns the child, its address and a thread that
/// collects its log until it exits (so the pipe never fills up).
pub fn spawn_serve(
    data: &std::path::Path,
) -> (
    std::process::Child,
    String,
    std::thread::JoinHandle<Vec<String>>,
) {
    let mut args = vec![
        std::ffi::OsString::from("--listen"),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
    ];
    args.push(data.into());
    spawn_serve_with(&args)
}

/// `tradehub serve ARGS` as a child process, without the environment's
/// TRADEHUB_* settings. Returns the child, the address it reports and a
/// thread that collects its log until it exits.
pub fn spawn_serve_with(
    args: &[std::ffi::OsString],
) -> (
    std::process::Child,
    String,
    std::thread::JoinHandle<Vec<String>>,
) {
    use std::io::BufRead;
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"));
    cmd.arg("serve").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("TRADEHUB_") {
            cmd.env_remove(key);
        }
    }
    let mut child = cmd
        .env("TRADEHUB_LOG", "warn,tradehub::cli=info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, addr, log)
}

/// A D.96B import CUSDEC (BGM 929) from `sender` with one goods item per HS
/// code; `function` is the 1225 code (9 original, 5 amendment, 1
/// cancellation). Valid against the D.96B structure and the business rules.
pub fn cusdec(sender: &str, reference: &str, lrn: &str, function: &str, hs: &[&str]) -> Vec<u8> {
    let mut body = vec![
        "UNH+1+CUSDEC:D:96B:UN".to_owned(),
        format!("BGM+929+{lrn}+{function}"),
        "LOC+22+KRPUS:139:6".into(),
        "DTM+137:202611241030:203".into(),
        "NAD+DT+1234567890::ZZZ".into(),
        "NAD+IM+1234567890::ZZZ++HANBIT TRADING".into(),
        "UNS+D".into(),
    ];
    for (i, code) in hs.iter().enumerate() {
        body.push(format!("CST+{}+{code}", i + 1));
        body.push(format!("FTX+AAA+++GOODS ITEM {}", i + 1));
        body.push("MEA+AAE+G+KGM:10".into());
        body.push("MOA+123:100:USD".into());
    }
    body.push("UNS+S".into());
    body.push(format!("UNT+{}+1", body.len() + 1));
    let mut text =
        format!("UNA:+.? 'UNB+UNOC:3+{sender}:ZZZ+TRADEHUB:ZZZ+261124:1030+{reference}'");
    for s in body {
        text.push_str(&s);
        text.push('\'');
    }
    text.push_str(&format!("UNZ+1+{reference}'"));
    text.into_bytes()
}

/// The hub's HTTP API served in this process on an embedded store (SQLite in
/// a fresh temporary directory), on a port chosen by the system, with
/// partner accounts and their API tokens. [`HttpHub::stop`] stops it and
/// removes the directory.
#[derive(Debug)]
pub struct HttpHub {
    pub addr: SocketAddr,
    pub store: Store,
    /// The store's temporary directory.
    pub dir: PathBuf,
    /// API token by partner id.
    tokens: HashMap<String, String>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

/// How [`HttpHubBuilder::start`] sets up an [`HttpHub`]: by default no
/// partners and no routing (`Clearance::default()`).
#[derive(Debug, Default)]
pub struct HttpHubBuilder {
    /// Id, name and agency of each partner.
    partners: Vec<(String, String, Option<String>)>,
    routing: bool,
    /// The HTTP settings, when not the defaults.
    settings: Option<HttpSettings>,
    /// Risk rules (risk.toml text), when any.
    risk: Option<String>,
}

impl HttpHub {
    /// A hub routing declarations by config/agencies.toml and
    /// config/routing.toml, with `partners` (id, agency): each named after
    /// its id, bound to its agency if any.
    pub async fn start(partners: &[(&str, Option<&str>)]) -> HttpHub {
        let mut builder = HttpHub::builder().routing();
        for (id, agency) in partners {
            builder = builder.partner(id, id, *agency);
        }
        builder.start().await
    }

    pub fn builder() -> HttpHubBuilder {
        HttpHubBuilder::default()
    }

    /// The API token of partner `id`.
    pub fn token(&self, id: &str) -> &str {
        self.tokens
            .get(id)
            .unwrap_or_else(|| panic!("no partner {id} on this hub"))
    }

    /// Stops the server (which must still be running and end without
    /// error), closes the store and removes its directory.
    pub async fn stop(self) {
        self.stop.send(()).unwrap();
        self.task.await.unwrap().unwrap();
        self.store.close().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl HttpHubBuilder {
    /// A partner account `id` called `name`, bound to `agency` if any.
    pub fn partner(mut self, id: &str, name: &str, agency: Option<&str>) -> Self {
        self.partners
            .push((id.to_owned(), name.to_owned(), agency.map(str::to_owned)));
        self
    }

    /// Serves with these HTTP settings.
    pub fn settings(mut self, settings: HttpSettings) -> Self {
        self.settings = Some(settings);
        self
    }

    /// Assesses declarations and screens passenger lists by these risk
    /// rules (risk.toml text).
    pub fn risk(mut self, toml: &str) -> Self {
        self.risk = Some(toml.to_owned());
        self
    }

    /// Routes declarations by config/agencies.toml and config/routing.toml.
    pub fn routing(mut self) -> Self {
        self.routing = true;
        self
    }

    pub async fn start(self) -> HttpHub {
        let dir = std::env::temp_dir().join(format!("tradehub-http-hub-{}", uuid::Uuid::now_v7()));
        let store = Store::open(&Store::embedded_url(&dir).unwrap())
            .await
            .unwrap();
        let mut tokens = HashMap::new();
        for (id, name, agency) in &self.partners {
            let (token, hash) = new_token().unwrap();
            store
                .add_partner(id, name, &hash, Timestamp::now())
                .await
                .unwrap();
            if let Some(agency) = agency {
                let bound = store.set_partner_agency(id, Some(agency)).await.unwrap();
                assert!(bound, "partner {id} not bound to {agency}");
            }
            tokens.insert(id.clone(), token);
        }
        let mut clearance = Clearance::default();
        if let Some(risk) = &self.risk {
            clearance.risk = tradehub::risk::RiskProfile::from_toml_str("risk", risk).unwrap();
        }
        if self.routing {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
            let catalogue =
                tradehub::agency::AgencyCatalogue::load(root.join("config/agencies.toml")).unwrap();
            clearance.routing =
                tradehub::routing::Routing::load(&root.join("config/routing.toml"), &catalogue)
                    .unwrap();
            clearance.agencies = catalogue.iter().map(|a| a.code.clone()).collect();
        }
        let intake = Intake::new(store.clone(), Limits::default()).with_clearance(clearance);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(http::serve(
            listener,
            intake,
            self.settings.unwrap_or_default(),
            async move {
                let _ = stopped.await;
            },
        ));
        HttpHub {
            addr,
            store,
            dir,
            tokens,
            stop,
            task,
        }
    }
}

/// Registers KRBROKER01 (the UNB sender of the fixtures) in `store`, with
/// an intake over the store.
pub async fn broker_intake(store: &Store) -> (Intake, tradehub::store::Partner) {
    store
        .add_partner("KRBROKER01", "Hanbit", "hash", Timestamp::now())
        .await
        .unwrap();
    let partner = store.partner("KRBROKER01").await.unwrap().unwrap();
    (Intake::new(store.clone(), Limits::default()), partner)
}

/// Makes the embedded store in `dir` refuse, for good, to store an
/// interchange with control reference `reference`: a trigger aborts its
/// insert with "refused by the test" (a fault the hub cannot retry away).
/// The trigger is removed with `DROP TRIGGER refuse_poison` on the pool returned.
pub async fn refuse_interchange(dir: &std::path::Path, reference: &str) -> sqlx::SqlitePool {
    refuse_interchange_with(dir, reference, "refused by the test").await
}

/// As [`refuse_interchange`], failing with `message`: "database is locked"
/// makes the failure one that may pass (retryable) until the test drops
/// the trigger `refuse_poison`.
pub async fn refuse_interchange_with(
    dir: &std::path::Path,
    reference: &str,
    message: &str,
) -> sqlx::SqlitePool {
    let db = sqlx::SqlitePool::connect(&tradehub::store::Store::embedded_url(dir).unwrap())
        .await
        .unwrap();
    sqlx::query(&format!(
        "CREATE TRIGGER refuse_poison BEFORE INSERT ON interchanges \
         WHEN NEW.control_reference = '{reference}' \
         BEGIN SELECT RAISE(ABORT, '{message}'); END"
    ))
    .execute(&db)
    .await
    .unwrap();
    db
}

/// The test broker's URL (TRADEHUB_TEST_AMQP_URL).
pub fn amqp_url() -> String {
    std::env::var("TRADEHUB_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

/// A connection to the test broker; `None` (skip) when it is not
/// reachable outside CI, a failed test under CI=true.
pub async fn broker() -> Option<lapin::Connection> {
    // Bounded: a broker that takes the connection but never finishes the
    // handshake (busy deleting queues, say) fails the test instead of
    // holding it for ever.
    let url = amqp_url();
    let connect = lapin::Connection::connect(&url, lapin::ConnectionProperties::default());
    let connected = tokio::time::timeout(std::time::Duration::from_secs(60), connect)
        .await
        .unwrap_or_else(|_| {
            Err(lapin::Error::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no AMQP handshake within 60 s",
            )))
        });
    match connected {
        Ok(c) => Some(c),
        Err(e) => {
            if ci() {
                panic!("RabbitMQ at TRADEHUB_TEST_AMQP_URL is required under CI=true: {e}");
            }
            eprintln!("skipping: RabbitMQ not reachable ({e})");
            None
        }
    }
}

/// A queue's state as the broker reports it to a passive declare
/// (messages ready, consumers); the queue must exist.
pub async fn queue_state(ch: &lapin::Channel, queue: &str) -> lapin::Queue {
    ch.queue_declare(
        queue.into(),
        lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        lapin::types::FieldTable::default(),
    )
    .await
    .unwrap()
}

/// Waits up to 10 s for one message on `queue` and acknowledges it.
pub async fn next_message(ch: &lapin::Channel, queue: &str) -> lapin::message::BasicGetMessage {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(m) = ch
            .basic_get(queue.into(), lapin::options::BasicGetOptions::default())
            .await
            .unwrap()
        {
            m.delivery
                .acker
                .ack(lapin::options::BasicAckOptions::default())
                .await
                .unwrap();
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing arrived on {queue}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

/// The hub process, killed with SIGKILL when dropped (also when a failed
/// assertion unwinds, so no server outlives the test).
pub struct Server(pub std::process::Child);

impl Server {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last line of a successful command's output (`partner add` prints
/// the new token there).
/// `tradehub partner add ID --name Broker --data-dir DATA`: the new
/// partner's API token.
pub fn add_partner(data: &std::path::Path, id: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["partner", "add", id, "--name", "Broker", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    token_of(out)
}

pub fn token_of(out: std::process::Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

/// A TCP forwarder in front of a real service that a test can cut, as a
/// network outage would: [`TcpGate::cut`] closes every forwarded
/// connection and each new one as soon as it is accepted, until
/// [`TcpGate::restore`]. The service itself keeps running.
pub struct TcpGate {
    pub addr: std::net::SocketAddr,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
    cuts: tokio::sync::watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpGate {
    /// Starts forwarding from a loopback port of its own to `target`.
    pub async fn start(target: std::net::SocketAddr) -> TcpGate {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cuts, _) = tokio::sync::watch::channel(0u64);
        let (gate_open, gate_cuts) = (open.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !gate_open.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let mut cut = gate_cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        TcpGate {
            addr,
            open,
            cuts,
            task,
        }
    }

    /// Closes every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Drop for TcpGate {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

/// `url` (scheme://user@host:port/path) with its host and port replaced
/// by `addr`.
pub fn url_through(url: &str, addr: std::net::SocketAddr) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    format!(
        "{}{}{addr}{}",
        &url[..scheme_end],
        &authority[..host_start],
        &rest[authority_end..]
    )
}

/// The socket address of `url`'s host and port (5432 when none is given).
pub fn pg_addr_of(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host_port = &authority[authority.rfind('@').map_or(0, |i| i + 1)..];
    let with_port = if host_port
        .rsplit(':')
        .next()
        .is_some_and(|p| p.parse::<u16>().is_ok())
        && host_port.contains(':')
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    with_port.to_socket_addrs().unwrap().next().unwrap()
}
