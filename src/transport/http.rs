//! The HTTP adapter: partners submit interchanges and read their status;
//! operators probe health. Errors are RFC 9457 problem details.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;

use crate::hub::clearance::CUSTOMS_ROLE;
use crate::hub::permits::{DecisionError, DecisionOutcome};
use crate::hub::{Intake, RefusalReason, Submission};
use crate::store::{Partner, StoreError};
use crate::timestamp::Timestamp;

/// Settings of the HTTP adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once; beyond, a request is answered 503 with
    /// `Retry-After` at once instead of waiting (each may hold a body of up
    /// to `max_body_bytes`).
    pub max_in_flight: usize,
    /// Longest a request may take, its body's upload included; beyond, it
    /// is answered 408 (a slow or stalled upload holds no resources for
    /// good). A submission cut off after its commit is answered again, as
    /// a duplicate, when the client retries.
    pub request_timeout: std::time::Duration,
    /// Longest a connection may take to send a request's headers (over
    /// TLS, also to complete its handshake), and longest an idle
    /// keep-alive connection is kept; beyond, the
    /// connection is closed (a client that trickles its headers, or opens
    /// connections and sends nothing, holds nothing for good).
    pub header_timeout: std::time::Duration,
    /// Connections served at once; further ones wait in the listen backlog
    /// until one closes (file descriptors stay available for the store and
    /// the broker).
    pub max_connections: usize,
    /// How long requests refused 401 are tallied per client address
    /// before the tally is recorded in `refusals` (see [`Unauthorized`]).
    pub unauthorized_window: std::time::Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            max_body_bytes: 16 * 1024 * 1024,
            max_in_flight: 256,
            request_timeout: std::time::Duration::from_secs(60),
            header_timeout: std::time::Duration::from_secs(10),
            max_connections: 1024,
            unauthorized_window: std::time::Duration::from_secs(60),
        }
    }
}

#[derive(Debug)]
struct App {
    intake: Intake,
    /// The request body limit (`--max-body-bytes`), named in a 413.
    max_body_bytes: usize,
    /// The store's gauges of the last scrape and when they were read: read
    /// at most once a second however often `/metrics` is asked (it needs
    /// no token, and each read is two queries).
    gauges: tokio::sync::Mutex<Option<(tokio::time::Instant, Vec<Gauge>)>>,
    /// Requests refused 401 since the tally was last recorded.
    unauthorized: Arc<Unauthorized>,
}

/// Client addresses tallied apart in one window of requests refused 401;
/// the requests of further addresses are tallied together.
const UNAUTHORIZED_PEERS: usize = 64;

/// Longest request path kept in a 401 tally.
const UNAUTHORIZED_PATH_CHARS: usize = 200;

/// Requests refused 401 (no API token, or one that is no partner's),
/// tallied per client address and recorded in `refusals` once a window
/// ends, and at shutdown: one row per address (`HTTP401`, no partner),
/// at most [`UNAUTHORIZED_PEERS`] of them and one for the rest. A client
/// trying tokens is on record with how often, when and what it asked
/// for, while a flood of such requests costs a bounded number of writes
/// and log lines, not one of each per request.
#[derive(Debug, Default)]
pub(crate) struct Unauthorized {
    window: std::sync::Mutex<UnauthorizedWindow>,
}

#[derive(Debug, Default)]
struct UnauthorizedWindow {
    /// Per address, in the order first seen.
    peers: Vec<(String, Tally)>,
    /// The requests of addresses beyond the first [`UNAUTHORIZED_PEERS`].
    others: Option<Tally>,
}

/// The requests refused 401 of one address (or of the others) in a window.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tally {
    without_token: u64,
    unknown_token: u64,
    first: Timestamp,
    last: Timestamp,
    /// Method and path of the last one.
    last_request: String,
}

impl Tally {
    fn new(now: Timestamp) -> Tally {
        Tally {
            without_token: 0,
            unknown_token: 0,
            first: now,
            last: now,
            last_request: String::new(),
        }
    }

    fn count(&self) -> u64 {
        self.without_token + self.unknown_token
    }

    /// What the `refusals` row of the tally says; `from`: the address, or
    /// what stands for the others.
    fn detail(&self, from: &str) -> String {
        let count = self.count();
        let requests = if count == 1 { "request" } else { "requests" };
        let when = if self.first == self.last {
            format!("at {}", self.first)
        } else {
            format!("between {} and {}", self.first, self.last)
        };
        let mut why = Vec::new();
        if self.without_token > 0 {
            why.push(format!("{} without an API token", self.without_token));
        }
        if self.unknown_token > 0 {
            why.push(format!(
                "{} with a token that is no partner's",
                self.unknown_token
            ));
        }
        format!(
            "{count} {requests} refused (401) from {from} {when}: {}; the last: {}",
            why.join(", "),
            self.last_request
        )
    }
}

impl Unauthorized {
    /// The window being tallied (a panic while it was held left nothing
    /// half-counted that matters: take it as it is).
    fn window(&self) -> std::sync::MutexGuard<'_, UnauthorizedWindow> {
        match self.window.lock() {
            Ok(window) => window,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts a request refused 401 from `peer` (`token`: it had one);
    /// true for the address's first of the window, which is logged.
    fn note(
        &self,
        peer: Option<std::net::IpAddr>,
        token: bool,
        method: &str,
        path: &str,
        now: Timestamp,
    ) -> bool {
        let mut window = self.window();
        let peer = peer.map_or_else(|| "an unknown address".to_owned(), |p| p.to_string());
        let window = &mut *window;
        let known = window.peers.iter().position(|(p, _)| *p == peer);
        let (tally, first) = match known {
            Some(i) => match window.peers.get_mut(i) {
                Some((_, tally)) => (tally, false),
                None => return false,
            },
            None if window.peers.len() < UNAUTHORIZED_PEERS => {
                window.peers.push((peer, Tally::new(now)));
                match window.peers.last_mut() {
                    Some((_, tally)) => (tally, true),
                    None => return false,
                }
            }
            None => {
                let first = window.others.is_none();
                (window.others.get_or_insert_with(|| Tally::new(now)), first)
            }
        };
        if token {
            tally.unknown_token += 1;
        } else {
            tally.without_token += 1;
        }
        tally.last = now;
        tally.last_request.clear();
        tally.last_request.push_str(method);
        tally.last_request.push(' ');
        tally
            .last_request
            .extend(path.chars().take(UNAUTHORIZED_PATH_CHARS));
        if path.chars().nth(UNAUTHORIZED_PATH_CHARS).is_some() {
            tally.last_request.push('…');
        }
        first
    }

    /// The details of the window's tallies, which start over.
    fn take(&self) -> Vec<String> {
        let window = std::mem::take(&mut *self.window());
        let mut details: Vec<String> = window
            .peers
            .iter()
            .map(|(peer, tally)| tally.detail(peer))
            .collect();
        if let Some(others) = &window.others {
            details.push(others.detail(&format!(
                "addresses beyond the first {UNAUTHORIZED_PEERS} of the window"
            )));
        }
        details
    }

    /// Records the window's tallies in `refusals`.
    async fn record(&self, intake: &Intake) {
        for detail in self.take() {
            let recorded = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                intake.record_unauthorized(&detail, Timestamp::now()),
            )
            .await;
            match recorded {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, %detail, "requests refused (401) were not recorded");
                }
                Err(_) => {
                    tracing::warn!(%detail, "requests refused (401) were not recorded in time");
                }
            }
        }
    }
}

/// A gauge of `/metrics`: name, help, value.
type Gauge = (&'static str, &'static str, i64);

/// How long the store's gauges are reused.
const GAUGES_FRESH: std::time::Duration = std::time::Duration::from_secs(1);

/// The router of the hub's HTTP API. The requests it refuses 401 are
/// counted and logged; [`serve`] also records them in `refusals` (see
/// `Unauthorized`).
pub fn router(intake: Intake, settings: HttpSettings) -> Router {
    routes(intake, settings, Arc::default())
}

