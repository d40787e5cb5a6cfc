//! Reconciliation: proof that Tenantry's billing and Stripe's agree, for
//! billing jobs and operators. It lists Stripe's customers, subscriptions
//! (every status) and each known customer's invoices, compares them with
//! what Tenantry holds, and reports every difference. With `fix`, each
//! difference it can repair becomes a corrective command on the tenant's
//! Billing aggregate as actor `system:reconciler`, naming the Stripe object;
//! the state it writes is Stripe's as fetched now, so a second run finds
//! nothing. Every run's report is kept; platform admins read the last.
//!
//! It also asks Stripe for the last three days' events whose delivery
//! failed (informational: the state comparison is what proves agreement).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantry_domain::billing::BillingCommand;
use tenantry_projections::billing::StripeLinkRow;
use uuid::Uuid;

use crate::error::ApiError;
use crate::service::stripe_sync::{self, stripe_failed};
use crate::state::AppState;
use crate::stripe_api::{self, EventSummary, StripeApi};

/// The actor of the corrective events.
pub const ACTOR: &str = "reconciler";

/// What one run found (and, with `fix`, repaired).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Whether differences were repaired.
    pub fix: bool,
    /// The tenant it was limited to.
    pub tenant_id: Option<Uuid>,
    pub tenants_checked: usize,
    pub differences: Vec<Difference>,
    /// Differences repaired by a corrective event.
    pub fixed: usize,
    /// Events of the last three days whose delivery failed; `null` when
    /// the Stripe server cannot list them.
    pub failed_deliveries: Option<Vec<EventSummary>>,
}

/// One way in which the two sides disagree.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Difference {
    /// `customer_unlinked`, `subscription_missing`, `status_differs`,
    /// `plan_differs`, `plan_unknown`, `subscription_unknown_to_stripe`,
    /// `invoice_missing` or `invoice_status_differs`.
    pub kind: String,
    pub tenant_id: Uuid,
    /// The Stripe object it concerns (`cus_…`, `sub_…`, `in_…`).
    pub stripe_object: String,
    /// What Tenantry holds, and what Stripe says.
    pub tenantry: Option<String>,
    pub stripe: Option<String>,
    pub fixed: bool,
}

impl Report {
    /// Whether the two sides disagreed when the run looked.
    pub fn drift(&self) -> bool {
        !self.differences.is_empty()
    }
}

struct Run<'a> {
    state: &'a AppState,
    api: &'a StripeApi,
    fix: bool,
    differences: Vec<Difference>,
    fixed: usize,
}

impl Run<'_> {
    fn found(
        &mut self,
        kind: &str,
        tenant_id: Uuid,
        object: &str,
        tenantry: Option<String>,
        stripe: Option<String>,
    ) -> usize {
        self.differences.push(Difference {
            kind: kind.into(),
            tenant_id,
            stripe_object: object.into(),
            tenantry,
            stripe,
            fixed: false,
        });
        self.differences.len() - 1
    }

    /// Apply a corrective command; mark the differences it repairs.
    async fn repair(
        &mut self,
        tenant_id: Uuid,
        command: BillingCommand,
        repairs: &[usize],
    ) -> Result<(), ApiError> {
        if !self.fix || repairs.is_empty() {
            return Ok(());
        }
        if stripe_sync::apply(self.state, None, ACTOR, tenant_id, command).await? {
            for &i in repairs {
                self.differences[i].fixed = true;
            }
            self.fixed += repairs.len();
        }
        Ok(())
    }
}

