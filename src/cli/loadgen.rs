//! `tradehub loadgen`: drives concurrent senders against a running hub over
//! HTTP and AMQP, and measures in the same run the raw rates of the
//! database and the broker it runs on, so that the hub's figures can be read
//! against what the machine can do at all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What to drive and for how long.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Hub base URL (http://host:port) for HTTP senders.
    pub url: Option<String>,
    pub token: Option<String>,
    /// Broker URL for AMQP senders (partner = the broker user) and for the
    /// raw confirmed-publish reference.
    pub amqp_url: Option<String>,
    /// Sender id in UNB (must be the partner of the token / broker user).
    pub sender: String,
    /// PostgreSQL URL for the raw commit-rate reference.
    pub pg_url: Option<String>,
    pub senders: usize,
    pub duration: Duration,
    /// Requests per second per sender; 0 = as fast as possible.
    pub rate: f64,
    /// An agency account's token: the declarations then need that agency's
    /// permit (goods item 1 is a medical device, HS 901890, which
    /// config/routing.toml sends to KMDIA) and a simulated agency grants
    /// every request from its HTTP inbox, timing submit → cleared.
    pub agency_token: Option<String>,
    /// The agency the simulated desk answers for.
    pub agency: String,
    /// The hub's UNB recipient id (its `--hub-id`).
    pub hub_id: String,
    /// The hub's `--amqp-prefix`: the AMQP senders publish to
    /// `<prefix>tradehub.inbound`.
    pub amqp_prefix: String,
    /// With `amqp_url`: AMQP senders publish to `tradehub.inbound` as this
    /// broker user (the hub partner of the same id) and time publish →
    /// CONTRL on their `reply_to` queue. Several users, comma-separated
    /// (`name` or `name:password`; without a password the URL's), share
    /// the senders out, each user on its own connection.
    pub amqp_user: Option<String>,
}

/// Throughput and latency of one kind of traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub name: String,
    pub operations: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

fn figures(name: &str, mut lat: Vec<Duration>, errors: u64, elapsed: Duration) -> Figures {
    lat.sort_unstable();
    let pick = |q: f64| {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 - 1.0) * q).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let secs = elapsed.as_secs_f64().max(1e-9);
    Figures {
        name: name.to_owned(),
        operations: lat.len() as u64,
        errors,
        seconds: secs,
        per_second: lat.len() as f64 / secs,
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        max_ms: lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    }
}

/// A D.96B import CUSDEC of `items` goods items whose reference is also
/// its LRN, clean under the business rules; with `permit`, goods item 1 is
/// a medical device (HS 901890) that needs KMDIA's permit.
pub fn interchange(sender: &str, reference: &str, items: usize) -> Vec<u8> {
    declaration(sender, "TRADEHUB", reference, items, false)
}

fn declaration(
    sender: &str,
    recipient: &str,
    reference: &str,
    items: usize,
    permit: bool,
) -> Vec<u8> {
    // In the order of the D.96B CUSDEC segment table, so that the hub's
    // structure validation accepts it.
    let mut segs = vec![
        "UNH+1+CUSDEC:D:96B:UN".to_owned(),
        format!("BGM+929+{reference}+9"),
        "LOC+22+KRPUS:139:6".into(),
        "DTM+137:202611241030:203".into(),
        "NAD+DT+1234567890::ZZZ".into(),
        "NAD+IM+1234567890::ZZZ++HANBIT TRADING".into(),
        "UNS+D".into(),
    ];
    for i in 1..=items {
        let hs = if permit && i == 1 { "901890" } else { "847989" };
        segs.push(format!("CST+{i}+{hs}"));
        segs.push(format!("FTX+AAA+++MACHINE PARTS ITEM {i}"));
        segs.push(format!("MEA+AAE+G+KGM:{}.5", 1000 + i));
        segs.push(format!("MOA+123:{}.25:USD", 50_000 + i));
    }
    segs.push("UNS+S".into());
    segs.push(format!("UNT+{}+1", segs.len() + 1));
    let mut out =
        format!("UNA:+.? 'UNB+UNOC:3+{sender}:ZZZ+{recipient}:ZZZ+261124:1030+{reference}'");
    for s in segs {
        out.push_str(&s);
        out.push('\'');
    }
    out.push_str(&format!("UNZ+1+{reference}'"));
    out.into_bytes()
}