/// [`router`], tallying the requests it refuses 401 in `unauthorized`
/// (which the server records: see [`Unauthorized`]).
fn routes(intake: Intake, settings: HttpSettings, unauthorized: Arc<Unauthorized>) -> Router {
    let app = Arc::new(App {
        intake: intake.clone(),
        max_body_bytes: settings.max_body_bytes,
        gauges: tokio::sync::Mutex::new(None),
        unauthorized,
    });
    Router::new()
        .route("/v1/interchanges", post(post_interchange))
        .route("/v1/interchanges/{id}", get(get_interchange))
        .route("/v1/declarations", get(list_declarations))
        .route("/v1/refusals", get(list_refusals))
        .route("/v1/declarations/{id}", get(get_declaration))
        .route("/v1/declarations/{id}/release", post(release_declaration))
        .route("/v1/declarations/{id}/hold", post(hold_declaration))
        .route("/v1/cargo/{ref}", get(cargo_timeline))
        .route("/v1/agencies/{code}/inbox", get(agency_inbox))
        .route("/v1/permits/{id}/decision", post(post_decision))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(Admission {
                slots: Arc::new(tokio::sync::Semaphore::new(settings.max_in_flight.max(1))),
                limit: settings.max_in_flight.max(1),
                timeout: settings.request_timeout,
                max_body_bytes: settings.max_body_bytes,
                intake,
            }),
            admit,
        ))
        .with_state(app)
}

/// The first percent-encoded control character (C0 or DEL) of a URI's
/// path and query, if any (raw ones never reach here: hyper refuses them).
fn escaped_control(target: &str) -> Option<u8> {
    let bytes = target.as_bytes();
    bytes.iter().enumerate().find_map(|(i, &b)| {
        if b != b'%' {
            return None;
        }
        let hex = bytes.get(i + 1..i + 3)?;
        let value = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
        (value < 0x20 || value == 0x7f).then_some(value)
    })
}

/// Longest request target (path and query) taken: no path or query of
/// this API comes near it.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Most header bytes (names and values) and headers a request may have.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
pub const MAX_HEADERS: usize = 100;

/// A request whose target or headers pass the limits above: a 414 or 431
/// with problem details. (The HTTP parser's own limits are set above
/// these, so that its bare answers are left for requests far beyond them.)
fn head_refused(request: &axum::extract::Request) -> Option<Response> {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(problem(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "Request target too long",
            format!(
                "the request's path and query hold {target} bytes; at most {MAX_URI_BYTES} are taken"
            ),
            json!({"limit": MAX_URI_BYTES}),
        ));
    }
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return Some(problem(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
            format!(
                "the request has {} headers of {bytes} bytes; at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes in all are taken",
                headers.len()
            ),
            json!({"limit_headers": MAX_HEADERS, "limit_bytes": MAX_HEADER_BYTES}),
        ));
    }
    None
}

/// How many requests are handled at once, and for how long at most.
struct Admission {
    slots: Arc<tokio::sync::Semaphore>,
    limit: usize,
    timeout: std::time::Duration,
    /// The largest body taken: one declared larger is refused unread.
    max_body_bytes: usize,
    /// To record a submission cut off by the timeout.
    intake: Intake,
}

/// Admits a request if a slot is free (else 503 at once) and bounds its
/// time (408). The probes and metrics are always answered, so that a hub
/// at its limit still tells its operator so.
async fn admit(
    State(admission): State<Arc<Admission>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(refused) = head_refused(&request) {
        return refused;
    }
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    // No id, reference, code or query value of this API holds a control
    // character; PostgreSQL would refuse U+0000 as the store's error.
    if let Some(byte) = escaped_control(request.uri().path_and_query().map_or("", |p| p.as_str())) {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-path",
            "Path not understood",
            format!("the request's path or query holds the control character U+{byte:04X}"),
            json!({}),
        );
    }
    let Ok(_slot) = admission.slots.clone().try_acquire_owned() else {
        let mut response = problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "Too many requests in flight",
            format!(
                "the hub is handling its limit of {} requests; retry shortly",
                admission.limit
            ),
            json!({"retryable": true}),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    // A submission cut off is recorded as refused (HTTP408), as one whose
    // body could not be read is: what it held and who sent it, as far as
    // known (the token is checked only then).
    let mut request = request;
    let token = bearer_token(request.headers());
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body_read = BodyRead::new(declared);
    let submission = (request.method() == axum::http::Method::POST
        && request.uri().path() == "/v1/interchanges")
        .then(|| token.clone());
    // A body declared larger than the limit is refused before a byte of
    // it is read (no `100 Continue` is sent for it): 413, and for a
    // submission HUB413 in `refusals`, as on the other transports. Only
    // for a request whose token names a partner: another one is answered
    // 401 unread, and not recorded, by the handler.
    let oversized = declared.filter(|d| *d > admission.max_body_bytes as u64);
    let authenticated = match (oversized, &token) {
        (Some(_), Some(token)) => admission
            .intake
            .partner_for_token(token)
            .await
            .ok()
            .flatten(),
        _ => None,
    };
    if let Some(declared) = oversized
        && let Some(partner) = authenticated
    {
        let detail = format!(
            "the request body of {declared} bytes (Content-Length) exceeds the limit of {} bytes; not read",
            admission.max_body_bytes
        );
        if let Some(token) = submission {
            let code = crate::diag::Code::TooLarge.as_str().to_owned();
            let size = body_read.too_large_size();
            record_unread(&admission.intake, token, size, code, &detail).await;
        }
        // An agency's answer too large: on record as its AMQP reply's
        // dead letter would be.
        let path = request.uri().path();
        if request.method() == axum::http::Method::POST
            && let Some(permit) = path
                .strip_prefix("/v1/permits/")
                .and_then(|rest| rest.strip_suffix("/decision"))
        {
            admission
                .intake
                .record_refused_answer(
                    &partner.id,
                    b"",
                    crate::diag::Code::TooLarge,
                    &format!("permit {permit}: {detail}"),
                )
                .await;
        }
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Request body refused",
            detail,
            json!({"code": crate::diag::Code::TooLarge.as_str(), "limit": admission.max_body_bytes}),
        );
    }
    if submission.is_some() {
        // Counted as it arrives, so that an upload cut off is recorded
        // with what came of it, not with what it said would come.
        let received = body_read.received.clone();
        request = request.map(|body| {
            axum::body::Body::from_stream(futures_lite::StreamExt::map(
                body.into_data_stream(),
                move |chunk| {
                    if let Ok(bytes) = &chunk {
                        received.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::SeqCst);
                    }
                    chunk
                },
            ))
        });
        request.extensions_mut().insert(body_read.clone());
    }
    match tokio::time::timeout(admission.timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let detail = format!(
                "the request was not complete within {} s (a slow upload?); a submission \
                 that was stored meanwhile is answered as a duplicate when sent again, a \
                 decision, release or hold recorded meanwhile as repeated",
                admission.timeout.as_secs()
            );
            // Only an upload cut off is a refusal: a body read whole was
            // being processed, and may have been stored (a resend is then
            // answered as a duplicate).
            if let Some(token) = submission
                && !body_read.whole.load(std::sync::atomic::Ordering::SeqCst)
            {
                let code = format!("HTTP{}", StatusCode::REQUEST_TIMEOUT.as_u16());
                let (size, of) = body_read.cut_off();
                record_unread(
                    &admission.intake,
                    token,
                    size,
                    code,
                    &format!("{detail}; {of}"),
                )
                .await;
            }
            problem(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "Request took too long",
                detail,
                json!({"retryable": true}),
            )
        }
    }
}

/// The token of an `Authorization: Bearer …` header, as sent; none for
/// another scheme or an empty token.
fn bearer_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110 §11.1).
        .and_then(|v| v.trim_start().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .filter(|token| !token.is_empty())
}

/// How far a submission's body was read: the length it declared
/// (Content-Length), the bytes received so far, and whether it was read
/// whole (set by the submission handler: a timeout after it is no cut-off
/// upload).
#[derive(Debug, Clone)]
struct BodyRead {
    declared: Option<u64>,
    whole: Arc<std::sync::atomic::AtomicBool>,
    received: Arc<std::sync::atomic::AtomicU64>,
}