/// Compare (and with `fix`, repair); keep the report.
pub async fn reconcile(
    state: &AppState,
    only: Option<Uuid>,
    fix: bool,
) -> Result<Report, ApiError> {
    let api = stripe_sync::api(state)?;
    let started_at = state.now();
    let mut run = Run {
        state,
        api,
        fix,
        differences: Vec::new(),
        fixed: 0,
    };
    let links: BTreeMap<Uuid, StripeLinkRow> = state
        .reads
        .billing()
        .stripe_links(only)
        .await?
        .into_iter()
        .map(|l| (l.tenant_id, l))
        .collect();
    let mut customers_of: BTreeMap<Uuid, BTreeSet<String>> = BTreeMap::new();
    let mut tenant_of_customer: HashMap<String, Uuid> = HashMap::new();
    for link in links.values() {
        if let Some(c) = &link.customer_id {
            tenant_of_customer.insert(c.clone(), link.tenant_id);
            customers_of
                .entry(link.tenant_id)
                .or_default()
                .insert(c.clone());
        }
    }

    // Customers that name a tenant Tenantry has not linked.
    for customer in api.customers().await.map_err(stripe_failed)? {
        let Some(tenant_id) = customer
            .metadata
            .get("tenant_id")
            .and_then(|t| Uuid::parse_str(t).ok())
        else {
            continue;
        };
        if only.is_some_and(|t| t != tenant_id) || tenant_of_customer.contains_key(&customer.id) {
            continue;
        }
        let held = links.get(&tenant_id).and_then(|l| l.customer_id.clone());
        if held.is_some() {
            // The tenant has another customer (a second checkout that raced
            // the first): Tenantry keeps the one it linked.
            continue;
        }
        let i = run.found(
            "customer_unlinked",
            tenant_id,
            &customer.id,
            None,
            Some(customer.id.clone()),
        );
        tenant_of_customer.insert(customer.id.clone(), tenant_id);
        customers_of
            .entry(tenant_id)
            .or_default()
            .insert(customer.id.clone());
        let command = BillingCommand::LinkCustomer {
            customer_id: customer.id.clone(),
            stripe_event_id: None,
        };
        run.repair(tenant_id, command, &[i]).await?;
    }

    // Subscriptions, grouped by tenant.
    let mut subscriptions: BTreeMap<Uuid, Vec<stripe_api::Subscription>> = BTreeMap::new();
    for sub in api.subscriptions().await.map_err(stripe_failed)? {
        let tenant = sub
            .metadata
            .get("tenant_id")
            .and_then(|t| Uuid::parse_str(t).ok())
            .or_else(|| {
                sub.customer_id()
                    .and_then(|c| tenant_of_customer.get(&c).copied())
            });
        if let Some(tenant_id) = tenant.filter(|t| only.is_none_or(|o| o == *t)) {
            subscriptions.entry(tenant_id).or_default().push(sub);
        }
    }
    let mut tenants: BTreeSet<Uuid> = links.keys().copied().collect();
    tenants.extend(subscriptions.keys().copied());
    tenants.extend(customers_of.keys().copied());
    for &tenant_id in &tenants {
        let link = links.get(&tenant_id);
        let subs = subscriptions.remove(&tenant_id).unwrap_or_default();
        check_subscription(&mut run, tenant_id, link, &subs).await?;
        for customer in customers_of.get(&tenant_id).into_iter().flatten() {
            check_invoices(&mut run, tenant_id, customer).await?;
        }
    }

    let since = (started_at - chrono::Duration::days(3)).timestamp();
    let failed_deliveries = api.failed_deliveries(since).await.map_err(stripe_failed)?;
    let report = Report {
        started_at,
        finished_at: state.now(),
        fix,
        tenant_id: only,
        tenants_checked: tenants.len(),
        fixed: run.fixed,
        differences: run.differences,
        failed_deliveries,
    };
    let kept = serde_json::to_value(&report).map_err(ApiError::internal)?;
    state
        .store
        .reconciliations()
        .record(
            report.finished_at,
            i32::try_from(report.differences.len()).unwrap_or(i32::MAX),
            i32::try_from(report.fixed).unwrap_or(i32::MAX),
            &kept,
        )
        .await?;
    Ok(report)
}