/// One submission on a fresh connection: true when the hub answered 202
/// with the interchange validated (a rejected one counts as an error, so
/// that a broken generator cannot pass for throughput).
async fn post(host: &str, token: &str, body: &[u8]) -> std::io::Result<bool> {
    let (status, answer) = call(host, "POST", "/v1/interchanges", token, body).await?;
    Ok(status == 202 && memchr::memmem::find(&answer, br#""status":"validated""#).is_some())
}

/// A run id of 4 characters (A–Z, 0–9) from the clock and the process id,
/// so that references of concurrent or successive runs differ.
fn run_id() -> String {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        ^ (u64::from(std::process::id()) << 20);
    (0..4)
        .map(|i| {
            let at = ((seed / 36u64.pow(i)) % 36) as usize;
            DIGITS.get(at).map_or('0', |b| char::from(*b))
        })
        .collect()
}

/// One HTTP/1.1 request on a fresh connection: status and body.
async fn call(
    host: &str,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::with_capacity(2048);
    stream.read_to_end(&mut raw).await?;
    let status = raw
        .get(9..12)
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .and_then(|at| raw.get(at + 4..))
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    Ok((status, body))
}

/// Submit times by LRN, shared by the senders and the simulated agency.
type Submitted = Arc<std::sync::Mutex<std::collections::HashMap<String, Instant>>>;

/// The simulated agency desk: grants every request of its inbox until
/// `stop` is set and nothing it waits for is left (or `drain` passed);
/// returns the submit → cleared latencies and the failed decisions.
async fn agency_desk(
    host: String,
    token: String,
    agency: String,
    submitted: Submitted,
    stop: Arc<std::sync::atomic::AtomicBool>,
    drain: Duration,
) -> (Vec<Duration>, u64) {
    let mut cleared = Vec::new();
    let mut errors = 0u64;
    let mut stopped_at: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let since = *stopped_at.get_or_insert_with(Instant::now);
            let waiting = submitted.lock().map(|m| m.len()).unwrap_or(0);
            if waiting == 0 || since.elapsed() > drain {
                errors += waiting as u64;
                return (cleared, errors);
            }
        }
        // Only the permits of its own declarations: anyone else's in the
        // agency's inbox are real and not the load generator's to grant
        // (one whose submission is not yet answered is taken at a later
        // look). The inbox is read page after page until a page holds
        // some of its own or there is no page after it.
        let mut permits: Vec<(String, String)> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after
                .as_deref()
                .map(|a| format!("&after={a}"))
                .unwrap_or_default();
            let path = format!("/v1/agencies/{agency}/inbox?limit=200{cursor}");
            let page = match call(&host, "GET", &path, &token, b"").await {
                Ok((200, body)) => serde_json::from_slice::<serde_json::Value>(&body).ok(),
                _ => None,
            };
            let Some(page) = page else {
                errors += 1;
                break;
            };
            let listed = page.get("permits").and_then(|p| p.as_array());
            permits.extend(
                listed
                    .into_iter()
                    .flatten()
                    .filter_map(|p| {
                        let id = p.pointer("/permit/id")?.as_str()?.to_owned();
                        let lrn = p.pointer("/request/declaration/lrn")?.as_str()?.to_owned();
                        Some((id, lrn))
                    })
                    .filter(|(_, lrn)| submitted.lock().is_ok_and(|m| m.contains_key(lrn))),
            );
            after = page.get("next").and_then(|n| n.as_str()).map(str::to_owned);
            if !permits.is_empty() || after.is_none() {
                break;
            }
        }
        if permits.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        let mut answers = Vec::new();
        for (id, lrn) in permits {
            let (host, token) = (host.clone(), token.clone());
            answers.push(tokio::spawn(async move {
                let body = br#"{"outcome": "granted", "reasons": ["loadgen"]}"#;
                let path = format!("/v1/permits/{id}/decision");
                let r = call(&host, "POST", &path, &token, body).await;
                let cleared = matches!(&r, Ok((200, b)) if String::from_utf8_lossy(b).contains("\"cleared\""));
                (lrn, cleared, matches!(r, Ok((200 | 409, _))))
            }));
        }
        for a in answers {
            match a.await {
                Ok((lrn, true, _)) => {
                    if let Some(t) = submitted.lock().ok().and_then(|mut m| m.remove(&lrn)) {
                        cleared.push(t.elapsed());
                    }
                }
                Ok((lrn, false, true)) => {
                    // Answered, but not cleared (e.g. held for examination
                    // by the random red-lane sample): not waited for.
                    if let Ok(mut m) = submitted.lock() {
                        m.remove(&lrn);
                    }
                }
                _ => errors += 1,
            }
        }
    }
}