impl BodyRead {
    fn new(declared: Option<u64>) -> BodyRead {
        BodyRead {
            declared,
            whole: Arc::default(),
            received: Arc::default(),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The size a body too large is recorded with: the length it
    /// declared, or (sent in chunks) what came before the limit stopped
    /// it.
    fn too_large_size(&self) -> i64 {
        i64::try_from(self.declared.unwrap_or_else(|| self.received())).unwrap_or(i64::MAX)
    }

    /// The size an upload cut off is recorded with, the bytes received,
    /// and what its refusal's detail says of it (of how many declared).
    fn cut_off(&self) -> (i64, String) {
        let received = self.received();
        let of = match self.declared {
            Some(declared) => {
                format!("{received} bytes received of the {declared} declared (Content-Length)")
            }
            None => format!("{received} bytes received (no Content-Length)"),
        };
        (i64::try_from(received).unwrap_or(i64::MAX), of)
    }

    fn read_whole(&self) {
        self.whole.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Records a submission refused before its body was read (`code`: the
/// request timeout cut it off, HTTP408; declared too large, HUB413), its
/// sender as far as its token tells. Bounded in time itself: a store that
/// does not answer does not hold the answer back.
async fn record_unread(
    intake: &Intake,
    token: Option<String>,
    size: i64,
    code: String,
    detail: &str,
) {
    let record = async {
        let partner = match token {
            Some(token) => intake.partner_for_token(&token).await.ok().flatten(),
            None => None,
        };
        intake.count_refused_unread();
        let partner = partner.map(|p| p.id);
        let recorded = intake
            .record_refused_unread(
                &code,
                partner.as_deref(),
                size,
                None,
                detail,
                Timestamp::now(),
            )
            .await;
        if let Err(e) = recorded {
            tracing::warn!(error = %e, "a submission refused unread was not recorded");
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(5), record)
        .await
        .is_err()
    {
        tracing::warn!("a submission refused unread was not recorded in time");
    }
}

/// Serves the API on `listener` until `shutdown` completes, then finishes
/// the requests in flight.
pub async fn serve<F>(
    listener: TcpListener,
    intake: Intake,
    settings: HttpSettings,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_on(listener, None, intake, settings, shutdown).await
}

/// [`serve`] over TLS: only connections whose handshake completed reach
/// the API.
pub async fn serve_tls<F>(
    listener: super::tls::TlsListener,
    intake: Intake,
    settings: HttpSettings,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let super::tls::TlsListener { listener, acceptor } = listener;
    serve_on(listener, Some(acceptor), intake, settings, shutdown).await
}

/// Serves HTTP/1.1 connections from `listener` (over TLS with `tls`) until
/// `shutdown` resolves, then lets the requests in progress finish. At most
/// `max_connections` are served at once (a TLS handshake in progress takes
/// a slot too); each must send its headers within `header_timeout` (also
/// the longest a keep-alive connection may stay idle) and take the
/// response: a client that stops reading for `request_timeout` loses its
/// connection.
async fn serve_on<F>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    intake: Intake,
    settings: HttpSettings,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let unauthorized = Arc::new(Unauthorized::default());
    let router = routes(intake.clone(), settings, unauthorized.clone());
    // The 401 tallies are recorded as each window ends, and once more
    // when the server has stopped (a window's write under way then is
    // finished first, not cut off).
    let (tallies_stop, mut tallies_stopped) = tokio::sync::oneshot::channel::<()>();
    let tallies = {
        let unauthorized = unauthorized.clone();
        let intake = intake.clone();
        let window = settings
            .unauthorized_window
            .max(std::time::Duration::from_millis(10));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(window) => unauthorized.record(&intake).await,
                    _ = &mut tallies_stopped => break,
                }
            }
            unauthorized.record(&intake).await;
        })
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        // A free connection slot first: beyond the limit, connections wait
        // in the listen backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment.
                    tracing::warn!(error = %e, "TCP accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve_connection(tcp, router, settings, watcher, peer).await,
                Some(acceptor) => {
                    // The handshake is part of what must arrive before the
                    // headers' deadline.
                    let handshake =
                        tokio::time::timeout(settings.header_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, router, settings, watcher, peer).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Requests end within `request_timeout` (408), responses are taken or
    // the connection is dropped within as long again.
    let drain = settings
        .request_timeout
        .checked_mul(2)
        .and_then(|d| d.checked_add(std::time::Duration::from_secs(5)))
        .unwrap_or(std::time::Duration::MAX);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "HTTP connections still open {} s after shutdown was asked for; no longer waiting for them",
            drain.as_secs()
        );
    }
    let _ = tallies_stop.send(());
    if let Err(e) = tallies.await {
        tracing::warn!(error = %e, "the 401 tallies were not recorded at shutdown");
    }
    Ok(())
}

/// Serves one connection's requests until it closes.
async fn serve_connection<IO>(
    io: IO,
    router: Router,
    settings: HttpSettings,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let service = hyper_util::service::TowerToHyperService::new(router.map_request(
        move |request: axum::http::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(Peer(peer));
            request
        },
    ));
    let io = TokioIo::new(WriteDeadline::new(io, settings.request_timeout));
    // The parser's limits lie above the hub's (see `head_refused`), which
    // answer with problem details.
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_timeout)
        .max_headers(4 * MAX_HEADERS)
        .max_buf_size(4 * MAX_HEADER_BYTES + MAX_URI_BYTES)
        .serve_connection(io, service);
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(%peer, error = %e, "HTTP connection ended");
    }
}

/// A connection whose writes fail (`TimedOut`) once one has waited `limit`
/// for the client to take data: a client that stops reading its response
/// cannot hold the connection, and its slot, for good.
struct WriteDeadline<IO> {
    io: IO,
    limit: std::time::Duration,
    /// Armed while a write waits.
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<IO> WriteDeadline<IO> {
    fn new(io: IO, limit: std::time::Duration) -> Self {
        WriteDeadline {
            io,
            limit,
            stalled: None,
        }
    }

    /// After a write that could not go on: arms the deadline (once) and
    /// tells whether it passed.
    fn expired(&mut self, cx: &mut std::task::Context<'_>) -> bool {
        let limit = self.limit;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        sleep.as_mut().poll(cx).is_ready()
    }

    fn on_write<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take the response in time",
            ))),
            Poll::Pending => Poll::Pending,
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<IO: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_write(cx, buf);
        this.on_write(cx, polled)
    }

    fn poll_write_vectored(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.on_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_flush(cx);
        this.on_write(cx, polled)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.io).poll_shutdown(cx);
        this.on_write(cx, polled)
    }
}

/// An RFC 9457 problem details response.
fn problem(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: impl Into<String>,
    extra: serde_json::Value,
) -> Response {
    let mut body = json!({
        "type": format!("urn:tradehub:problem:{slug}"),
        "title": title,
        "status": status.as_u16(),
        "detail": detail.into(),
    });
    if let (Some(map), serde_json::Value::Object(more)) = (body.as_object_mut(), extra) {
        map.extend(more);
    }
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// A request body that could not be read: too large (413), or cut off or
/// unreadable (400).
fn body_refused(rejection: &BytesRejection, limit: usize) -> Response {
    let status = rejection.status();
    let (slug, extra) = if status == StatusCode::PAYLOAD_TOO_LARGE {
        (
            "too-large",
            json!({"code": crate::diag::Code::TooLarge.as_str(), "limit": limit}),
        )
    } else {
        ("bad-body", json!({}))
    };
    problem(
        status,
        slug,
        "Request body refused",
        body_detail(rejection, limit),
        extra,
    )
}

/// What a body that could not be read is told: for one too large, the
/// limit (axum's own text names none).
fn body_detail(rejection: &BytesRejection, limit: usize) -> String {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body exceeds the limit of {limit} bytes; not read")
    } else {
        rejection.body_text()
    }
}

/// Runs a request's work in a task of its own, so that a request the
/// timeout cuts off still finishes what it started; a task that ended
/// without an answer (it panicked) is a 500.
async fn own_task<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Result<T, Response> {
    tokio::spawn(work).await.map_err(|e| {
        tracing::error!(error = %e, "a request's task failed");
        problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the request's task ended without an answer; it was logged",
            json!({"retryable": true}),
        )
    })
}

fn store_problem(e: &StoreError) -> Response {
    tracing::error!(error = %e, "store error");
    let status = if e.is_retryable() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    // Nothing was stored or changed; whether the same request can succeed
    // later says `retryable` (and the status: 503 or 500).
    let (detail, code) = if e.is_retryable() {
        (
            "the store is unavailable; nothing was stored or changed; try again later",
            None,
        )
    } else {
        (
            "the store refused the request; nothing was stored or changed, and the same \
             request will fail again",
            Some(crate::diag::Code::StoreRefused.as_str()),
        )
    };
    let mut extra = json!({"retryable": e.is_retryable()});
    if let (Some(code), Some(map)) = (code, extra.as_object_mut()) {
        map.insert("code".into(), code.into());
    }
    problem(status, "store", "Storage failure", detail, extra)
}

