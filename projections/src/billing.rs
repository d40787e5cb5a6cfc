//! The `billing` read models: the plan catalogue (`plans_view`) and each
//! tenant's plan, terms and status (`billing_view`).

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::{FromRow, PgConnection, PgPool};
use tenantry_domain::billing::BillingEvent;
use tenantry_domain::plan::PlanEvent;
use tenantry_domain::EventCodec;
use uuid::Uuid;

use crate::log::StoredEvent;
use crate::runtime::{Apply, ProjectionError, TableProjection};

/// The `billing` projection.
pub const PROJECTION: TableProjection = TableProjection {
    name: "billing",
    tables: &[
        "plans_view",
        "billing_view",
        "invoices_view",
        "billing_customers",
        "plan_prices",
    ],
    reads: &[("plan", "*"), ("billing", "*")],
    apply: Apply::EachEvent(|tx, e| apply(tx, e).boxed()),
};

fn json(e: &StoredEvent, value: &impl serde::Serialize) -> Result<Value, ProjectionError> {
    serde_json::to_value(value).map_err(|err| ProjectionError::decode(e, err))
}

async fn apply(tx: &mut PgConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
    let id = Uuid::parse_str(&e.aggregate_id).map_err(|err| ProjectionError::decode(e, err))?;
    match e.aggregate_type.as_str() {
        "plan" => {
            let event = PlanEvent::decode(&e.event_type, e.event_version, e.payload.clone())
                .map_err(|err| ProjectionError::decode(e, err))?;
            match event {
                PlanEvent::PlanCreated {
                    key, name, terms, ..
                } => {
                    configured_price(tx, id, 1, &terms).await?;
                    sqlx::query(
                        "INSERT INTO plans_view (id, key, name, version, terms, created_at, updated_at) \
                         VALUES ($1, $2, $3, 1, $4, $5, $5) ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(id)
                    .bind(key.as_str())
                    .bind(name.as_str())
                    .bind(json(e, &terms)?)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
                PlanEvent::PlanVersionPublished { version, terms } => {
                    configured_price(tx, id, version, &terms).await?;
                    sqlx::query(
                        "UPDATE plans_view SET version = $2, terms = $3, updated_at = $4 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(version as i32)
                    .bind(json(e, &terms)?)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
                PlanEvent::PlanRetired {} => {
                    sqlx::query(
                        "UPDATE plans_view SET retired = true, updated_at = $2 WHERE id = $1",
                    )
                    .bind(id)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        "billing" => {
            let event = BillingEvent::decode(&e.event_type, e.event_version, e.payload.clone())
                .map_err(|err| ProjectionError::decode(e, err))?;
            match event {
                BillingEvent::PlanAssigned {
                    plan_id,
                    plan_key,
                    version,
                    terms,
                    status,
                    trial_ends_at,
                } => {
                    sqlx::query(
                        "INSERT INTO billing_view (tenant_id, plan_id, plan_key, version, terms, status, trial_ends_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                         ON CONFLICT (tenant_id) DO UPDATE SET plan_id = $2, plan_key = $3, version = $4, \
                             terms = $5, status = $6, trial_ends_at = $7, updated_at = $8",
                    )
                    .bind(id)
                    .bind(plan_id)
                    .bind(plan_key.as_str())
                    .bind(version as i32)
                    .bind(json(e, &terms)?)
                    .bind(status.as_str())
                    .bind(trial_ends_at)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
                BillingEvent::SubscriptionSynced {
                    status,
                    cancel_at_period_end,
                    current_period_end,
                    subscription_id,
                    customer_id,
                    plan,
                    observed_at,
                    ..
                } => {
                    if let Some(plan) = plan {
                        // A subscription to a plan version the tenant did not
                        // hold (perhaps no plan at all yet): its row first.
                        sqlx::query(
                            "INSERT INTO billing_view (tenant_id, plan_id, plan_key, version, terms, status, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             ON CONFLICT (tenant_id) DO UPDATE SET plan_id = $2, plan_key = $3, version = $4, terms = $5",
                        )
                        .bind(id)
                        .bind(plan.plan_id)
                        .bind(plan.plan_key.as_str())
                        .bind(plan.version as i32)
                        .bind(json(e, &plan.terms)?)
                        .bind(status.as_str())
                        .bind(e.recorded_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if let Some(customer_id) = customer_id {
                        link_customer(tx, id, &customer_id, e.recorded_at).await?;
                    }
                    sqlx::query(
                        "UPDATE billing_view SET status = $2, cancel_at_period_end = $3, \
                                current_period_end = $4, subscription_id = $5, trial_ends_at = NULL, \
                                updated_at = $6, \
                                past_due_since = CASE WHEN $2 <> 'past_due' THEN NULL \
                                                      WHEN status = 'past_due' THEN past_due_since \
                                                      ELSE $7 END \
                          WHERE tenant_id = $1",
                    )
                    .bind(id)
                    .bind(status.as_str())
                    .bind(cancel_at_period_end)
                    .bind(current_period_end)
                    .bind(subscription_id)
                    .bind(e.recorded_at)
                    .bind(observed_at)
                    .execute(&mut *tx)
                    .await?;
                }
                BillingEvent::StripeCustomerLinked { customer_id, .. } => {
                    link_customer(tx, id, &customer_id, e.recorded_at).await?;
                }
                BillingEvent::InvoiceRecorded { invoice, .. } => {
                    sqlx::query(
                        "INSERT INTO invoices_view (tenant_id, id, number, status, currency, amount_due, \
                                amount_paid, hosted_invoice_url, invoice_pdf, period_start, period_end, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                         ON CONFLICT (id) DO UPDATE SET number = $3, status = $4, currency = $5, \
                             amount_due = $6, amount_paid = $7, hosted_invoice_url = $8, invoice_pdf = $9, \
                             period_start = $10, period_end = $11, updated_at = $12",
                    )
                    .bind(id)
                    .bind(&invoice.id)
                    .bind(&invoice.number)
                    .bind(&invoice.status)
                    .bind(&invoice.currency)
                    .bind(invoice.amount_due)
                    .bind(invoice.amount_paid)
                    .bind(&invoice.hosted_invoice_url)
                    .bind(&invoice.invoice_pdf)
                    .bind(invoice.period_start)
                    .bind(invoice.period_end)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
                BillingEvent::TrialEnded {} => {
                    sqlx::query(
                        "UPDATE billing_view SET status = 'unpaid', updated_at = $2 WHERE tenant_id = $1",
                    )
                    .bind(id)
                    .bind(e.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A configured Stripe price, to find its plan version from a subscription.
async fn configured_price(
    tx: &mut PgConnection,
    plan_id: Uuid,
    version: u32,
    terms: &tenantry_domain::plan::PlanTerms,
) -> Result<(), sqlx::Error> {
    let Some(price) = &terms.stripe_price else {
        return Ok(());
    };
    sqlx::query(
        "INSERT INTO plan_prices (price_id, plan_id, version) VALUES ($1, $2, $3) \
         ON CONFLICT (price_id) DO UPDATE SET plan_id = $2, version = $3",
    )
    .bind(price)
    .bind(plan_id)
    .bind(version as i32)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn link_customer(
    tx: &mut PgConnection,
    tenant_id: Uuid,
    customer_id: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO billing_customers (tenant_id, customer_id, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id) DO UPDATE SET customer_id = $2, updated_at = $3",
    )
    .bind(tenant_id)
    .bind(customer_id)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What Tenantry holds of a tenant's Stripe side, for reconciliation.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct StripeLinkRow {
    pub tenant_id: Uuid,
    pub customer_id: Option<String>,
    pub subscription_id: Option<String>,
    pub status: Option<String>,
    pub plan_key: Option<String>,
    pub version: Option<i32>,
}

/// A plan as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct PlanRow {
    pub id: Uuid,
    pub key: String,
    pub name: String,
    pub version: i32,
    pub terms: Value,
    pub retired: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A tenant's plan, the terms it holds and its status.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct BillingRow {
    pub tenant_id: Uuid,
    pub plan_id: Uuid,
    pub plan_key: String,
    pub version: i32,
    pub terms: Value,
    pub status: String,
    pub trial_ends_at: Option<DateTime<Utc>>,
    pub subscription_id: Option<String>,
    pub cancel_at_period_end: bool,
    pub current_period_end: Option<DateTime<Utc>>,
    pub customer_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// An invoice of a tenant's.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct InvoiceRow {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// Plans and tenants' billing: [`crate::ReadModels::billing`].
#[derive(Clone, Copy)]
pub struct BillingModels<'a> {
    pub(crate) pool: &'a PgPool,
}

const PLAN_COLUMNS: &str = "id, key, name, version, terms, retired, created_at, updated_at";

impl BillingModels<'_> {
    /// Every plan, retired ones last, by key.
    pub async fn plans(&self) -> Result<Vec<PlanRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans_view ORDER BY retired, key"
        ))
        .fetch_all(self.pool)
        .await
    }

    pub async fn plan_by_key(&self, key: &str) -> Result<Option<PlanRow>, sqlx::Error> {
        sqlx::query_as(&format!(
            "SELECT {PLAN_COLUMNS} FROM plans_view WHERE key = $1"
        ))
        .bind(key)
        .fetch_optional(self.pool)
        .await
    }

    /// Tenants whose trial ran out and is not recorded yet, at most `limit`.
    pub async fn trials_due(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT tenant_id FROM billing_view \
              WHERE status = 'trialing' AND trial_ends_at <= $1 ORDER BY trial_ends_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool)
        .await
    }

    /// A tenant's invoices, newest period first.
    pub async fn invoices(&self, tenant_id: Uuid) -> Result<Vec<InvoiceRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, number, status, currency, amount_due, amount_paid, hosted_invoice_url, \
                    invoice_pdf, period_start, period_end, updated_at \
               FROM invoices_view WHERE tenant_id = $1 \
              ORDER BY period_start DESC NULLS LAST, id LIMIT 200",
        )
        .bind(tenant_id)
        .fetch_all(self.pool)
        .await
    }

    /// The tenant a Stripe subscription belongs to.
    pub async fn tenant_of_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar("SELECT tenant_id FROM billing_view WHERE subscription_id = $1")
            .bind(subscription_id)
            .fetch_optional(self.pool)
            .await
    }

    /// The plan version an operator configured this Stripe price for.
    pub async fn plan_of_price(&self, price_id: &str) -> Result<Option<(Uuid, i32)>, sqlx::Error> {
        sqlx::query_as("SELECT plan_id, version FROM plan_prices WHERE price_id = $1")
            .bind(price_id)
            .fetch_optional(self.pool)
            .await
    }

    /// The tenant a Stripe customer belongs to.
    pub async fn tenant_of_customer(&self, customer_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT tenant_id FROM billing_customers WHERE customer_id = $1 \
              ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(customer_id)
        .fetch_optional(self.pool)
        .await
    }

    /// Every tenant with a Stripe customer or subscription (or only this
    /// one), with what Tenantry holds of it.
    pub async fn stripe_links(
        &self,
        only: Option<Uuid>,
    ) -> Result<Vec<StripeLinkRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT coalesce(b.tenant_id, c.tenant_id) AS tenant_id, c.customer_id, \
                    b.subscription_id, b.status, b.plan_key, b.version \
               FROM billing_view b FULL JOIN billing_customers c ON c.tenant_id = b.tenant_id \
              WHERE (b.subscription_id IS NOT NULL OR c.customer_id IS NOT NULL) \
                AND ($1::uuid IS NULL OR coalesce(b.tenant_id, c.tenant_id) = $1) \
              ORDER BY 1",
        )
        .bind(only)
        .fetch_all(self.pool)
        .await
    }

    /// The status Tenantry holds of each of these invoices.
    pub async fn invoice_statuses(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<(String, String)>, sqlx::Error> {
        sqlx::query_as("SELECT id, status FROM invoices_view WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_all(self.pool)
            .await
    }

    pub async fn tenant(&self, tenant_id: Uuid) -> Result<Option<BillingRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT b.tenant_id, b.plan_id, b.plan_key, b.version, b.terms, b.status, b.trial_ends_at, \
                    b.subscription_id, b.cancel_at_period_end, b.current_period_end, c.customer_id, \
                    b.updated_at \
               FROM billing_view b LEFT JOIN billing_customers c ON c.tenant_id = b.tenant_id \
              WHERE b.tenant_id = $1",
        )
        .bind(tenant_id)
        .fetch_optional(self.pool)
        .await
    }
}