async fn run_senders<F, Fut>(
    senders: usize,
    duration: Duration,
    rate: f64,
    op: F,
) -> (Vec<Duration>, u64, Duration)
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..senders {
        let (op, errors) = (op.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0u64;
            let gap = (rate > 0.0).then(|| Duration::from_secs_f64(1.0 / rate));
            while start.elapsed() < duration {
                let t = Instant::now();
                if op(s, n).await {
                    lat.push(t.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
                if let Some(gap) = gap {
                    let next = start + gap.mul_f64(n as f64);
                    tokio::time::sleep_until(next.into()).await;
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        if let Ok(lat) = t.await {
            all.extend(lat);
        }
    }
    (all, errors.load(Ordering::Relaxed), start.elapsed())
}

/// Runs every load the options ask for, in sequence, and returns the figures.
pub async fn run(opts: LoadOptions) -> Vec<Figures> {
    let mut out = Vec::new();
    let run_id = run_id();
    if let (Some(url), Some(token)) = (&opts.url, &opts.token) {
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let submitted: Submitted = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let permit = opts.agency_token.is_some();
        let desk = opts.agency_token.clone().map(|agency_token| {
            tokio::spawn(agency_desk(
                host.clone(),
                agency_token,
                opts.agency.clone(),
                submitted.clone(),
                stop.clone(),
                Duration::from_secs(60),
            ))
        });
        let (token, sender, run) = (token.clone(), opts.sender.clone(), run_id.clone());
        let hub_id = opts.hub_id.clone();
        let waiting = submitted.clone();
        let (lat, errors, elapsed) =
            run_senders(opts.senders, opts.duration, opts.rate, move |s, n| {
                // UNB 0020 is an..14: L, the run, the sender, the count.
                let lrn = format!("L{run}{:02}{:07}", s % 100, n % 10_000_000);
                let body = declaration(&sender, &hub_id, &lrn, 5, permit);
                let (host, token, waiting) = (host.clone(), token.clone(), waiting.clone());
                async move {
                    if permit && let Ok(mut m) = waiting.lock() {
                        m.insert(lrn.clone(), Instant::now());
                    }
                    let ok = matches!(post(&host, &token, &body).await, Ok(true));
                    if !ok && let Ok(mut m) = waiting.lock() {
                        m.remove(&lrn);
                    }
                    ok
                }
            })
            .await;
        out.push(figures(
            "hub HTTP submit → 202 (committed)",
            lat,
            errors,
            elapsed,
        ));
        stop.store(true, Ordering::Relaxed);
        if let Some(desk) = desk {
            let started = Instant::now();
            if let Ok((cleared, errors)) = desk.await {
                // Throughput of the whole workflow: declarations cleared
                // over the time from the first submit to the last clearance.
                let mut f = figures(
                    &format!("hub submit → cleared ({} grants over HTTP)", opts.agency),
                    cleared,
                    errors,
                    elapsed + started.elapsed(),
                );
                f.seconds = (elapsed + started.elapsed()).as_secs_f64();
                out.push(f);
            }
        }
    }
    if let (Some(amqp), Some(user)) = (&opts.amqp_url, &opts.amqp_user) {
        out.push(amqp_senders(amqp, user, &run_id, &opts).await);
    }
    if let Some(pg) = &opts.pg_url {
        out.push(raw_postgres(pg, opts.senders, opts.duration).await);
    }
    if let Some(amqp) = &opts.amqp_url {
        out.push(raw_rabbitmq(amqp, opts.senders, opts.duration).await);
    }
    out
}

/// One AMQP sender: its channel and the consumer of its reply queue.
type AmqpSender = tokio::sync::Mutex<Option<(lapin::Channel, lapin::Consumer, String)>>;

/// Partners publishing over AMQP: each sender publishes a declaration to
/// `tradehub.inbound` (persistent, confirmed, `user_id` = the broker user,
/// `reply_to` = its own exclusive queue) and waits for the hub's CONTRL;
/// an answer whose `x-tradehub-status` is not `validated` is an error. The
/// declarations need no permit (the agency desk serves the HTTP phase).
async fn amqp_senders(url: &str, user: &str, run: &str, opts: &LoadOptions) -> Figures {
    use futures_lite::StreamExt;
    use lapin::options::{
        BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let name = "hub AMQP publish → CONTRL (committed)";
    // Each broker user on its own connection (RabbitMQ checks user_id
    // against the connection's user).
    let mut users: Vec<(String, lapin::Connection)> = Vec::new();
    for entry in user.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let (name_of, password) = match entry.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (entry, None),
        };
        let url = match password {
            Some(p) => with_credentials(url, name_of, p),
            None => url.to_owned(),
        };
        let Ok(conn) =
            lapin::Connection::connect(&url, lapin::ConnectionProperties::default()).await
        else {
            return figures(
                &format!("{name} (unreachable as {name_of})"),
                Vec::new(),
                1,
                Duration::ZERO,
            );
        };
        users.push((name_of.to_owned(), conn));
    }
    if users.is_empty() {
        return figures(&format!("{name} (no user)"), Vec::new(), 1, Duration::ZERO);
    }
    let mut senders: Vec<AmqpSender> = Vec::new();
    let mut sender_users: Vec<String> = Vec::new();
    for s in 0..opts.senders {
        let mut slot = None;
        let Some((user_of, conn)) = users.get(s % users.len()) else {
            break;
        };
        sender_users.push(user_of.clone());
        if let Ok(ch) = conn.create_channel().await
            && ch
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .is_ok()
            && let Ok(q) = ch
                .queue_declare(
                    "".into(),
                    QueueDeclareOptions {
                        exclusive: true,
                        auto_delete: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
            && let Ok(consumer) = ch
                .basic_consume(
                    q.name().clone(),
                    "loadgen".into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
        {
            slot = Some((ch, consumer, q.name().as_str().to_owned()));
        }
        senders.push(tokio::sync::Mutex::new(slot));
    }
    let senders = Arc::new(senders);
    let sender_users = Arc::new(sender_users);
    // The agency desk serves the HTTP phase; these declarations need no
    // permit, so that none is left waiting.
    let (run, permit) = (run.to_owned(), false);
    let hub_id = opts.hub_id.clone();
    let exchange = format!("{}tradehub.inbound", opts.amqp_prefix);
    let (lat, errors, elapsed) =
        run_senders(opts.senders, opts.duration, opts.rate, move |s, n| {
            let lrn = format!("A{run}{:02}{:07}", s % 100, n % 10_000_000);
            let user = sender_users.get(s).cloned().unwrap_or_default();
            let body = declaration(&user, &hub_id, &lrn, 5, permit);
            let exchange = exchange.clone();
            let senders = senders.clone();
            async move {
                let Some(slot) = senders.get(s) else {
                    return false;
                };
                let mut guard = slot.lock().await;
                let Some((ch, consumer, reply)) = guard.as_mut() else {
                    return false;
                };
                let props = lapin::BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_user_id(user.as_str().into())
                    .with_reply_to(reply.as_str().into())
                    .with_message_id(lrn.as_str().into());
                let published = ch
                    .basic_publish(
                        exchange.as_str().into(),
                        "inbound".into(),
                        BasicPublishOptions::default(),
                        &body,
                        props,
                    )
                    .await;
                let confirmed = match published {
                    Ok(confirm) => confirm.await.map(|c| c.is_ack()).unwrap_or(false),
                    Err(_) => false,
                };
                if !confirmed {
                    return false;
                }
                let answer = tokio::time::timeout(Duration::from_secs(30), consumer.next()).await;
                let Ok(Some(Ok(delivery))) = answer else {
                    return false;
                };
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                let status = delivery
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-tradehub-status").cloned());
                matches!(status, Some(AMQPValue::LongString(s)) if s.to_string() == "validated")
            }
        })
        .await;
    for (_, conn) in &users {
        let _ = conn.close(200, "done".into()).await;
    }
    figures(name, lat, errors, elapsed)
}

/// `url` (`amqp://user:password@host…`) with other credentials.
fn with_credentials(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
    let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}")
}

/// Raw PostgreSQL: one small INSERT + COMMIT per operation, `senders`
/// connections, on a temporary table.
async fn raw_postgres(url: &str, senders: usize, duration: Duration) -> Figures {
    use sqlx::Connection;
    let table = format!("loadgen_raw_{}", std::process::id());
    let Ok(mut admin) = sqlx::PgConnection::connect(url).await else {
        return figures(
            "raw PostgreSQL INSERT+COMMIT (unreachable)",
            Vec::new(),
            1,
            Duration::ZERO,
        );
    };
    let _ = sqlx::query(&format!(
        "CREATE TABLE IF NOT EXISTS {table} (id BIGSERIAL PRIMARY KEY, body BYTEA NOT NULL)"
    ))
    .execute(&mut admin)
    .await;
    let body = interchange("RAW", "RAW", 5);
    let (url, t2) = (url.to_owned(), table.clone());
    let conns: Arc<Vec<tokio::sync::Mutex<Option<sqlx::PgConnection>>>> = {
        let mut v = Vec::new();
        for _ in 0..senders {
            v.push(tokio::sync::Mutex::new(
                sqlx::PgConnection::connect(&url).await.ok(),
            ));
        }
        Arc::new(v)
    };
    let (lat, errors, elapsed) = run_senders(senders, duration, 0.0, move |s, _| {
        let (conns, body, table) = (conns.clone(), body.clone(), t2.clone());
        async move {
            let Some(slot) = conns.get(s) else {
                return false;
            };
            let mut guard = slot.lock().await;
            let Some(conn) = guard.as_mut() else {
                return false;
            };
            let Ok(mut tx) = conn.begin().await else {
                return false;
            };
            let ok = sqlx::query(&format!("INSERT INTO {table} (body) VALUES ($1)"))
                .bind(body)
                .execute(&mut *tx)
                .await
                .is_ok();
            ok && tx.commit().await.is_ok()
        }
    })
    .await;
    let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {table}"))
        .execute(&mut admin)
        .await;
    figures("raw PostgreSQL INSERT+COMMIT", lat, errors, elapsed)
}

/// Raw RabbitMQ: persistent publish to a quorum queue, waiting for each
/// confirm, one channel per sender.
async fn raw_rabbitmq(url: &str, senders: usize, duration: Duration) -> Figures {
    use lapin::options::{
        BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::{AMQPValue, FieldTable};
    let Ok(conn) = lapin::Connection::connect(url, lapin::ConnectionProperties::default()).await
    else {
        return figures(
            "raw RabbitMQ confirmed publish (unreachable)",
            Vec::new(),
            1,
            Duration::ZERO,
        );
    };
    let queue = format!("loadgen.raw.{}", std::process::id());
    let mut args = FieldTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    let mut channels = Vec::new();
    for _ in 0..senders {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch.confirm_select(ConfirmSelectOptions::default()).await;
            channels.push(ch);
        }
    }
    let Some(first) = channels.first().cloned() else {
        return figures(
            "raw RabbitMQ confirmed publish (no channel)",
            Vec::new(),
            1,
            Duration::ZERO,
        );
    };
    let _ = first
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await;
    let body = interchange("RAW", "RAW", 5);
    let channels = Arc::new(channels);
    let q = queue.clone();
    let (lat, errors, elapsed) = run_senders(senders, duration, 0.0, move |s, _| {
        let (channels, body, q) = (channels.clone(), body.clone(), q.clone());
        async move {
            let Some(ch) = channels.get(s) else {
                return false;
            };
            let props = lapin::BasicProperties::default().with_delivery_mode(2);
            match ch
                .basic_publish(
                    "".into(),
                    q.as_str().into(),
                    BasicPublishOptions::default(),
                    &body,
                    props,
                )
                .await
            {
                Ok(confirm) => confirm.await.map(|c| c.is_ack()).unwrap_or(false),
                Err(_) => false,
            }
        }
    })
    .await;
    let _ = first
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "done".into()).await;
    figures("raw RabbitMQ confirmed publish", lat, errors, elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_replaced_in_the_broker_url() {
        assert_eq!(
            with_credentials("amqp://guest:guest@127.0.0.1:5672/%2f", "lg1", "pw"),
            "amqp://lg1:pw@127.0.0.1:5672/%2f"
        );
        assert_eq!(
            with_credentials("amqp://127.0.0.1:5672", "lg1", "pw"),
            "amqp://lg1:pw@127.0.0.1:5672"
        );
    }

    #[test]
    fn generated_interchanges_are_valid_and_pass_the_rules() {
        let directories = crate::schema::Directories::global();
        for permit in [false, true] {
            let bytes = declaration("KRBROKER01", "TRADEHUB", "L0001", 5, permit);
            let (parsed, mapped) =
                crate::mapping::edifact::parse_and_map(&bytes, &directories).unwrap_or_default();
            assert!(parsed.is_valid(), "{:#?}", parsed.issues);
            assert_eq!(parsed.interchange.counts.messages, 1);
            let canonical = mapped.first().and_then(|m| m.canonical.clone());
            let d: crate::model::Declaration =
                serde_json::from_value(canonical.unwrap_or_default())
                    .unwrap_or_else(|e| unreachable!("{e}"));
            let settings = crate::rules::RuleSettings::at(crate::timestamp::Timestamp::now());
            assert!(crate::rules::check(&d, &settings).is_empty());
            assert_eq!(d.lrn, "L0001");
        }
    }

    #[test]
    fn references_fit_the_interchange_control_reference() {
        let run = run_id();
        assert_eq!(run.len(), 4);
        let reference = format!("L{run}{:02}{:07}", 99, 9_999_999);
        assert!(reference.len() <= 14, "{reference}");
        let parsed =
            crate::edifact::parse(&declaration("LOADGEN", "TRADEHUB", &reference, 5, true));
        assert!(parsed.is_valid(), "{:#?}", parsed.issues);
    }

    #[test]
    fn percentiles() {
        let lat: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let f = figures("x", lat, 2, Duration::from_secs(2));
        assert_eq!(f.operations, 100);
        assert_eq!(f.errors, 2);
        assert!((f.per_second - 50.0).abs() < 1e-9);
        assert!((f.p50_ms - 51.0).abs() < 1e-9 || (f.p50_ms - 50.0).abs() < 1e-9);
        assert!((f.p99_ms - 99.0).abs() < 1.01);
        assert!((f.max_ms - 100.0).abs() < 1e-9);
    }
}