/// The partner a request's bearer token belongs to; a request without a
/// valid token is answered 401 before its handler runs, and logged with
/// where it came from (a leaked or replaced token in use shows there).
struct Authenticated(Partner);

/// The address a request's connection came from (behind a balancer, the
/// balancer's).
#[derive(Debug, Clone, Copy)]
struct Peer(std::net::SocketAddr);

impl axum::extract::FromRequestParts<Arc<App>> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<App>,
    ) -> Result<Self, Response> {
        let authenticated = authenticate(app, &parts.headers).await;
        if let Err(refused) = &authenticated
            && refused.status() == StatusCode::UNAUTHORIZED
        {
            app.intake.count_unauthorized();
            let peer = parts.extensions.get::<Peer>().map(|p| p.0);
            let first = app.unauthorized.note(
                peer.map(|p| p.ip()),
                bearer_token(&parts.headers).is_some(),
                parts.method.as_str(),
                parts.uri.path(),
                Timestamp::now(),
            );
            // The first of an address in a window is logged; all are
            // tallied and recorded as the window ends.
            if first {
                tracing::warn!(
                    peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
                    method = %parts.method,
                    path = %parts.uri.path(),
                    "request refused (401): no API token, or one that is not (or no longer) a partner's; \
                     further ones from this address are tallied and recorded in refusals (HTTP401)"
                );
            }
        }
        authenticated.map(Authenticated)
    }
}

async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Partner, Response> {
    let unauthorized = |detail: &str| {
        let mut r = problem(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
            json!({}),
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        r
    };
    let token = bearer_token(headers)
        .ok_or_else(|| unauthorized("send Authorization: Bearer <API token>"))?;
    match app.intake.partner_for_token(&token).await {
        Ok(Some(partner)) => Ok(partner),
        Ok(None) => Err(unauthorized("unknown API token")),
        Err(e) => Err(store_problem(&e)),
    }
}

async fn post_interchange(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    body_read: Option<axum::Extension<BodyRead>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => {
            if let Some(axum::Extension(read)) = &body_read {
                read.read_whole();
            }
            b
        }
        Err(rejection) => {
            let status = rejection.status();
            let read = body_read.as_ref().map(|axum::Extension(read)| read);
            let detail = body_detail(&rejection, app.max_body_bytes);
            // Too large: HUB413, as on the other transports; another body
            // that could not be read (a client that stopped sending) is
            // HTTP and its status, recorded with the bytes that came.
            let (code, size, detail) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                let size = read.map_or(-1, BodyRead::too_large_size);
                (
                    crate::diag::Code::TooLarge.as_str().to_owned(),
                    size,
                    detail,
                )
            } else {
                let code = format!("HTTP{}", status.as_u16());
                match read.map(BodyRead::cut_off) {
                    Some((size, of)) => (code, size, format!("{detail}; {of}")),
                    None => (code, -1, detail),
                }
            };
            app.intake.count_refused_unread();
            if let Err(e) = app
                .intake
                .record_refused_unread(
                    &code,
                    Some(&partner.id),
                    size,
                    None,
                    &detail,
                    Timestamp::now(),
                )
                .await
            {
                return store_problem(&e);
            }
            return body_refused(&rejection, app.max_body_bytes);
        }
    };
    // In a task of its own: a request the timeout cuts off after its body
    // was read still finishes what it started (the commit, its counters
    // and latency, the relay's wake-up), which dropping the handler's
    // future skipped.
    let (intake, submitter, bytes) = (app.intake.clone(), partner.clone(), body.to_vec());
    let submitted = match own_task(async move {
        intake
            .submit_via(&submitter, bytes, crate::hub::Via::Http)
            .await
    })
    .await
    {
        Ok(submitted) => submitted,
        Err(failed) => return failed,
    };
    match submitted {
        Ok(Submission::Stored(receipt)) => {
            let mut r = (
                StatusCode::ACCEPTED,
                Json(json!({"duplicate": false, "interchange": receipt})),
            )
                .into_response();
            if let Ok(v) =
                HeaderValue::from_str(&format!("/v1/interchanges/{}", receipt.interchange.id))
            {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        Ok(Submission::Duplicate(receipt)) => (
            StatusCode::OK,
            Json(json!({"duplicate": true, "interchange": receipt})),
        )
            .into_response(),
        Ok(Submission::Refused(refused)) => {
            let (status, slug, title) = match &refused.reason {
                RefusalReason::WrongSender { .. } => (
                    StatusCode::FORBIDDEN,
                    "wrong-sender",
                    "Sender is not the authenticated partner",
                ),
                RefusalReason::DuplicateReference { .. } => (
                    StatusCode::CONFLICT,
                    "duplicate-reference",
                    "Interchange control reference already used",
                ),
                RefusalReason::NotAnInterchange => (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "not-an-interchange",
                    "Body is not an interchange",
                ),
                RefusalReason::TooManyMessages { .. } => (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-many-messages",
                    "Interchange holds too many messages",
                ),
                RefusalReason::NotASender { .. } => (
                    StatusCode::FORBIDDEN,
                    "not-a-sender",
                    "This account does not submit interchanges",
                ),
                RefusalReason::Suspended => (
                    StatusCode::FORBIDDEN,
                    "partner-suspended",
                    "This partner is suspended",
                ),
            };
            let mut extra = json!({"code": refused.code.as_str()});
            if let RefusalReason::DuplicateReference { original } = &refused.reason {
                extra["original"] = json!(original);
            }
            if let RefusalReason::TooManyMessages { count, limit } = &refused.reason {
                extra["messages"] = json!(count);
                extra["limit"] = json!(limit);
            }
            if let Some(ack) = &refused.acknowledgement {
                extra["acknowledgement"] = json!(ack);
            }
            problem(status, slug, title, refused.detail, extra)
        }
        Err(e) => store_problem(&e),
    }
}

async fn get_interchange(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return bad_path(&rejection),
    };
    let store = app.intake.store();
    let found = match store.interchange(&id).await {
        Ok(found) => found,
        Err(e) => return store_problem(&e),
    };
    // Another partner's interchange is as good as absent.
    let Some(ic) = found.filter(|ic| ic.partner_id == partner.id) else {
        return problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "No such interchange",
            format!("no interchange {id}"),
            json!({}),
        );
    };
    let events = match store.events(&id).await {
        Ok(e) => e,
        Err(e) => return store_problem(&e),
    };
    let issues: serde_json::Value = serde_json::from_str(&ic.issues_json).unwrap_or(json!([]));
    let mut declarations = match store.declarations_of(&id).await {
        Ok(d) => d,
        Err(e) => return store_problem(&e),
    };
    for d in &mut declarations {
        hide_screening(&partner, d, None);
    }
    (
        StatusCode::OK,
        Json(json!({
            "interchange": ic,
            "issues": issues,
            "events": events,
            "declarations": declarations,
        })),
    )
        .into_response()
}

fn not_found(what: &str, id: &str) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "not-found",
        &format!("No such {what}"),
        format!("no {what} {id}"),
        json!({}),
    )
}

fn forbidden(detail: impl Into<String>) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Not allowed for this account",
        detail,
        json!({}),
    )
}

fn is_officer(partner: &Partner) -> bool {
    partner.agency.as_deref() == Some(CUSTOMS_ROLE)
}

/// What of a passenger list's screening `partner` may see: customs
/// officers everything; anyone else (the carrier that sent the list)
/// neither its lane nor its screening event, so that no traveller's
/// selection is told to the carrier. Nor does anyone but an officer read
/// who ordered goods examined and why (`examination_ordered`).
fn hide_screening(
    partner: &Partner,
    declaration: &mut crate::store::StoredDeclaration,
    events: Option<&mut Vec<crate::store::Event>>,
) {
    if is_officer(partner) {
        return;
    }
    if crate::hub::clearance::lane_is_screening(&declaration.target) {
        declaration.lane = None;
    }
    if let Some(events) = events {
        use crate::hub::clearance::state;
        events.retain(|e| e.kind != state::SCREENED && e.kind != state::EXAMINATION_ORDERED);
    }
}

