//! The audit trail's hash chain: every committed event is sealed in turn,
//! seal N holding the SHA-256 of seal N-1's hash and the event's fields
//! (see [`seal_hash`]), and the chain can be verified against the events
//! and against hashes an auditor noted earlier (anchors).
//!
//! The `events` table is append-only by trigger; the chain is what shows a
//! change made behind the trigger's back (the trigger disabled, the SQLite
//! file edited): the changed event no longer matches its seal. Someone who
//! can rewrite the events can also rewrite every seal after them, which only
//! an anchor kept outside the database shows: the hub logs the chain's head
//! whenever it seals, and `tradehub audit head` prints it.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Backend, Store, StoreError};
use crate::timestamp::Timestamp;

/// The hash before the first seal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The most findings a verification lists (all are counted).
const FINDINGS_LISTED: usize = 100;

/// Seals read per page while verifying.
const VERIFY_PAGE: i64 = 5_000;

/// An event's fields as they are sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedFields<'a> {
    pub seq: i64,
    pub interchange_id: &'a str,
    pub declaration_id: Option<&'a str>,
    pub at: &'a str,
    pub kind: &'a str,
    pub detail: &'a str,
}

/// The seal of `event` after the seal whose hash is `prev` (lowercase hex):
/// SHA-256 over the 32 bytes of `prev`, then each field as its length in
/// bytes (32-bit big-endian) and its UTF-8 bytes, in this order: `seq` in
/// decimal, `interchange_id`, `declaration_id` (length `FFFFFFFF` and no
/// bytes when there is none), `at`, `kind`, `detail`. Lowercase hex. A
/// `prev` that is not 64 hex digits is hashed as its text (the chain is
/// broken there anyway, which verification reports).
pub fn seal_hash(prev: &str, event: &SealedFields<'_>) -> String {
    let mut hasher = Sha256::new();
    match unhex(prev) {
        Some(bytes) => hasher.update(bytes),
        None => hasher.update(prev.as_bytes()),
    }
    let mut field = |value: Option<&str>| match value {
        Some(v) => {
            let len = u32::try_from(v.len()).unwrap_or(u32::MAX - 1);
            hasher.update(len.to_be_bytes());
            hasher.update(v.as_bytes());
        }
        None => hasher.update(u32::MAX.to_be_bytes()),
    };
    field(Some(&event.seq.to_string()));
    field(Some(event.interchange_id));
    field(event.declaration_id);
    field(Some(event.at));
    field(Some(event.kind));
    field(Some(event.detail));
    crate::hub::hex(&hasher.finalize())
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        let byte = digit(*pair.first()?)? * 16 + digit(*pair.get(1)?)?;
        *out.get_mut(i)? = u8::try_from(byte).ok()?;
    }
    Some(out)
}

/// The chain's last seal: its position (1 for the first) and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainHead {
    pub pos: i64,
    pub hash: String,
}

/// `POS:HASH`, the form an anchor is noted and given in ([`Anchor`]).
impl std::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.pos, self.hash)
    }
}

/// A hash of the chain noted earlier, to check that the chain still leads
/// through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub pos: i64,
    pub hash: String,
}

impl std::str::FromStr for Anchor {
    type Err = String;

    /// `POS:HASH`, as `tradehub audit head` and the hub's log give it.
    fn from_str(text: &str) -> Result<Anchor, String> {
        let (pos, hash) = text
            .split_once(':')
            .ok_or_else(|| format!("anchor {text:?}: expected POS:HASH"))?;
        let pos: i64 = pos
            .trim()
            .parse()
            .ok()
            .filter(|p| *p >= 1)
            .ok_or_else(|| format!("anchor {text:?}: the position is not a number from 1"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if unhex(&hash).is_none() {
            return Err(format!("anchor {text:?}: the hash is not 64 hex digits"));
        }
        Ok(Anchor { pos, hash })
    }
}

/// What a verification found wrong, with a stable code (docs/codes.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFinding {
    pub code: &'static str,
    /// The seal concerned, when there is one.
    pub pos: Option<i64>,
    /// The event concerned, when there is one.
    pub seq: Option<i64>,
    pub message: String,
}

/// The outcome of [`Store::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Seals checked.
    pub sealed: i64,
    /// The chain's head as the sealer last left it.
    pub head: ChainHead,
    /// Events not sealed yet (written after the sealer's last run, or by a
    /// transaction still running then): not a finding.
    pub pending: i64,
    /// Anchors checked.
    pub anchors: usize,
    /// Interchanges whose raw bytes were checked (with `raw`).
    pub raw_checked: u64,
    /// The first findings, in chain order.
    pub findings: Vec<AuditFinding>,
    /// All findings (more than are listed when there are many).
    pub findings_total: u64,
}

