//! The outbox's failure handling: publishes the broker refused, messages
//! parked for the operator, and the purge of published rows.

use sqlx::Row;

use super::{OutboxMessage, Store, StoreError};
use crate::timestamp::Timestamp;

/// A failed publish of one claimed outbox message (see
/// [`Store::settle_claim`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFailure {
    pub seq: i64,
    /// Why the broker did not take it.
    pub error: String,
    /// When to try again (Unix seconds); ignored when parked.
    pub retry_at: i64,
    /// Set aside for the operator: not tried again until
    /// [`Store::retry_outbox`], and later messages to the same destination
    /// no longer wait for it.
    pub park: bool,
}

/// An unpublished outbox message that failed at least once: waiting for
/// its next attempt, or parked.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxProblem {
    pub seq: i64,
    pub message_id: String,
    pub exchange: String,
    pub routing_key: String,
    pub created_at: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    /// Next attempt, RFC 3339 (none when parked).
    pub retry_at: Option<String>,
    pub parked_at: Option<String>,
}

/// How many outbox messages are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Still to publish (waiting ones included, parked ones not).
    pub backlog: i64,
    /// Failed at least once and waiting for their next attempt.
    pub waiting: i64,
    /// Parked for the operator.
    pub parked: i64,
}

impl Store {
    /// Writes messages to the outbox on their own (most are written with
    /// the state change they announce); the relay publishes them.
    pub async fn enqueue_outbox(
        &self,
        messages: &[OutboxMessage],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let mut tx = self.pool.begin().await?;
        self.write_outbox(&mut tx, messages, &at.to_string())
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records failed publishes in an open transaction.
    pub(super) async fn record_failures_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        failures: &[OutboxFailure],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let sql = self.sql(
            "UPDATE outbox SET attempts = attempts + 1, last_error = $1, retry_at = $2, \
             parked_at = $3 WHERE seq = $4 AND published_at IS NULL",
        );
        for failure in failures {
            let (retry_at, parked_at) = if failure.park {
                (None, Some(at.to_string()))
            } else {
                (Some(failure.retry_at), None)
            };
            sqlx::query(&sql)
                .bind(failure.error.clone())
                .bind(retry_at)
                .bind(parked_at)
                .bind(failure.seq)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Unpublished outbox messages that failed at least once, oldest first,
    /// at most `limit`.
    pub async fn outbox_problems(&self, limit: i64) -> Result<Vec<OutboxProblem>, StoreError> {
        let sql = self.sql(
            "SELECT seq, message_id, exchange, routing_key, created_at, \
             CAST(attempts AS BIGINT) AS attempts, last_error, retry_at, parked_at FROM outbox \
             WHERE published_at IS NULL AND (parked_at IS NOT NULL OR retry_at IS NOT NULL) \
             ORDER BY seq LIMIT $1",
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let retry_at: Option<i64> = r.try_get("retry_at")?;
                Ok(OutboxProblem {
                    seq: r.try_get("seq")?,
                    message_id: r.try_get("message_id")?,
                    exchange: r.try_get("exchange")?,
                    routing_key: r.try_get("routing_key")?,
                    created_at: r.try_get("created_at")?,
                    attempts: r.try_get("attempts")?,
                    last_error: r.try_get("last_error")?,
                    retry_at: retry_at.map(|t| Timestamp::from_unix(t).to_string()),
                    parked_at: r.try_get("parked_at")?,
                })
            })
            .collect()
    }

    /// Puts parked and waiting messages back to be published at once, with
    /// a fresh count of attempts (their last error stays until they are
    /// published): those of `seqs`, or all when `seqs` is `None`. Returns
    /// how many.
    pub async fn retry_outbox(&self, seqs: Option<&[i64]>) -> Result<u64, StoreError> {
        let _writing = self.write_lock().await;
        let base = "UPDATE outbox SET attempts = 0, retry_at = NULL, parked_at = NULL \
                    WHERE published_at IS NULL AND (parked_at IS NOT NULL OR retry_at IS NOT NULL)";
        let mut tx = self.begin_operator().await?;
        let Some(seqs) = seqs else {
            let done = sqlx::query(base).execute(&mut *tx).await?;
            self.commit_operator(tx).await?;
            return Ok(done.rows_affected());
        };
        let mut total = 0;
        for chunk in seqs.chunks(500) {
            let placeholders: Vec<String> =
                (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = self.sql(&format!("{base} AND seq IN ({})", placeholders.join(", ")));
            let mut query = sqlx::query(&sql);
            for seq in chunk {
                query = query.bind(*seq);
            }
            total += query.execute(&mut *tx).await?.rows_affected();
        }
        self.commit_operator(tx).await?;
        Ok(total)
    }

    /// Makes a waiting message due now, keeping its attempts (tests use it
    /// instead of waiting for the pause).
    #[doc(hidden)]
    pub async fn make_due(&self, seq: i64) -> Result<(), StoreError> {
        let _writing = self.write_lock().await;
        let sql =
            self.sql("UPDATE outbox SET retry_at = 0 WHERE seq = $1 AND retry_at IS NOT NULL");
        sqlx::query(&sql).bind(seq).execute(&self.pool).await?;
        Ok(())
    }

    /// The outbox's backlog, waiting and parked messages.
    pub async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
        let row = sqlx::query(
            "SELECT \
             CAST(COALESCE(SUM(CASE WHEN parked_at IS NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS backlog, \
             CAST(COALESCE(SUM(CASE WHEN parked_at IS NULL AND retry_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS waiting, \
             CAST(COALESCE(SUM(CASE WHEN parked_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT) AS parked \
             FROM outbox WHERE published_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(OutboxCounts {
            backlog: row.try_get("backlog")?,
            waiting: row.try_get("waiting")?,
            parked: row.try_get("parked")?,
        })
    }

    /// Deletes up to `limit` published outbox rows published before
    /// `before`, oldest first; returns how many. (What they announced
    /// stays in the audit trail, the responses and the declarations; the
    /// row was only the means of publishing it.)
    pub async fn purge_published_outbox(
        &self,
        before: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        self.delete_before(
            "DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox \
             WHERE published_at IS NOT NULL AND published_at < $1 ORDER BY seq LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    /// Deletes up to `limit` refusals recorded before `before`, oldest
    /// first; how many were deleted.
    pub async fn purge_refusals(&self, before: Timestamp, limit: i64) -> Result<u64, StoreError> {
        self.delete_before(
            "DELETE FROM refusals WHERE seq IN (SELECT seq FROM refusals \
             WHERE at < $1 ORDER BY at LIMIT $2)",
            before,
            limit,
        )
        .await
    }

    /// Runs a purge statement taking the cut (`$1`) and the batch (`$2`).
    async fn delete_before(
        &self,
        statement: &str,
        before: Timestamp,
        limit: i64,
    ) -> Result<u64, StoreError> {
        let _writing = self.write_lock().await;
        let sql = self.sql(statement);
        let done = sqlx::query(&sql)
            .bind(before.to_string())
            .bind(limit)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
