//! The billing reconciler's reports: every run (the server's schedule or
//! `tenantry billing reconcile`) keeps its report; platform admins read the
//! last one.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

/// A run's report as kept.
#[derive(Debug, Clone)]
pub struct ReconciliationRow {
    pub finished_at: DateTime<Utc>,
    pub drift: i32,
    pub fixed: i32,
    pub report: Value,
}

/// [`crate::Store::reconciliations`].
pub struct Reconciliations<'a> {
    pub(crate) pool: &'a PgPool,
}

impl Reconciliations<'_> {
    pub async fn record(
        &self,
        finished_at: DateTime<Utc>,
        drift: i32,
        fixed: i32,
        report: &Value,
    ) -> Result<(), sqlx::Error> {
        sqlx::query!(
            "INSERT INTO billing_reconciliations (finished_at, drift, fixed, report) \
             VALUES ($1, $2, $3, $4)",
            finished_at,
            drift,
            fixed,
            report
        )
        .execute(self.pool)
        .await?;
        Ok(())
    }

    pub async fn last(&self) -> Result<Option<ReconciliationRow>, sqlx::Error> {
        sqlx::query_as!(
            ReconciliationRow,
            "SELECT finished_at, drift, fixed, report FROM billing_reconciliations \
              ORDER BY id DESC LIMIT 1"
        )
        .fetch_optional(self.pool)
        .await
    }
}