impl AuditReport {
    pub fn intact(&self) -> bool {
        self.findings_total == 0
    }

    fn find(&mut self, finding: AuditFinding) {
        self.findings_total += 1;
        if self.findings.len() < FINDINGS_LISTED {
            self.findings.push(finding);
        }
    }
}

/// An event's sealed fields as read from a row.
#[derive(Debug)]
struct EventRow {
    seq: i64,
    interchange_id: String,
    declaration_id: Option<String>,
    at: String,
    kind: String,
    detail: String,
}

impl EventRow {
    fn read(row: &AnyRow, seq: i64) -> Result<EventRow, StoreError> {
        Ok(EventRow {
            seq,
            interchange_id: row.try_get("interchange_id")?,
            declaration_id: row.try_get("declaration_id")?,
            at: row.try_get("at")?,
            kind: row.try_get("kind")?,
            detail: row.try_get("detail")?,
        })
    }

    /// Its seal after the seal `prev`.
    fn seal(&self, prev: &str) -> String {
        seal_hash(
            prev,
            &SealedFields {
                seq: self.seq,
                interchange_id: &self.interchange_id,
                declaration_id: self.declaration_id.as_deref(),
                at: &self.at,
                kind: &self.kind,
                detail: &self.detail,
            },
        )
    }
}

/// The SHA-256 a `received` event records (`… bytes, sha256 HEX…`).
fn recorded_sha256(detail: &str) -> Option<String> {
    let (_, rest) = detail.split_once("sha256 ")?;
    let hash = rest.get(..64)?;
    unhex(hash).map(|_| hash.to_ascii_lowercase())
}

/// Where the sealer stands (the row of `audit_chain`).
#[derive(Debug, Clone)]
struct ChainState {
    /// Events of transactions below this are all sealed.
    horizon: i64,
    /// The end of the range being sealed, when one is (PostgreSQL).
    until: Option<i64>,
    /// The last event sealed in that range, by (xact, seq).
    cursor_xact: i64,
    cursor_seq: i64,
    pos: i64,
    head: String,
}

fn state_row(r: &AnyRow) -> Result<ChainState, StoreError> {
    Ok(ChainState {
        horizon: r.try_get("horizon")?,
        until: r.try_get("until")?,
        cursor_xact: r.try_get("cursor_xact")?,
        cursor_seq: r.try_get("cursor_seq")?,
        pos: r.try_get("pos")?,
        head: r.try_get("head")?,
    })
}

const STATE_COLUMNS: &str = "horizon, until, cursor_xact, cursor_seq, pos, head";

/// Seals written by one INSERT.
const SEALS_PER_INSERT: usize = 100;

impl Store {
    /// Seals up to `batch` committed events not sealed yet, in one
    /// transaction, and gives how many it sealed (fewer than `batch`: the
    /// chain has caught up). On PostgreSQL only events of transactions that
    /// have ended are sealed (below the oldest transaction still running),
    /// so that no event can commit behind the chain; several hubs on one
    /// database take turns through the lock on `audit_chain`.
    pub async fn seal_events(&self, batch: i64, at: Timestamp) -> Result<u64, StoreError> {
        Ok(self.seal_batch(batch, at).await?.0)
    }