/// The subscription Tenantry should hold: the one it holds if Stripe has it,
/// else the newest one that is not over, else the newest.
fn current(
    held: Option<&str>,
    subs: &[stripe_api::Subscription],
) -> Option<stripe_api::Subscription> {
    if let Some(s) = subs.iter().find(|s| Some(s.id.as_str()) == held) {
        return Some(s.clone());
    }
    let live = |s: &&stripe_api::Subscription| {
        !matches!(s.status.as_str(), "canceled" | "incomplete_expired")
    };
    subs.iter()
        .filter(live)
        .max_by_key(|s| s.created)
        .or_else(|| subs.iter().max_by_key(|s| s.created))
        .cloned()
}

async fn check_subscription(
    run: &mut Run<'_>,
    tenant_id: Uuid,
    link: Option<&StripeLinkRow>,
    subs: &[stripe_api::Subscription],
) -> Result<(), ApiError> {
    let held_id = link.and_then(|l| l.subscription_id.as_deref());
    let Some(sub) = current(held_id, subs) else {
        if let Some(held) = held_id {
            run.found(
                "subscription_unknown_to_stripe",
                tenant_id,
                held,
                Some(held.to_string()),
                None,
            );
        }
        return Ok(());
    };
    let Some(state) = stripe_sync::subscription_state(run.state, &sub, false).await? else {
        return Ok(());
    };
    let mut repairs = Vec::new();
    if held_id != Some(sub.id.as_str()) {
        repairs.push(run.found(
            "subscription_missing",
            tenant_id,
            &sub.id,
            held_id.map(str::to_string),
            Some(sub.id.clone()),
        ));
    } else {
        let held_status = link.and_then(|l| l.status.clone());
        if held_status.as_deref() != Some(state.status.as_str()) {
            repairs.push(run.found(
                "status_differs",
                tenant_id,
                &sub.id,
                held_status,
                Some(state.status.as_str().to_string()),
            ));
        }
    }
    let held_plan = link.and_then(|l| Some(format!("{}@v{}", l.plan_key.as_ref()?, l.version?)));
    match &state.plan {
        Some(plan) => {
            let theirs = format!("{}@v{}", plan.plan_key.as_str(), plan.version);
            if held_plan.as_deref() != Some(theirs.as_str()) {
                repairs.push(run.found(
                    "plan_differs",
                    tenant_id,
                    &sub.id,
                    held_plan,
                    Some(theirs),
                ));
            }
        }
        None => {
            run.found(
                "plan_unknown",
                tenant_id,
                &sub.id,
                held_plan,
                Some(sub.price_ids().join(",")),
            );
        }
    }
    let command = BillingCommand::SyncSubscription {
        stripe_event_id: None,
        fetched: true,
        state,
        observed_at: run.state.now(),
    };
    run.repair(tenant_id, command, &repairs).await
}

async fn check_invoices(
    run: &mut Run<'_>,
    tenant_id: Uuid,
    customer: &str,
) -> Result<(), ApiError> {
    let held: HashMap<String, String> = run
        .state
        .reads
        .billing()
        .invoice_statuses(tenant_id)
        .await?
        .into_iter()
        .collect();
    let invoices = run.api.invoices(customer).await.map_err(stripe_failed)?;
    for invoice in invoices {
        let theirs = stripe_sync::invoice_of(&invoice);
        let i = match held.get(&invoice.id) {
            None => run.found(
                "invoice_missing",
                tenant_id,
                &invoice.id,
                None,
                Some(theirs.status.clone()),
            ),
            Some(status) if *status != theirs.status => run.found(
                "invoice_status_differs",
                tenant_id,
                &invoice.id,
                Some(status.clone()),
                Some(theirs.status.clone()),
            ),
            Some(_) => continue,
        };
        let command = BillingCommand::RecordInvoice {
            stripe_event_id: None,
            invoice: theirs,
            observed_at: run.state.now(),
            subscription: None,
        };
        run.repair(tenant_id, command, &[i]).await?;
    }
    Ok(())
}

/// The last run's report, if any ran.
pub async fn last(state: &AppState) -> Result<Option<Report>, ApiError> {
    match state.store.reconciliations().last().await? {
        None => Ok(None),
        Some(row) => serde_json::from_value(row.report)
            .map(Some)
            .map_err(|e| ApiError::internal(format!("a kept reconciliation report: {e}"))),
    }
}