/// What an agency with a permit on a declaration (and neither its sender
/// nor an officer) sees of it: its own permits only, the events of its
/// own permits and the declaration's milestones, not what other agencies
/// answered, the risk lane, who released it and why, or the answers sent
/// to the sender (which quote every agency's reasons). The declaration's
/// data itself is what its permit request carried.
fn agency_view(
    partner: &Partner,
    declaration: &mut crate::store::StoredDeclaration,
    permits: &mut Vec<crate::store::StoredPermit>,
    events: &mut Vec<crate::store::Event>,
    responses: Option<&mut Vec<crate::store::StoredResponse>>,
) {
    let Some(agency) = agency_reading(partner, declaration) else {
        return;
    };
    use crate::hub::clearance::state;
    let (own, others): (Vec<_>, Vec<_>) = permits.drain(..).partition(|p| p.agency == agency);
    *permits = own;
    declaration.lane = None;
    events.retain_mut(|e| {
        // One permit's answer or expiry (its id in the detail): its
        // agency's only.
        if others.iter().any(|p| e.detail.contains(p.id.as_str())) {
            return false;
        }
        if permits.iter().any(|p| e.detail.contains(p.id.as_str())) {
            return true;
        }
        match e.kind.as_str() {
            // Whether the other agencies granted or refused is theirs to
            // tell: the milestones that say so are left out, so that
            // `held` after them does not tell either (nor, after every
            // permit granted, that the goods were selected for
            // examination: the lane).
            state::LANE_ASSIGNED
            | state::SCREENED
            | state::EXAMINATION_ORDERED
            | state::PERMITS_GRANTED
            | state::PERMITS_REFUSED => false,
            // Milestones whose details name every agency's answer, the
            // lane or the officer: the milestone, not the detail.
            state::AWAITING_PERMITS | state::HELD | state::CLEARED | state::RELEASED => {
                e.detail = "detail for customs and the declarant".into();
                true
            }
            _ => true,
        }
    });
    if let Some(responses) = responses {
        responses.clear();
    }
}

/// The agency `partner` reads `declaration` for, when it reads it as an
/// agency: neither its sender nor a customs officer.
fn agency_reading<'p>(
    partner: &'p Partner,
    declaration: &crate::store::StoredDeclaration,
) -> Option<&'p str> {
    if declaration.partner_id == partner.id || is_officer(partner) {
        return None;
    }
    partner.agency.as_deref()
}

/// Who may see a declaration: its sender, customs officers, and the
/// agencies with a permit on it (`permits`: the declaration's).
fn may_see(
    partner: &Partner,
    declaration: &crate::store::StoredDeclaration,
    permits: &[crate::store::StoredPermit],
) -> bool {
    declaration.partner_id == partner.id
        || is_officer(partner)
        || permits
            .iter()
            .any(|p| partner.agency.as_deref() == Some(p.agency.as_str()))
}

/// A declaration with its permits, events and responses. Visible to its
/// sender, to customs officers and to agencies with a permit on it.
async fn get_declaration(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return bad_path(&rejection),
    };
    let store = app.intake.store();
    let (declaration, permits) = match (store.declaration(&id).await, store.permits_of(&id).await) {
        (Ok(d), Ok(p)) => (d, p),
        (Err(e), _) | (_, Err(e)) => return store_problem(&e),
    };
    let Some(mut declaration) = declaration.filter(|d| may_see(&partner, d, &permits)) else {
        return not_found("declaration", &id);
    };
    let mut permits = permits;
    let (mut events, mut responses) = match (
        store.declaration_events(&id).await,
        store.responses_of(&id).await,
    ) {
        (Ok(e), Ok(r)) => (e, r),
        (Err(e), _) | (_, Err(e)) => return store_problem(&e),
    };
    hide_screening(&partner, &mut declaration, Some(&mut events));
    agency_view(
        &partner,
        &mut declaration,
        &mut permits,
        &mut events,
        Some(&mut responses),
    );
    let canonical: serde_json::Value = declaration
        .canonical_json
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(serde_json::Value::Null);
    let issues: serde_json::Value =
        serde_json::from_str(&declaration.issues_json).unwrap_or(json!([]));
    (
        StatusCode::OK,
        Json(json!({
            "declaration": declaration,
            "canonical": canonical,
            "issues": issues,
            "permits": permits,
            "events": events,
            "responses": responses,
        })),
    )
        .into_response()
}

/// The tracking timeline of a cargo reference (bill of lading, container,
/// voyage, LRN, transport document): every event of the declarations and
/// manifests carrying it that the caller may see — all of them for customs
/// officers, a partner's own, an agency's with a permit on them.
async fn cargo_timeline(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    reference: Result<Path<String>, PathRejection>,
) -> Response {
    let reference = match reference {
        Ok(Path(reference)) => reference,
        Err(rejection) => return bad_path(&rejection),
    };
    let store = app.intake.store();
    // The store returns only what this account may see (see `may_see`).
    let viewer = if is_officer(&partner) {
        crate::store::TimelineViewer::Everything
    } else {
        crate::store::TimelineViewer::Partner {
            id: partner.id.clone(),
            agency: partner.agency.clone(),
        }
    };
    let mut visible = match store.cargo_timeline(&reference, &viewer).await {
        Ok(t) => t,
        Err(e) => return store_problem(&e),
    };
    for (d, events) in &mut visible {
        hide_screening(&partner, d, Some(events));
        if agency_reading(&partner, d).is_some() {
            let mut permits = match store.permits_of(&d.id).await {
                Ok(p) => p,
                Err(e) => return store_problem(&e),
            };
            agency_view(&partner, d, &mut permits, events, None);
        }
    }
    if visible.is_empty() {
        // References of other partners' cargo are as good as absent.
        return not_found("cargo reference", &reference);
    }
    let mut timeline: Vec<(&str, i64, serde_json::Value)> = visible
        .iter()
        .flat_map(|(d, events)| {
            events.iter().map(move |e| {
                (
                    e.at.as_str(),
                    e.seq,
                    json!({
                        "at": e.at,
                        "seq": e.seq,
                        "declaration_id": d.id,
                        "message_type": d.message_type,
                        "kind": e.kind,
                        "detail": e.detail,
                        "status": d.status,
                    }),
                )
            })
        })
        .collect();
    timeline.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let timeline: Vec<serde_json::Value> = timeline.into_iter().map(|(_, _, v)| v).collect();
    let declarations: Vec<&crate::store::StoredDeclaration> =
        visible.iter().map(|(d, _)| d).collect();
    (
        StatusCode::OK,
        Json(json!({
            "reference": reference,
            "timeline": timeline,
            "declarations": declarations,
        })),
    )
        .into_response()
}

/// `?status=&limit=`: an empty value is no filter (a form left blank).
/// Nothing else: a misspelt field (`?satus=refused`) would otherwise list
/// every declaration as if it were the filtered list.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    #[serde(default, deserialize_with = "blank_is_none")]
    status: Option<String>,
    #[serde(default, deserialize_with = "blank_is_none")]
    limit: Option<i64>,
    /// The `next` of the page before: the id of the last declaration it
    /// listed.
    #[serde(default, deserialize_with = "blank_is_none")]
    after: Option<String>,
}

/// `?limit=` of the refusals list; nothing else.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default, deserialize_with = "blank_is_none")]
    limit: Option<i64>,
}

/// The submissions and agency answers the caller sent that were refused
/// (wrong sender, too large, not an interchange, a reused reference, an
/// answer not taken), newest first; customs officers see every sender's.
async fn list_refusals(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    query: Result<Query<LimitQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&rejection),
    };
    let owner = (!is_officer(&partner)).then_some(partner.id.as_str());
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    match app.intake.store().refusal_list(owner, limit).await {
        Ok(list) => (StatusCode::OK, Json(json!({"refusals": list}))).into_response(),
        Err(e) => store_problem(&e),
    }
}

/// `?limit=&after=` of an agency's inbox: `after` is the id of the last
/// permit of the page before. Nothing else (a `status` would be ignored,
/// as if the inbox could list other than pending permits).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InboxQuery {
    #[serde(default, deserialize_with = "blank_is_none")]
    limit: Option<i64>,
    #[serde(default, deserialize_with = "blank_is_none")]
    after: Option<String>,
}

/// A query value, none when it is empty or blank.
fn blank_is_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let raw: Option<String> = serde::Deserialize::deserialize(deserializer)?;
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(value) => value.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// 404 for a path the API does not have, as problem details.
async fn no_route(uri: axum::http::Uri) -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "no-such-resource",
        "No such resource",
        format!(
            "{} is not a resource of this API (see /v1/openapi.json)",
            uri.path()
        ),
        json!({}),
    )
}

