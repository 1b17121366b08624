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

/// A CUSDEC-like interchange of `items` goods items with a unique reference.
pub fn interchange(sender: &str, reference: &str, items: usize) -> Vec<u8> {
    // In the order of the D.96B CUSDEC segment table, so that the hub's
    // structure validation accepts it.
    let mut segs = vec![
        "UNH+1+CUSDEC:D:96B:UN".to_owned(),
        format!("BGM+830+{reference}+9"),
        "LOC+22+KRPUS:139:6".into(),
        "DTM+137:202611241030:203".into(),
        "NAD+DT+1234567890::ZZZ".into(),
        "MOA+39:125000.50:USD".into(),
        "UNS+D".into(),
    ];
    for i in 1..=items {
        segs.push(format!("CST+{i}+847989"));
        segs.push(format!("FTX+AAA+++MACHINE PARTS ITEM {i}"));
        segs.push(format!("MEA+AAE+G+KGM:{}.5", 1000 + i));
        segs.push(format!("MOA+123:{}.25:USD", 50_000 + i));
    }
    segs.push("UNS+S".into());
    segs.push(format!("UNT+{}+1", segs.len() + 1));
    let mut out = format!("UNA:+.? 'UNB+UNOC:3+{sender}:ZZZ+TRADEHUB:ZZZ+261124:1030+{reference}'");
    for s in segs {
        out.push_str(&s);
        out.push('\'');
    }
    out.push_str(&format!("UNZ+1+{reference}'"));
    out.into_bytes()
}

/// One HTTP/1.1 POST on a fresh connection; returns the status code.
async fn post(host: &str, token: &str, body: &[u8]) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let head = format!(
        "POST /v1/interchanges HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
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
    Ok(status)
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
    let run_id =
        crate::timestamp::Timestamp::now().edifact_time() + &std::process::id().to_string();
    if let (Some(url), Some(token)) = (&opts.url, &opts.token) {
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let (token, sender, run) = (token.clone(), opts.sender.clone(), run_id.clone());
        let (lat, errors, elapsed) =
            run_senders(opts.senders, opts.duration, opts.rate, move |s, n| {
                let body = interchange(&sender, &format!("L{run}{s:02}{n:06}"), 5);
                let (host, token) = (host.clone(), token.clone());
                async move { matches!(post(&host, &token, &body).await, Ok(202)) }
            })
            .await;
        out.push(figures(
            "hub HTTP submit → 202 (committed)",
            lat,
            errors,
            elapsed,
        ));
    }
    if let Some(pg) = &opts.pg_url {
        out.push(raw_postgres(pg, opts.senders, opts.duration).await);
    }
    if let Some(amqp) = &opts.amqp_url {
        out.push(raw_rabbitmq(amqp, opts.senders, opts.duration).await);
    }
    out
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
    fn generated_interchanges_are_valid() {
        let parsed = crate::edifact::parse(&interchange("KRBROKER01", "L0001", 5));
        assert!(parsed.is_valid(), "{:#?}", parsed.issues);
        assert_eq!(parsed.interchange.counts.messages, 1);
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
