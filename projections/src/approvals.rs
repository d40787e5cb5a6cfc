//! The `approvals` read model: each tenant's approval requests as lists
//! show them, with what "waiting for me" needs (who asked, who decided,
//! the role the current stage wants). A request's full record (payload,
//! decisions, comments) is its aggregate's, read from the log.

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::approval::{ApprovalEvent, Requester};
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `approvals` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "approvals",
    tables: &["approvals_view"],
    reads: &[
        ("approval", "ApprovalRequested"),
        ("approval", "DecisionRecorded"),
        ("approval", "StageAdvanced"),
        ("approval", "ApprovalGranted"),
        ("approval", "ApprovalRejected"),
        ("approval", "ApprovalExpired"),
        ("approval", "ApprovalCanceled"),
    ],
    apply: Apply::EachEvent(|tx, e| apply(tx, e).boxed()),
};

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    if e.aggregate_type != "approval" {
        return Ok(());
    }
    let event = ApprovalEvent::decode(&e.event_type, e.event_version, e.payload.clone())
        .map_err(|err| ProjectionError::decode(e, err))?;
    let id = Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
    let at = e.recorded_at;
    let status = |status: &'static str| {
        sqlx::query("UPDATE approvals_view SET status = $2, updated_at = $3 WHERE id = $1")
            .bind(id)
            .bind(status)
            .bind(at)
    };
    let q = match event {
        ApprovalEvent::ApprovalRequested {
            tenant_id,
            action,
            summary,
            agent_id,
            requester,
            policy,
            stages,
            expires_at,
            ..
        } => {
            let requester_user = match &requester {
                Requester::Member { user_id } => Some(*user_id),
                Requester::ApiKey { created_by, .. } => *created_by,
            };
            let roles: Vec<Option<&str>> = stages.iter().map(|s| s.role.as_deref()).collect();
            sqlx::query(
                "INSERT INTO approvals_view (id, tenant_id, seq, action, summary, agent_id, \
                        requester, requester_user, policy, stages, stage_roles, stage, stage_role, \
                        status, expires_at, requested_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $11 ->> 0, 'pending', \
                        $12, $13, $13) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(tenant_id)
            .bind(e.tenant_sequence)
            .bind(action)
            .bind(summary)
            .bind(agent_id)
            .bind(serde_json::to_value(&requester).unwrap_or(Value::Null))
            .bind(requester_user)
            .bind(policy)
            .bind(i32::try_from(stages.len()).unwrap_or(i32::MAX))
            .bind(serde_json::to_value(roles).unwrap_or(Value::Null))
            .bind(expires_at)
            .bind(at)
        }
        ApprovalEvent::DecisionRecorded { by, .. } => sqlx::query(
            "UPDATE approvals_view SET decided_by = array_append(decided_by, $2), updated_at = $3 \
             WHERE id = $1 AND NOT ($2 = ANY(decided_by))",
        )
        .bind(id)
        .bind(by)
        .bind(at),
        ApprovalEvent::StageAdvanced { stage } => sqlx::query(
            "UPDATE approvals_view SET stage = $2, stage_role = stage_roles ->> $2, \
                    updated_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(i32::try_from(stage).unwrap_or(i32::MAX))
        .bind(at),
        ApprovalEvent::ApprovalGranted {} => status("approved"),
        ApprovalEvent::ApprovalRejected { .. } => status("rejected"),
        ApprovalEvent::ApprovalExpired {} => status("expired"),
        ApprovalEvent::ApprovalCanceled { .. } => status("canceled"),
        ApprovalEvent::CommentAdded { .. } => return Ok(()),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}

/// An approval request as lists show it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ApprovalRow {
    pub id: Uuid,
    pub seq: i64,
    pub action: String,
    pub summary: String,
    pub agent_id: Option<Uuid>,
    pub requester: Value,
    pub policy: String,
    pub stages: i32,
    pub stage: i32,
    /// As of the query's `now`: a pending request past its expiry reads
    /// `expired`.
    pub status: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub requested_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Which requests a list holds.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter<'f> {
    /// `pending`, `approved`, `rejected`, `expired` or `canceled`, as of now.
    pub status: Option<&'f str>,
    /// An exact action, or a prefix ending in a dot.
    pub action: Option<&'f str>,
    pub agent_id: Option<Uuid>,
    /// Only the pending requests this member may decide now: not asked by
    /// them (nor by a key they created), not decided by them, at a stage
    /// open to their role.
    pub decidable_by: Option<(Uuid, &'f str)>,
}

/// [`crate::ReadModels::approvals`].
#[derive(Clone, Copy)]
pub struct Approvals<'a> {
    pub(crate) pool: &'a PgPool,
}

/// The status as of `$1`.
const STATUS_AT: &str = "CASE WHEN status = 'pending' AND expires_at <= $1 THEN 'expired' \
                         ELSE status END";

impl Approvals<'_> {
    /// A tenant's requests, newest first, `limit` from before `before_seq`
    /// (the `seq` of the last row of the previous page).
    pub async fn list(
        &self,
        tenant_id: Uuid,
        filter: &ApprovalFilter<'_>,
        before_seq: Option<i64>,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<(Vec<ApprovalRow>, Option<i64>), sqlx::Error> {
        let (prefix, exact) = match filter.action {
            Some(a) if a.ends_with('.') => (Some(a), None),
            other => (None, other),
        };
        let mut rows: Vec<ApprovalRow> = sqlx::query_as(&format!(
            "SELECT * FROM (SELECT id, seq, action, summary, agent_id, requester, policy, stages, \
                    stage, {STATUS_AT} AS status, expires_at, requested_at, updated_at, \
                    requester_user, decided_by, stage_role \
               FROM approvals_view WHERE tenant_id = $2 \
                AND ($3::bigint IS NULL OR seq < $3) \
                AND ($4::text IS NULL OR action = $4) \
                AND ($5::text IS NULL OR starts_with(action, $5)) \
                AND ($6::uuid IS NULL OR agent_id = $6)) r \
             WHERE ($7::text IS NULL OR r.status = $7) \
               AND ($8::uuid IS NULL OR (r.status = 'pending' \
                    AND r.requester_user IS DISTINCT FROM $8 \
                    AND NOT ($8 = ANY(r.decided_by)) \
                    AND (r.stage_role IS NULL OR r.stage_role = $9))) \
             ORDER BY r.seq DESC LIMIT $10"
        ))
        .bind(now)
        .bind(tenant_id)
        .bind(before_seq)
        .bind(exact)
        .bind(prefix)
        .bind(filter.agent_id)
        .bind(filter.status)
        .bind(filter.decidable_by.map(|(user, _)| user))
        .bind(filter.decidable_by.map(|(_, role)| role))
        .bind(limit + 1)
        .fetch_all(self.pool)
        .await?;
        let limit = usize::try_from(limit).unwrap_or(0);
        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|r| r.seq)
        } else {
            None
        };
        Ok((rows, next))
    }

    /// Pending requests past their expiry, for the expiry job: `(tenant,
    /// request)`.
    pub async fn due_for_expiry(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
        sqlx::query_as(
            "SELECT tenant_id, id FROM approvals_view \
             WHERE status = 'pending' AND expires_at IS NOT NULL AND expires_at <= $1 \
             ORDER BY expires_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool)
        .await
    }
}