/// 405 for a method a path does not take, as problem details.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    problem(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        format!(
            "{} does not take {method} (see /v1/openapi.json)",
            uri.path()
        ),
        json!({}),
    )
}

/// 400 for a path parameter that is not understood (not UTF-8 once
/// percent-decoded).
fn bad_path(rejection: &PathRejection) -> Response {
    problem(
        rejection.status(),
        "bad-path",
        "Path not understood",
        rejection.body_text(),
        json!({}),
    )
}

/// 400 for a query string that is not understood.
fn bad_query(rejection: &QueryRejection) -> Response {
    problem(
        rejection.status(),
        "bad-query",
        "Query not understood",
        rejection.body_text(),
        json!({"expected": {"status": "a declaration status", "limit": "1 to 1000", "after": "the `next` of the page before"}}),
    )
}

/// The caller's declarations (all of them for customs officers), newest first.
async fn list_declarations(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return bad_query(&rejection),
    };
    // A status no declaration can have is a mistake, not an empty list.
    if let Some(status) = query.status.as_deref()
        && !crate::hub::clearance::state::STORED.contains(&status)
    {
        return problem(
            StatusCode::BAD_REQUEST,
            "bad-query",
            "Query not understood",
            format!(
                "no declaration has the status {status:?}; one of: {}",
                crate::hub::clearance::state::STORED.join(", ")
            ),
            json!({"expected": {"status": crate::hub::clearance::state::STORED, "limit": "1 to 1000"}}),
        );
    }
    let owner = (!is_officer(&partner)).then_some(partner.id.as_str());
    // Outside 1 to 1000, the nearest bound.
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let store = app.intake.store();
    // The page after a declaration the caller may list (whatever its
    // status now); any other id is the caller's mistake, told the same
    // way whether it does not exist or is another sender's.
    let after = match &query.after {
        None => None,
        Some(id) => match store.declaration(id).await {
            Ok(Some(d)) if owner.is_none_or(|owner| d.partner_id == owner) => Some(d),
            Ok(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad-query",
                    "Query not understood",
                    format!("after: {id:?} is not a declaration of {}", partner.id),
                    json!({"expected": {"after": "the id of a declaration of yours (the `next` of the page before)", "limit": "1 to 1000"}}),
                );
            }
            Err(e) => return store_problem(&e),
        },
    };
    match store
        .declarations_after(query.status.as_deref(), owner, after.as_ref(), limit)
        .await
    {
        Ok(mut list) => {
            let next = next_page(&list, limit, |d| &d.id);
            for d in &mut list {
                hide_screening(&partner, d, None);
            }
            (
                StatusCode::OK,
                Json(json!({"declarations": list, "next": next})),
            )
                .into_response()
        }
        Err(e) => store_problem(&e),
    }
}

/// Where a list asked for `limit` at a time goes on from (its `next`): a
/// full page may have more after it, named by the id of its last item.
fn next_page<T>(page: &[T], limit: i64, id: impl Fn(&T) -> &String) -> Option<String> {
    (page.len() as i64 == limit)
        .then(|| page.last().map(|item| id(item).clone()))
        .flatten()
}

/// Pending permit requests of an agency, for agencies without AMQP.
async fn agency_inbox(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    code: Result<Path<String>, PathRejection>,
    query: Result<Query<InboxQuery>, QueryRejection>,
) -> Response {
    let code = match code {
        Ok(Path(code)) => code,
        Err(rejection) => return bad_path(&rejection),
    };
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return problem(
                rejection.status(),
                "bad-query",
                "Query not understood",
                rejection.body_text(),
                json!({"expected": {"limit": "1 to 1000", "after": "the `next` of the page before"}}),
            );
        }
    };
    if partner.agency.as_deref() != Some(code.as_str()) && !is_officer(&partner) {
        return forbidden(format!(
            "account {} does not act for agency {code}",
            partner.id
        ));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let store = app.intake.store();
    // The page after a permit of this agency's (decided since or not);
    // any other id is the caller's mistake, told the same way whether
    // the permit does not exist or is another agency's.
    let after = match &query.after {
        None => None,
        Some(id) => match store.permit(id).await {
            Ok(Some(p)) if p.agency == code => Some(p),
            Ok(_) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "bad-query",
                    "Query not understood",
                    format!("after: {id:?} is not a permit of agency {code}"),
                    json!({"expected": {"after": "the id of a permit of this agency (the `next` of the page before)", "limit": "1 to 1000"}}),
                );
            }
            Err(e) => return store_problem(&e),
        },
    };
    match store.agency_inbox(&code, limit, after.as_ref()).await {
        // An officer may read any agency's inbox: a code that names no
        // agency of the catalogue and has no pending permit (one left from
        // an agency since removed is still listed) is said so, not
        // answered with an empty page.
        Ok(permits)
            if permits.is_empty()
                && after.is_none()
                && !app.intake.clearance().agencies.is_empty()
                && !app.intake.clearance().agencies.contains(&code) =>
        {
            problem(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such agency",
                format!("no agency {code:?} in the agency catalogue"),
                json!({}),
            )
        }
        Ok(permits) => {
            let next = next_page(&permits, limit, |p| &p.id);
            let requests: Vec<serde_json::Value> = permits
                .iter()
                .map(|p| {
                    json!({
                        "permit": p,
                        "request": serde_json::from_str::<serde_json::Value>(&p.request_json)
                            .unwrap_or(serde_json::Value::Null),
                    })
                })
                .collect();
            (
                StatusCode::OK,
                Json(json!({"agency": code, "permits": requests, "next": next})),
            )
                .into_response()
        }
        Err(e) => store_problem(&e),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    outcome: crate::model::PermitOutcome,
    #[serde(default)]
    reasons: Vec<String>,
    #[serde(default)]
    conditions: Option<String>,
}

/// An agency's decision on one permit request.
async fn post_decision(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return bad_path(&rejection),
    };
    let raw = match body {
        Ok(body) => body,
        Err(rejection) => {
            // An answer too large to read is on record as an interchange
            // too large is (and as the AMQP reply's dead letter says).
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                let detail = format!(
                    "permit {id}: {}",
                    body_detail(&rejection, app.max_body_bytes)
                );
                app.intake
                    .record_refused_answer(&partner.id, b"", crate::diag::Code::TooLarge, &detail)
                    .await;
            }
            return body_refused(&rejection, app.max_body_bytes);
        }
    };
    // An answer not taken is recorded (in `refusals`, with the code an
    // AMQP reply's dead letter would carry) before it is answered.
    use crate::diag::Code;
    let refused = |code: Code, detail: String| {
        let (intake, account, raw) = (app.intake.clone(), partner.id.clone(), raw.clone());
        async move {
            intake
                .record_refused_answer(&account, &raw, code, &detail)
                .await;
        }
    };
    // Only agencies answer permits. An account acting for another agency is
    // told "no permit" as for an unknown id, so that it cannot learn which
    // permits (and so which declarations) exist elsewhere.
    if partner.agency.is_none() {
        let why = format!(
            "account {} does not act for an agency; only agencies answer permit requests",
            partner.id
        );
        refused(Code::WrongSender, format!("permit {id}: {why}")).await;
        return forbidden(why);
    }
    // JSON with or without a Content-Type header.
    let body: DecisionBody = match crate::model::json_object(&raw) {
        Ok(b) => b,
        Err(e) => {
            refused(
                Code::PermitReplyInvalid,
                format!("permit {id}: not a permit decision: {e}"),
            )
            .await;
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-decision",
                "Decision not understood",
                e.to_string(),
                json!({"code": Code::PermitReplyInvalid.as_str(), "expected": {"outcome": "granted | refused | conditional", "reasons": ["..."], "conditions": "..."}}),
            );
        }
    };
    let decision = crate::model::PermitDecision {
        permit_id: id.clone(),
        outcome: body.outcome,
        reasons: body.reasons,
        conditions: body.conditions,
        decided_at: None,
    };
    // In a task of its own, as a submission.
    let (intake, account) = (app.intake.clone(), partner.clone());
    let decided = match own_task(async move { intake.decide(&account, &decision).await }).await {
        Ok(decided) => decided,
        Err(failed) => return failed,
    };
    // The risk lane is customs' own, as in `agency_view`.
    let unlaned = |mut d: Box<crate::store::StoredDeclaration>| {
        if !is_officer(&partner) {
            d.lane = None;
        }
        d
    };
    match decided {
        Ok(DecisionOutcome::Recorded(d)) => (
            StatusCode::OK,
            Json(json!({"recorded": true, "declaration": unlaned(d)})),
        )
            .into_response(),
        // The same answer sent again (after a lost reply or a 408) is
        // taken as the first was.
        Ok(DecisionOutcome::Repeated(d)) => (
            StatusCode::OK,
            Json(json!({"recorded": false, "repeated": true, "declaration": unlaned(d)})),
        )
            .into_response(),
        Ok(DecisionOutcome::AlreadyDecided(status)) => {
            let why = crate::hub::permits::closed(&id, &status);
            refused(Code::PermitAlreadyAnswered, why.clone()).await;
            problem(
                StatusCode::CONFLICT,
                "already-decided",
                "Permit no longer pending",
                why,
                json!({"permit_status": status, "code": Code::PermitAlreadyAnswered.as_str()}),
            )
        }
        Err(e @ DecisionError::NotFound(_)) => {
            refused(Code::PermitReplyInvalid, e.to_string()).await;
            not_found("permit", &id)
        }
        // Recorded as what the account was told, an unknown permit (the
        // account reads its refusals: the record must not tell it which
        // permits exist elsewhere, or whose they are); whose it is goes to
        // the log, the operator's.
        Err(e @ DecisionError::WrongAgency { .. }) => {
            tracing::warn!(account = %partner.id, permit = %id, error = %e, "an answer to another agency's permit");
            let told = DecisionError::NotFound(id.clone()).to_string();
            refused(Code::PermitReplyInvalid, told).await;
            not_found("permit", &id)
        }
        Err(DecisionError::Invalid(why)) => {
            refused(Code::PermitReplyInvalid, format!("permit {id}: {why}")).await;
            problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-decision",
                "Decision not understood",
                why,
                json!({"code": Code::PermitReplyInvalid.as_str(), "expected": {"outcome": "granted | refused | conditional", "reasons": ["..."], "conditions": "..."}}),
            )
        }
        Err(DecisionError::Suspended(why)) => {
            refused(Code::PartnerSuspended, format!("permit {id}: {why}")).await;
            suspended(why)
        }
        Err(DecisionError::Store(e)) => store_problem(&e),
    }
}