    /// [`seal_events`](Self::seal_events), saying also whether more may be
    /// sealed at once (a full batch, or the chain just went on from a new
    /// cluster's ids).
    async fn seal_batch(&self, batch: i64, at: Timestamp) -> Result<(u64, bool), StoreError> {
        let batch = batch.max(1);
        let _writing = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        };
        let sql = format!("SELECT {STATE_COLUMNS} FROM audit_chain WHERE id = 1{lock}");
        let mut state = state_row(&sqlx::query(&sql).fetch_one(&mut *tx).await?)?;
        // Events already sealed are never taken again: on PostgreSQL a
        // range can hold events sealed before (a store restored into
        // another cluster, below).
        let unsealed = "NOT EXISTS (SELECT 1 FROM event_seals s WHERE s.event_seq = e.seq)";
        let columns = "e.seq, e.interchange_id, e.declaration_id, e.at, e.kind, e.detail, e.xact";
        let mut until = i64::MAX;
        let mut rebased = false;
        let rows = match self.backend {
            // One writer: events commit in `seq` order.
            Backend::Sqlite => {
                let sql = self.sql(&format!(
                    "SELECT {columns} FROM events e WHERE e.seq > $1 ORDER BY e.seq LIMIT $2"
                ));
                sqlx::query(&sql)
                    .bind(state.cursor_seq)
                    .bind(batch)
                    .fetch_all(&mut *tx)
                    .await?
            }
            Backend::Postgres => {
                // Ids at or above this belong to another cluster (below).
                let mut foreign_from = None;
                if let Some(open) = state.until {
                    until = open;
                } else {
                    // Every transaction below the snapshot's xmin has
                    // ended: its events, if it committed, are all visible
                    // now. No transaction of this cluster has an id at or
                    // above its xmax.
                    let row = sqlx::query(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                         pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax",
                    )
                    .fetch_one(&mut *tx)
                    .await?;
                    let xmin: i64 = row.try_get("xmin")?;
                    let xmax: i64 = row.try_get("xmax")?;
                    if xmin < state.horizon {
                        foreign_from = Some(xmax);
                    } else if xmin == state.horizon {
                        tx.rollback().await?;
                        return Ok((0, false));
                    } else {
                        until = xmin;
                    }
                }
                match foreign_from {
                    Some(xmax) => {
                        // Transaction ids went back: the store was restored
                        // into another cluster, and its events keep the old
                        // cluster's ids. Those still unsealed (ids no
                        // transaction here has had yet) are sealed now; then
                        // the chain goes on from this cluster's first ids.
                        rebased = true;
                        tracing::warn!(
                            horizon = state.horizon,
                            xmax,
                            "the store's transaction ids went back (restored into another cluster?): the audit chain goes on from this cluster's"
                        );
                        let sql = format!(
                            "SELECT {columns} FROM events e WHERE e.xact >= $1 AND {unsealed} ORDER BY e.seq LIMIT $2"
                        );
                        sqlx::query(&sql)
                            .bind(xmax)
                            .bind(batch)
                            .fetch_all(&mut *tx)
                            .await?
                    }
                    None => {
                        let sql = format!(
                            "SELECT {columns} FROM events e WHERE e.xact >= $1 AND e.xact < $2 \
                             AND (e.xact, e.seq) > ($3, $4) AND {unsealed} ORDER BY e.xact, e.seq LIMIT $5"
                        );
                        sqlx::query(&sql)
                            .bind(state.horizon)
                            .bind(until)
                            .bind(state.cursor_xact)
                            .bind(state.cursor_seq)
                            .bind(batch)
                            .fetch_all(&mut *tx)
                            .await?
                    }
                }
            }
        };
        // Nothing new on SQLite: nothing of the chain's state changes (on
        // PostgreSQL an empty range still moves the horizon), so no write
        // takes the one writer every few seconds for nothing.
        if rows.is_empty() && matches!(self.backend, Backend::Sqlite) {
            tx.rollback().await?;
            return Ok((0, false));
        }
        let cursor_before = (state.cursor_xact, state.cursor_seq);
        let sealed_at = at.to_string();
        let mut seals: Vec<(i64, i64, String)> = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let hash = EventRow::read(row, seq)?.seal(&state.head);
            state.pos += 1;
            state.head.clone_from(&hash);
            state.cursor_xact = row.try_get("xact")?;
            state.cursor_seq = seq;
            seals.push((state.pos, seq, hash));
        }
        for chunk in seals.chunks(SEALS_PER_INSERT) {
            let sql = self.sql(&format!(
                "INSERT INTO event_seals (pos, event_seq, sealed_at, hash) VALUES {}",
                super::value_rows(chunk.len(), 4)
            ));
            let mut query = sqlx::query(&sql);
            for (pos, seq, hash) in chunk {
                query = query
                    .bind(*pos)
                    .bind(*seq)
                    .bind(&sealed_at)
                    .bind(hash.clone());
            }
            query.execute(&mut *tx).await?;
        }
        let done = rows.len() < usize::try_from(batch).unwrap_or(usize::MAX);
        match self.backend {
            // The old cluster's events are taken by `seq`, not by the
            // cursor; once all are sealed, this cluster's ids from 0.
            Backend::Postgres if rebased => {
                (state.cursor_xact, state.cursor_seq) = cursor_before;
                if done {
                    state.horizon = 0;
                    state.until = None;
                    state.cursor_xact = -1;
                    state.cursor_seq = 0;
                }
            }
            Backend::Postgres if done => {
                state.horizon = until;
                state.until = None;
                state.cursor_xact = -1;
                state.cursor_seq = 0;
            }
            Backend::Postgres => state.until = Some(until),
            Backend::Sqlite => {}
        }
        let sql = self.sql(
            "UPDATE audit_chain SET horizon = $1, until = $2, cursor_xact = $3, cursor_seq = $4, \
             pos = $5, head = $6 WHERE id = 1",
        );
        sqlx::query(&sql)
            .bind(state.horizon)
            .bind(state.until)
            .bind(state.cursor_xact)
            .bind(state.cursor_seq)
            .bind(state.pos)
            .bind(state.head)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((seals.len() as u64, !done || rebased))
    }

    /// Seals every committed event that can be sealed now, `batch` at a
    /// time, and gives how many it sealed.
    pub async fn seal_all_events(&self, batch: i64, at: Timestamp) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let (n, more) = self.seal_batch(batch, at).await?;
            total += n;
            if !more {
                return Ok(total);
            }
        }
    }

    /// The chain's head as the sealer last left it.
    pub async fn audit_head(&self) -> Result<ChainHead, StoreError> {
        let state = self.chain_state().await?;
        Ok(ChainHead {
            pos: state.pos,
            hash: state.head,
        })
    }

    async fn chain_state(&self) -> Result<ChainState, StoreError> {
        let sql = format!("SELECT {STATE_COLUMNS} FROM audit_chain WHERE id = 1");
        state_row(&sqlx::query(&sql).fetch_one(&self.pool).await?)
    }

    /// Checks the chain as far as the sealer had taken it when the check
    /// began: each seal against the event it seals and the seal before it,
    /// the positions without gaps, the head the sealer recorded, every
    /// `anchor`, and that no event was written where the chain had already
    /// passed. Reads only.
    pub async fn verify_audit_chain(&self, anchors: &[Anchor]) -> Result<AuditReport, StoreError> {
        self.verify_audit(anchors, false).await
    }

    /// [`verify_audit_chain`](Self::verify_audit_chain), and with `raw`
    /// also every stored interchange whose `received` event is sealed: its
    /// raw bytes must still have the SHA-256 that event recorded (AUD007),
    /// so the bytes a sender sent are covered by the chain too. Reads each
    /// interchange's bytes once, one interchange at a time.
    pub async fn verify_audit(
        &self,
        anchors: &[Anchor],
        raw: bool,
    ) -> Result<AuditReport, StoreError> {
        let state = self.chain_state().await?;
        let mut report = AuditReport {
            sealed: 0,
            head: ChainHead {
                pos: state.pos,
                hash: state.head.clone(),
            },
            pending: 0,
            anchors: anchors.len(),
            raw_checked: 0,
            findings: Vec::new(),
            findings_total: 0,
        };
        let mut wanted: std::collections::BTreeMap<i64, &str> = std::collections::BTreeMap::new();
        for anchor in anchors {
            wanted.insert(anchor.pos, anchor.hash.as_str());
        }
        let sql = self.sql(
            "SELECT s.pos, s.event_seq, s.hash, e.seq, e.interchange_id, e.declaration_id, \
             e.at, e.kind, e.detail FROM event_seals s LEFT JOIN events e ON e.seq = s.event_seq \
             WHERE s.pos > $1 AND s.pos <= $2 ORDER BY s.pos LIMIT $3",
        );
        let mut prev_pos = 0i64;
        let mut prev_hash = GENESIS.to_owned();
        loop {
            let rows = sqlx::query(&sql)
                .bind(prev_pos)
                .bind(state.pos)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.pool)
                .await?;
            let Some(last) = rows.last() else { break };
            let last_pos: i64 = last.try_get("pos")?;
            for row in &rows {
                self.verify_seal(row, &mut prev_pos, &mut prev_hash, &wanted, &mut report)?;
            }
            if rows.len() < usize::try_from(VERIFY_PAGE).unwrap_or(usize::MAX)
                || last_pos >= state.pos
            {
                break;
            }
        }
        if prev_pos < state.pos {
            report.find(AuditFinding {
                code: "AUD003",
                pos: Some(prev_pos + 1),
                seq: None,
                message: format!(
                    "the chain ends at seal {prev_pos}, but the sealer had sealed up to {}: seals {}..{} are gone",
                    state.pos,
                    prev_pos + 1,
                    state.pos
                ),
            });
        } else if prev_hash != state.head {
            report.find(AuditFinding {
                code: "AUD006",
                pos: Some(state.pos),
                seq: None,
                message: format!(
                    "the sealer recorded head {} at seal {}, but the seals lead to {prev_hash}",
                    state.head, state.pos
                ),
            });
        }
        for (pos, hash) in wanted.range(state.pos + 1..) {
            report.find(AuditFinding {
                code: "AUD005",
                pos: Some(*pos),
                seq: None,
                message: format!(
                    "anchor {pos}:{hash} is past the end of the chain (seal {}): the chain was cut back",
                    state.pos
                ),
            });
        }
        self.verify_unsealed(&state, &mut report).await?;
        if raw {
            self.verify_raw(&state, &mut report).await?;
        }
        Ok(report)
    }

    /// AUD007: the raw bytes of each interchange whose `received` event is
    /// sealed (up to the head `state` records) against the SHA-256 that
    /// event gives.
    async fn verify_raw(
        &self,
        state: &ChainState,
        report: &mut AuditReport,
    ) -> Result<(), StoreError> {
        let page_sql = self.sql(
            "SELECT e.interchange_id, e.seq, e.detail, s.pos FROM events e \
             JOIN event_seals s ON s.event_seq = e.seq \
             WHERE e.kind = 'received' AND e.declaration_id IS NULL AND s.pos <= $1 \
             AND (e.interchange_id > $2 OR (e.interchange_id = $2 AND e.seq > $3)) \
             ORDER BY e.interchange_id, e.seq LIMIT 1000",
        );
        let raw_sql = self.sql("SELECT raw FROM interchanges WHERE id = $1");
        // Paged by (interchange, event): an interchange with two sealed
        // `received` events is not skipped across a page's end.
        let mut after = (String::new(), 0i64);
        loop {
            let rows = sqlx::query(&page_sql)
                .bind(state.pos)
                .bind(&after.0)
                .bind(after.1)
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                let id: String = row.try_get("interchange_id")?;
                let seq: i64 = row.try_get("seq")?;
                let pos: i64 = row.try_get("pos")?;
                let detail: String = row.try_get("detail")?;
                report.raw_checked += 1;
                let recorded = recorded_sha256(&detail);
                let bytes: Option<Vec<u8>> = sqlx::query(&raw_sql)
                    .bind(&id)
                    .fetch_optional(&self.pool)
                    .await?
                    .map(|r| r.try_get("raw"))
                    .transpose()?;
                let found = bytes.map(|b| crate::hub::hex(&Sha256::digest(&b)));
                let message = match (&recorded, &found) {
                    (Some(r), Some(f)) if r == f => None,
                    (Some(r), Some(f)) => Some(format!(
                        "interchange {id}: its raw bytes have SHA-256 {f}, not the {r} its sealed received event (event {seq}, seal {pos}) recorded: the bytes were changed"
                    )),
                    (_, None) => Some(format!(
                        "interchange {id}, whose received event is sealed (event {seq}, seal {pos}), is gone from the store"
                    )),
                    (None, Some(_)) => Some(format!(
                        "interchange {id}: its sealed received event (event {seq}, seal {pos}) records no SHA-256"
                    )),
                };
                if let Some(message) = message {
                    report.find(AuditFinding {
                        code: "AUD007",
                        pos: Some(pos),
                        seq: Some(seq),
                        message,
                    });
                }
                after = (id, seq);
            }
            if rows.len() < 1000 {
                return Ok(());
            }
        }
    }

    fn verify_seal(
        &self,
        row: &AnyRow,
        prev_pos: &mut i64,
        prev_hash: &mut String,
        wanted: &std::collections::BTreeMap<i64, &str>,
        report: &mut AuditReport,
    ) -> Result<(), StoreError> {
        let pos: i64 = row.try_get("pos")?;
        let event_seq: i64 = row.try_get("event_seq")?;
        let hash: String = row.try_get("hash")?;
        report.sealed += 1;
        if pos != *prev_pos + 1 {
            report.find(AuditFinding {
                code: "AUD003",
                pos: Some(*prev_pos + 1),
                seq: None,
                message: format!("seals {}..{} are gone", *prev_pos + 1, pos - 1),
            });
        }
        let seq: Option<i64> = row.try_get("seq")?;
        match seq {
            None => report.find(AuditFinding {
                code: "AUD002",
                pos: Some(pos),
                seq: Some(event_seq),
                message: format!("event {event_seq}, sealed at {pos}, is gone from the trail"),
            }),
            Some(seq) => {
                let event = EventRow::read(row, seq)?;
                if event.seal(prev_hash) != hash {
                    let EventRow {
                        interchange_id,
                        kind,
                        at,
                        ..
                    } = event;
                    report.find(AuditFinding {
                        code: "AUD001",
                        pos: Some(pos),
                        seq: Some(seq),
                        message: format!(
                            "event {seq} ({kind} of interchange {interchange_id} at {at}) does not match its seal {pos}: the event or the seal was changed after sealing"
                        ),
                    });
                }
            }
        }
        if let Some(anchor) = wanted.get(&pos)
            && *anchor != hash
        {
            report.find(AuditFinding {
                code: "AUD005",
                pos: Some(pos),
                seq: Some(event_seq),
                message: format!(
                    "seal {pos} is {hash}, not the anchor's {anchor}: the chain was rewritten up to there"
                ),
            });
        }
        *prev_pos = pos;
        *prev_hash = hash;
        Ok(())
    }

    /// Counts the events not sealed yet, and reports those written where
    /// the chain had already passed (AUD004).
    async fn verify_unsealed(
        &self,
        state: &ChainState,
        report: &mut AuditReport,
    ) -> Result<(), StoreError> {
        // Passed: on SQLite up to the cursor (events commit in `seq`
        // order); on PostgreSQL below the horizon, or in the range being
        // sealed up to the cursor. Also, on PostgreSQL, an event with a
        // transaction id the database has not issued yet (at or above the
        // statement's snapshot xmax, which no committed row can carry):
        // written by hand, it would otherwise wait as pending until the
        // ids reached it and then be sealed like any other. Not while the
        // ids are below the horizon: a store restored into another cluster
        // holds events with that cluster's ids, which the sealer takes
        // first (see `seal_batch`).
        let (passed, binds): (&str, Vec<i64>) = match self.backend {
            Backend::Sqlite => ("e.seq <= $1", vec![state.cursor_seq]),
            Backend::Postgres => (
                "(e.xact < $1 OR (e.xact < $2 AND (e.xact, e.seq) <= ($3, $4)) \
                 OR (e.xact >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint \
                 AND pg_snapshot_xmin(pg_current_snapshot())::text::bigint >= $1))",
                vec![
                    state.horizon,
                    state.until.unwrap_or(state.horizon),
                    state.cursor_xact,
                    state.cursor_seq,
                ],
            ),
        };
        let unsealed = "NOT EXISTS (SELECT 1 FROM event_seals s WHERE s.event_seq = e.seq)";
        let limit_at = binds.len() + 1;
        let sql = self.sql(&format!(
            "SELECT e.seq, e.interchange_id, e.kind, e.at FROM events e WHERE {passed} AND {unsealed} \
             ORDER BY e.seq LIMIT ${limit_at}"
        ));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(*b);
        }
        let rows = query
            .bind(i64::try_from(FINDINGS_LISTED).unwrap_or(100))
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let seq: i64 = row.try_get("seq")?;
            let interchange_id: String = row.try_get("interchange_id")?;
            let kind: String = row.try_get("kind")?;
            let at: String = row.try_get("at")?;
            report.find(AuditFinding {
                code: "AUD004",
                pos: None,
                seq: Some(seq),
                message: format!(
                    "event {seq} ({kind} of interchange {interchange_id} at {at}) is not sealed, though the chain had passed it (or it carries a transaction id the database has not issued): it was added behind the hub's back"
                ),
            });
        }
        let sql = self.sql(&format!(
            "SELECT COALESCE(SUM(CASE WHEN {passed} THEN 1 ELSE 0 END), 0) AS passed_n, \
             COALESCE(SUM(CASE WHEN {passed} THEN 0 ELSE 1 END), 0) AS pending_n \
             FROM events e WHERE {unsealed}"
        ));
        let mut query = sqlx::query(&sql);
        for b in &binds {
            query = query.bind(*b);
        }
        let row = query.fetch_one(&self.pool).await?;
        let passed_n: i64 = row.try_get("passed_n")?;
        // Those past the ones listed are counted too.
        report.findings_total += passed_n
            .saturating_sub(i64::try_from(rows.len()).unwrap_or(i64::MAX))
            .unsigned_abs();
        report.pending = row.try_get("pending_n")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(detail: &str) -> SealedFields<'_> {
        SealedFields {
            seq: 7,
            interchange_id: "01J0000000000000000000000",
            declaration_id: None,
            at: "2026-11-30T02:00:00Z",
            kind: "received",
            detail,
        }
    }

    /// The encoding documented on [`seal_hash`], computed independently here
    /// byte by byte, so that an auditor's own tool can follow it.
    #[test]
    fn a_seal_hashes_the_previous_seal_and_each_field_with_its_length() {
        let mut input = vec![0u8; 32];
        for part in [
            "7",
            "01J0000000000000000000000",
            "\u{0}NONE",
            "2026-11-30T02:00:00Z",
            "received",
            "3 messages",
        ] {
            if part == "\u{0}NONE" {
                input.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
                continue;
            }
            input.extend_from_slice(&(part.len() as u32).to_be_bytes());
            input.extend_from_slice(part.as_bytes());
        }
        let expected = crate::hub::hex(&Sha256::digest(&input));
        assert_eq!(seal_hash(GENESIS, &fields("3 messages")), expected);
        // Any change of a field, of the previous seal, or of where a text
        // ends and the next begins changes the seal.
        assert_ne!(seal_hash(GENESIS, &fields("3 message")), expected);
        let mut moved = fields("3 messages");
        moved.kind = "receive";
        moved.at = "2026-11-30T02:00:00Zd";
        assert_ne!(seal_hash(GENESIS, &moved), expected);
        let mut with_declaration = fields("3 messages");
        with_declaration.declaration_id = Some("");
        assert_ne!(seal_hash(GENESIS, &with_declaration), expected);
        let next = seal_hash(&expected, &fields("3 messages"));
        assert_ne!(next, expected);
        assert_eq!(next.len(), 64);
    }

    #[test]
    fn the_hash_a_received_event_records_is_read_from_its_detail() {
        let hash = "0f".repeat(32);
        for detail in [
            format!("120 bytes, sha256 {hash}"),
            format!("120 bytes of WCO XML, sha256 {hash}; over HTTP"),
        ] {
            assert_eq!(recorded_sha256(&detail), Some(hash.clone()), "{detail}");
        }
        assert_eq!(recorded_sha256("120 bytes, sha256 0f0f"), None);
        assert_eq!(recorded_sha256("120 bytes"), None);
    }

    #[test]
    fn anchors_are_read_as_position_and_hash() {
        let hash = "ab".repeat(32);
        let anchor: Anchor = format!("12:{}", hash.to_uppercase()).parse().unwrap();
        assert_eq!(anchor, Anchor { pos: 12, hash });
        for bad in [
            "12",
            "0:00",
            "x:00",
            &format!("-1:{}", "0".repeat(64)),
            "3:abc",
        ] {
            assert!(bad.parse::<Anchor>().is_err(), "{bad}");
        }
    }
}