/// 403 for an account an operator suspended (HUB204).
fn suspended(why: String) -> Response {
    problem(
        StatusCode::FORBIDDEN,
        "partner-suspended",
        "This partner is suspended",
        why,
        json!({"code": crate::diag::Code::PartnerSuspended.as_str()}),
    )
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    #[serde(default)]
    note: String,
}

/// The declaration id and body of an officer's request to `act` on a
/// declaration, or the answer refusing it: a path or body not read, an
/// account that is no customs officer's (403), or one suspended.
fn officer_request(
    app: &App,
    partner: &Partner,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
    act: &str,
) -> Result<(String, Bytes), Box<Response>> {
    let id = match id {
        Ok(Path(id)) => id,
        Err(rejection) => return Err(Box::new(bad_path(&rejection))),
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return Err(Box::new(body_refused(&rejection, app.max_body_bytes))),
    };
    if !is_officer(partner) {
        return Err(Box::new(forbidden(format!(
            "only customs officers (accounts with role {CUSTOMS_ROLE}) {act}"
        ))));
    }
    if let Some(why) = partner.suspension_detail() {
        return Err(Box::new(suspended(why)));
    }
    Ok((id, body))
}

/// A customs officer releases the goods of a cleared or examined declaration.
async fn release_declaration(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (id, body) = match officer_request(&app, &partner, id, body, "release goods") {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let note = if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else {
        match serde_json::from_slice::<ReleaseBody>(&body) {
            Ok(b) if let Some(c) = crate::hub::permits::control_character(&b.note) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bad-release",
                    "Release not understood",
                    format!(
                        "note holds the control character U+{:04X}, which is not stored",
                        c as u32
                    ),
                    json!({"expected": {"note": "..."}}),
                );
            }
            Ok(b) => b.note,
            Err(e) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "bad-release",
                    "Release not understood",
                    e.to_string(),
                    json!({"expected": {"note": "..."}}),
                );
            }
        }
    };
    // In a task of its own, as a submission: cut off by the timeout after
    // it committed, it still wakes the relay for the sender's answer.
    let (intake, officer, declaration) = (app.intake.clone(), partner.clone(), id.clone());
    let released =
        match own_task(async move { intake.release(&officer, &declaration, &note).await }).await {
            Ok(released) => released,
            Err(failed) => return failed,
        };
    match released {
        Ok(None) => not_found("declaration", &id),
        Ok(Some((d, true))) => (StatusCode::OK, Json(json!({"declaration": d}))).into_response(),
        // Released already: a resend after a lost reply or a 408 (or a
        // second officer's release) is answered as done, changing nothing.
        Ok(Some((d, false))) if d.status == crate::hub::clearance::state::RELEASED => (
            StatusCode::OK,
            Json(json!({"declaration": d, "repeated": true})),
        )
            .into_response(),
        Ok(Some((d, false))) => problem(
            StatusCode::CONFLICT,
            "not-releasable",
            "Declaration cannot be released",
            format!(
                "declaration {id} is {}; only cleared declarations and held ones whose permits were granted are released",
                d.status
            ),
            json!({"declaration_status": d.status}),
        ),
        Err(e) => store_problem(&e),
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    reason: String,
}

/// A customs officer orders a declaration's goods examined: a cleared one
/// is held at once (its sender told), one awaiting permits once they are
/// granted; either way its lane is red from then on.
async fn hold_declaration(
    State(app): State<Arc<App>>,
    Authenticated(partner): Authenticated,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (id, body) = match officer_request(&app, &partner, id, body, "hold goods") {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let bad = |detail: String| {
        problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-hold",
            "Hold not understood",
            detail,
            json!({"expected": {"reason": "..."}}),
        )
    };
    let reason = match serde_json::from_slice::<HoldBody>(&body) {
        Ok(b) if let Some(c) = crate::hub::permits::control_character(&b.reason) => {
            return bad(format!(
                "reason holds the control character U+{:04X}, which is not stored",
                c as u32
            ));
        }
        Ok(b) if b.reason.trim().is_empty() => {
            return bad("reason is empty: a hold says why the goods are examined".into());
        }
        Ok(b) => b.reason,
        Err(e) => return bad(e.to_string()),
    };
    // In a task of its own, as a release.
    let (intake, officer, declaration) = (app.intake.clone(), partner.clone(), id.clone());
    let held =
        match own_task(async move { intake.hold(&officer, &declaration, &reason).await }).await {
            Ok(held) => held,
            Err(failed) => return failed,
        };
    match held {
        Ok(None) => not_found("declaration", &id),
        Ok(Some((d, true))) => (StatusCode::OK, Json(json!({"declaration": d}))).into_response(),
        // Red already (held, or to be held once its permits are granted):
        // a resend, or a second officer's order, changes nothing.
        Ok(Some((d, false)))
            if d.lane.as_deref() == Some(crate::risk::Lane::Red.as_str())
                && crate::hub::clearance::state::HOLDABLE.contains(&d.status.as_str()) =>
        {
            (
                StatusCode::OK,
                Json(json!({"declaration": d, "repeated": true})),
            )
                .into_response()
        }
        Ok(Some((d, false))) => problem(
            StatusCode::CONFLICT,
            "not-holdable",
            "Declaration cannot be held",
            format!(
                "declaration {id} is {}; only declarations cleared (not yet released) or awaiting permits are held",
                d.status
            ),
            json!({"declaration_status": d.status}),
        ),
        Err(e) => store_problem(&e),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let mut text = app.intake.metrics().render();
    let mut gauges = store_gauges(&app).await;
    if let Some(n) = app.intake.broker().dead_letters() {
        gauges.push((
            "tradehub_dead_letters",
            "Messages in the dead-letter queues (dead.inbound, dead.permit-replies) at the last check.",
            n,
        ));
    }
    for (name, help, value) in gauges {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
        ));
    }
    let groups = app.intake.store().group_commits();
    for (name, help, value) in [
        (
            "tradehub_group_commits_total",
            "Store transactions that wrote several new interchanges at once.",
            groups.groups,
        ),
        (
            "tradehub_group_committed_total",
            "New interchanges written in those transactions.",
            groups.grouped,
        ),
        (
            "tradehub_group_commit_fallbacks_total",
            "Groups that failed as a whole and were written one by one.",
            groups.fallbacks,
        ),
    ] {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// The gauges read from the store, at most [`GAUGES_FRESH`] old; a store
/// that does not answer leaves them out.
async fn store_gauges(app: &App) -> Vec<Gauge> {
    let mut cached = app.gauges.lock().await;
    if let Some((at, gauges)) = cached.as_ref()
        && at.elapsed() < GAUGES_FRESH
    {
        return gauges.clone();
    }
    let store = app.intake.store();
    let mut gauges = vec![];
    if let Ok(n) = store.pending_permit_count().await {
        gauges.push((
            "tradehub_permits_pending",
            "Permit requests waiting for an agency's answer.",
            n,
        ));
    }
    if let Ok(counts) = store.outbox_counts().await {
        gauges.push((
            "tradehub_outbox_backlog",
            "Outbox messages not yet published (relay lag), parked ones not counted.",
            counts.backlog,
        ));
        gauges.push((
            "tradehub_outbox_waiting",
            "Outbox messages the broker declined, waiting for another attempt.",
            counts.waiting,
        ));
        gauges.push((
            "tradehub_outbox_parked",
            "Outbox messages parked for the operator (tradehub outbox list).",
            counts.parked,
        ));
    }
    *cached = Some((tokio::time::Instant::now(), gauges.clone()));
    gauges
}

/// The OpenAPI 3.1 document of this API (docs/openapi.json).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> Response {
    let mut r = OPENAPI.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers and, if AMQP intake is configured, the
/// consumer is connected to the broker.
async fn readyz(State(app): State<Arc<App>>) -> Response {
    // A write, not a query: a read-only standby after a failover (or a
    // full disk) answers queries and stores nothing, and an instance on it
    // must not be sent submissions.
    let store = app.intake.store().probe_write().await;
    let broker = app.intake.broker().status();
    let broker_text = match broker {
        None => "not configured",
        Some(true) => "ok",
        Some(false) => "down",
    };
    match (store, broker) {
        (Ok(()), None | Some(true)) => (
            StatusCode::OK,
            Json(json!({"store": "ok", "broker": broker_text})),
        )
            .into_response(),
        (Ok(()), Some(false)) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            "the AMQP broker is not connected; the consumer keeps retrying".to_owned(),
            json!({"store": "ok", "broker": broker_text}),
        ),
        (Err(e), _) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Not ready",
            e.to_string(),
            json!({"store": "down", "broker": broker_text}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[test]
    fn requests_refused_401_are_tallied_per_address_and_bounded() {
        let unauthorized = Unauthorized::default();
        let at = |secs: i64| Timestamp::from_unix(1_790_000_000 + secs);
        let a: std::net::IpAddr = "203.0.113.9".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8::7".parse().unwrap();
        // The first of an address is the one logged.
        assert!(unauthorized.note(Some(a), false, "POST", "/v1/interchanges", at(0)));
        assert!(!unauthorized.note(Some(a), true, "GET", "/v1/declarations", at(5)));
        assert!(!unauthorized.note(Some(a), false, "GET", "/v1/refusals", at(9)));
        assert!(unauthorized.note(Some(b), true, "GET", "/v1/declarations", at(7)));
        assert!(unauthorized.note(None, false, "GET", "/metricz", at(8)));
        let details = unauthorized.take();
        assert_eq!(
            details,
            [
                format!(
                    "3 requests refused (401) from 203.0.113.9 between {} and {}: 2 without an \
                     API token, 1 with a token that is no partner's; the last: GET /v1/refusals",
                    at(0),
                    at(9)
                ),
                format!(
                    "1 request refused (401) from 2001:db8::7 at {}: 1 with a token that is no \
                     partner's; the last: GET /v1/declarations",
                    at(7)
                ),
                format!(
                    "1 request refused (401) from an unknown address at {}: 1 without an API \
                     token; the last: GET /metricz",
                    at(8)
                ),
            ]
        );
        // Taken, the window starts over.
        assert!(unauthorized.take().is_empty());
        assert!(unauthorized.note(Some(a), false, "GET", "/", at(10)));

        // However many addresses, a window holds a bounded number of
        // tallies: the first 64 addresses, then one for the rest.
        let unauthorized = Unauthorized::default();
        let mut logged = 0;
        for i in 0..1000u32 {
            let peer = std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            for _ in 0..2 {
                logged += usize::from(unauthorized.note(Some(peer), true, "GET", "/", at(1)));
            }
        }
        assert_eq!(logged, UNAUTHORIZED_PEERS + 1);
        let details = unauthorized.take();
        assert_eq!(details.len(), UNAUTHORIZED_PEERS + 1);
        assert!(details[0].starts_with("2 requests refused (401) from 10.0.0.0 at "));
        let rest = details.last().unwrap();
        assert!(
            rest.starts_with(&format!(
                "{} requests refused (401) from addresses beyond the first 64 of the window",
                2 * (1000 - UNAUTHORIZED_PEERS)
            )),
            "{rest}"
        );

        // A long path is cut.
        let long = format!("/v1/{}", "x".repeat(5000));
        unauthorized.note(Some(a), false, "GET", &long, at(2));
        let detail = unauthorized.take().pop().unwrap();
        assert!(
            detail.ends_with(&format!("the last: GET /v1/{}…", "x".repeat(196))),
            "{detail}"
        );
    }

    /// A hub's intake on a fresh embedded store, with partner `P` whose
    /// token is returned.
    async fn intake() -> (Intake, String, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tradehub-admit-{}", uuid::Uuid::now_v7()));
        let store = crate::store::Store::open(&crate::store::Store::embedded_url(&dir).unwrap())
            .await
            .unwrap();
        let (token, hash) = crate::hub::new_token().unwrap();
        store
            .add_partner("P", "P", &hash, Timestamp::now())
            .await
            .unwrap();
        let intake = Intake::new(store, crate::edifact::Limits::default());
        (intake, token, dir)
    }

    /// The admission layer over one submission route whose handler reads
    /// the body, says so, then takes longer than the timeout.
    fn slow_router(intake: Intake) -> Router {
        async fn slow(body_read: Option<axum::Extension<BodyRead>>, _body: Bytes) -> Response {
            if let Some(axum::Extension(read)) = body_read {
                read.read_whole();
            }
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            StatusCode::ACCEPTED.into_response()
        }
        Router::new().route("/v1/interchanges", post(slow)).layer(
            axum::middleware::from_fn_with_state(
                Arc::new(Admission {
                    slots: Arc::new(tokio::sync::Semaphore::new(4)),
                    limit: 4,
                    timeout: std::time::Duration::from_millis(300),
                    max_body_bytes: 1 << 20,
                    intake,
                }),
                admit,
            ),
        )
    }

    /// A submission whose body was read whole and that then runs past the
    /// request timeout is answered 408 but is no refusal (it may be stored,
    /// and a resend is answered as a duplicate); one whose upload never
    /// ends is recorded as HTTP408 with its sender.
    #[tokio::test]
    async fn only_an_upload_cut_off_is_recorded_as_refused() {
        let (intake, token, dir) = intake().await;
        let request = |body: axum::body::Body| {
            axum::extract::Request::post("/v1/interchanges")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(body)
                .unwrap()
        };
        let read_whole = slow_router(intake.clone())
            .oneshot(request(axum::body::Body::from("UNA:+.? '")))
            .await
            .unwrap();
        assert_eq!(read_whole.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(intake.store().refusals("P", 10).await.unwrap().is_empty());

        // Eleven bytes of the 4,000 it declares, then nothing.
        let endless = futures_lite::StreamExt::chain(
            futures_lite::stream::once(Ok::<_, std::io::Error>(Bytes::from_static(b"UNA:+.? 'UN"))),
            futures_lite::stream::pending(),
        );
        let mut cut_off = request(axum::body::Body::from_stream(endless));
        cut_off
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from_static("4000"));
        let cut_off = slow_router(intake.clone()).oneshot(cut_off).await.unwrap();
        assert_eq!(cut_off.status(), StatusCode::REQUEST_TIMEOUT);
        let refusals = intake.store().refusal_list(Some("P"), 10).await.unwrap();
        assert_eq!(refusals.len(), 1, "{refusals:?}");
        assert_eq!(refusals[0].code, "HTTP408");
        // Recorded with what came, not with what was declared.
        assert_eq!(refusals[0].size_bytes, 11, "{refusals:?}");
        assert!(
            refusals[0]
                .detail
                .ends_with("; 11 bytes received of the 4000 declared (Content-Length)"),
            "{refusals:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
