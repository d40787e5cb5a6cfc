//! Tenantry's side of Stripe's API: the async-stripe request builders and
//! client make the calls; responses are decoded into the few fields
//! Tenantry uses (below), never into the generated response types, which
//! are bound to one exact Stripe API version and reject objects that lack
//! a field. That keeps Tenantry working across Stripe API versions and
//! against Stripe-compatible servers.
//!
//! The secret key lives in the client and in no error: a failure reads
//! "Stripe answered 401: <Stripe's message>" or names the network problem.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use stripe::{RequestStrategy, StripeRequest};

use crate::config::StripeSettings;

/// A call to Stripe that did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StripeApiError {
    /// Stripe (or the compatible server) refused the request.
    #[error("Stripe answered {status}: {message}")]
    Refused { status: u16, message: String },
    /// The network, a timeout, or an answer that is not what was asked.
    #[error("Stripe could not be reached: {0}")]
    Unavailable(String),
}

impl StripeApiError {
    pub fn not_found(&self) -> bool {
        matches!(self, Self::Refused { status: 404, .. })
    }
}

impl From<stripe::StripeError> for StripeApiError {
    fn from(e: stripe::StripeError) -> Self {
        match e {
            stripe::StripeError::Stripe(errors, status) => Self::Refused {
                status,
                message: errors.message.unwrap_or_else(|| "no message".into()),
            },
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// A Stripe list page.
#[derive(Debug, Deserialize)]
pub struct Page<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// An object of which only the id is read.
#[derive(Debug, Clone, Deserialize)]
pub struct Object {
    pub id: String,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

/// A Checkout or billing portal session: where to send the user.
#[derive(Debug, Deserialize)]
pub struct Session {
    pub id: String,
    pub url: Option<String>,
}

/// The fields of a subscription Tenantry reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default)]
    pub cancel_at_period_end: bool,
    /// On the subscription (older API versions) or on its items (newer).
    pub current_period_end: Option<i64>,
    /// An id, or the expanded customer.
    pub customer: Option<Value>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    pub items: Option<Page<SubscriptionItem>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub price: Option<Object>,
    pub plan: Option<Object>,
    pub current_period_end: Option<i64>,
}

impl<T: Clone> Clone for Page<T> {
    fn clone(&self) -> Self {
        Self {
            data: self.data.clone(),
            has_more: self.has_more,
        }
    }
}

/// An id field that may come expanded into its object.
pub fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(id) => Some(id.clone()),
        other => other["id"].as_str().map(str::to_string),
    }
}

impl Subscription {
    pub fn customer_id(&self) -> Option<String> {
        id_of(self.customer.as_ref())
    }

    /// The price (or plan) ids it pays for.
    pub fn price_ids(&self) -> Vec<String> {
        self.items
            .iter()
            .flat_map(|page| &page.data)
            .filter_map(|item| item.price.as_ref().or(item.plan.as_ref()))
            .map(|o| o.id.clone())
            .collect()
    }

    pub fn period_end(&self) -> Option<i64> {
        self.current_period_end.or_else(|| {
            self.items
                .iter()
                .flat_map(|page| &page.data)
                .find_map(|item| item.current_period_end)
        })
    }
}

/// The fields of an invoice Tenantry reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Invoice {
    pub id: String,
    pub number: Option<String>,
    pub status: Option<String>,
    pub currency: Option<String>,
    #[serde(default)]
    pub amount_due: i64,
    #[serde(default)]
    pub amount_paid: i64,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub customer: Option<Value>,
    /// An id or the expanded subscription (older API versions).
    pub subscription: Option<Value>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    /// Where newer API versions name the subscription and its metadata.
    pub parent: Option<Value>,
    pub subscription_details: Option<Value>,
}

impl Invoice {
    pub fn subscription_id(&self) -> Option<String> {
        id_of(self.subscription.as_ref()).or_else(|| {
            self.parent.as_ref()?["subscription_details"]["subscription"]
                .as_str()
                .map(str::to_string)
        })
    }

    /// The tenant named in the invoice's or its subscription's metadata.
    pub fn tenant_id_text(&self) -> Option<String> {
        self.metadata.get("tenant_id").cloned().or_else(|| {
            let details = self
                .subscription_details
                .as_ref()
                .or_else(|| self.parent.as_ref().map(|p| &p["subscription_details"]))?;
            details["metadata"]["tenant_id"]
                .as_str()
                .map(str::to_string)
        })
    }
}

/// The client, configured once per process.
#[derive(Clone)]
pub struct StripeApi {
    client: stripe::Client,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StripeApi")
    }
}

/// At most this many pages of a list are read (100 objects each).
const MAX_PAGES: usize = 100;

impl StripeApi {
    pub fn new(settings: &StripeSettings) -> Result<Self, StripeApiError> {
        let mut builder = stripe::ClientBuilder::new(settings.secret_key.expose_secret())
            .timeout(Duration::from_secs(20))
            .request_strategy(RequestStrategy::ExponentialBackoff(2));
        if let Some(base) = &settings.api_base {
            builder = builder.url(base.clone());
        }
        let client = builder
            .build()
            .map_err(|e| StripeApiError::Unavailable(format!("the client: {e}")))?;
        Ok(Self { client })
    }

    /// Send a request built by async-stripe; decode the answer into `T`.
    async fn send<T: DeserializeOwned>(
        &self,
        request: stripe_client_core::CustomizableStripeRequest<miniserde::json::Value>,
    ) -> Result<T, StripeApiError> {
        let value = request.send(&self.client).await?;
        let text = miniserde::json::to_string(&value);
        serde_json::from_str(&text)
            .map_err(|e| StripeApiError::Unavailable(format!("an unexpected answer: {e}")))
    }

    fn request<R: StripeRequest>(
        request: &R,
    ) -> stripe_client_core::CustomizableStripeRequest<miniserde::json::Value> {
        request.build().customize()
    }

    /// A customer for the tenant, created once even when asked twice (the
    /// idempotency key is the tenant's).
    pub async fn create_customer(
        &self,
        tenant_id: uuid::Uuid,
        name: &str,
    ) -> Result<Object, StripeApiError> {
        let request = stripe_core::customer::CreateCustomer::new()
            .name(name)
            .metadata(HashMap::from([(
                "tenant_id".to_string(),
                tenant_id.to_string(),
            )]));
        let key = stripe::IdempotencyKey::new(format!("tenantry-customer-{tenant_id}"))
            .map_err(|e| StripeApiError::Unavailable(e.to_string()))?;
        self.send(Self::request(&request).request_strategy(RequestStrategy::Idempotent(key)))
            .await
    }

    /// A Checkout Session (mode subscription) for one price; the
    /// subscription it creates carries the tenant in its metadata.
    pub async fn create_checkout_session(
        &self,
        settings: &StripeSettings,
        customer_id: &str,
        tenant_id: uuid::Uuid,
        price_id: &str,
    ) -> Result<Session, StripeApiError> {
        use stripe_checkout::checkout_session::{
            CreateCheckoutSession, CreateCheckoutSessionLineItems,
            CreateCheckoutSessionSubscriptionData,
        };
        let metadata = HashMap::from([("tenant_id".to_string(), tenant_id.to_string())]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price_id.to_string());
        item.quantity = Some(1);
        let mut subscription = CreateCheckoutSessionSubscriptionData::new();
        subscription.metadata = Some(metadata.clone());
        let request = CreateCheckoutSession::new()
            .mode(stripe_checkout::CheckoutSessionMode::Subscription)
            .customer(customer_id)
            .client_reference_id(tenant_id.to_string())
            .line_items(vec![item])
            .subscription_data(subscription)
            .metadata(metadata)
            .success_url(settings.success_url.clone())
            .cancel_url(settings.cancel_url.clone());
        self.send(Self::request(&request)).await
    }

    /// A billing portal session for the customer.
    pub async fn create_portal_session(
        &self,
        settings: &StripeSettings,
        customer_id: &str,
    ) -> Result<Session, StripeApiError> {
        let request = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
            .customer(customer_id)
            .return_url(settings.return_url.clone());
        self.send(Self::request(&request)).await
    }

    pub async fn subscription(&self, id: &str) -> Result<Subscription, StripeApiError> {
        let request = stripe_billing::subscription::RetrieveSubscription::new(id);
        self.send(Self::request(&request)).await
    }

    pub async fn invoice(&self, id: &str) -> Result<Invoice, StripeApiError> {
        let request = stripe_billing::invoice::RetrieveInvoice::new(id);
        self.send(Self::request(&request)).await
    }

    /// Every subscription, whatever its status.
    pub async fn subscriptions(&self) -> Result<Vec<Subscription>, StripeApiError> {
        self.all(|after| {
            let mut request = stripe_billing::subscription::ListSubscription::new()
                .status(stripe_billing::subscription::ListSubscriptionStatus::All)
                .limit(100);
            if let Some(after) = after {
                request = request.starting_after(after);
            }
            Self::request(&request)
        })
        .await
    }

    /// Every invoice of a customer.
    pub async fn invoices(&self, customer_id: &str) -> Result<Vec<Invoice>, StripeApiError> {
        self.all(|after| {
            let mut request = stripe_billing::invoice::ListInvoice::new()
                .customer(customer_id)
                .limit(100);
            if let Some(after) = after {
                request = request.starting_after(after);
            }
            Self::request(&request)
        })
        .await
    }

    /// The events of the last `days` days whose delivery to a webhook
    /// endpoint failed. `Ok(None)`: the server cannot say (a
    /// Stripe-compatible server without the `delivery_success` filter).
    pub async fn failed_deliveries(
        &self,
        since: i64,
    ) -> Result<Option<Vec<EventSummary>>, StripeApiError> {
        let listed = self
            .all(|after| {
                let mut request = stripe_core::event::ListEvent::new()
                    .delivery_success(false)
                    .created(stripe_types::RangeQueryTs::gte(since))
                    .limit(100);
                if let Some(after) = after {
                    request = request.starting_after(after);
                }
                Self::request(&request)
            })
            .await;
        match listed {
            Ok(events) => Ok(Some(events)),
            Err(StripeApiError::Refused { status: 400, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every customer.
    pub async fn customers(&self) -> Result<Vec<Object>, StripeApiError> {
        self.all(|after| {
            let mut request = stripe_core::customer::ListCustomer::new().limit(100);
            if let Some(after) = after {
                request = request.starting_after(after);
            }
            Self::request(&request)
        })
        .await
    }

    /// Page through a list by `starting_after`.
    async fn all<T, F>(&self, page: F) -> Result<Vec<T>, StripeApiError>
    where
        T: DeserializeOwned + HasId,
        F: Fn(
            Option<String>,
        ) -> stripe_client_core::CustomizableStripeRequest<miniserde::json::Value>,
    {
        let mut out: Vec<T> = Vec::new();
        let mut after = None;
        for _ in 0..MAX_PAGES {
            let batch: Page<T> = self.send(page(after.clone())).await?;
            let last = batch.data.last().map(|o| o.id().to_string());
            let more = batch.has_more && last.is_some();
            out.extend(batch.data);
            if !more {
                return Ok(out);
            }
            after = last;
        }
        Err(StripeApiError::Unavailable(format!(
            "more than {MAX_PAGES} pages in one list"
        )))
    }

    /// A Stripe plan object, or `None` when there is none by that id.
    pub async fn plan(&self, id: &str) -> Result<Option<Object>, StripeApiError> {
        let request = stripe_billing::plan::RetrievePlan::new(id);
        match self.send(Self::request(&request)).await {
            Ok(plan) => Ok(Some(plan)),
            Err(e) if e.not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether Stripe has a price (or plan object) by this id.
    pub async fn price_exists(&self, id: &str) -> Result<bool, StripeApiError> {
        if self.plan(id).await?.is_some() {
            return Ok(true);
        }
        let request = stripe_product::price::RetrievePrice::new(id);
        match self.send::<Object>(Self::request(&request)).await {
            Ok(_) => Ok(true),
            Err(e) if e.not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A Stripe plan object by this id, with its own product.
    pub async fn create_plan(
        &self,
        id: &str,
        name: &str,
        amount_minor: i64,
        currency: &str,
        interval: tenantry_domain::plan::Interval,
    ) -> Result<Object, StripeApiError> {
        use stripe_billing::plan::{CreatePlan, CreatePlanInlineProductParams, CreatePlanProduct};
        let interval = match interval {
            tenantry_domain::plan::Interval::Month => stripe_shared::PlanInterval::Month,
            tenantry_domain::plan::Interval::Year => stripe_shared::PlanInterval::Year,
        };
        let currency =
            currency
                .parse::<stripe_types::Currency>()
                .map_err(|_| StripeApiError::Refused {
                    status: 400,
                    message: format!("{currency} is not a currency Stripe knows"),
                })?;
        let request = CreatePlan::new(currency, interval)
            .id(id)
            .amount(amount_minor)
            .nickname(name)
            .product(CreatePlanProduct::InlineProductParams(
                CreatePlanInlineProductParams::new(name),
            ));
        self.send(Self::request(&request)).await
    }
}

/// An event as the reconciler lists it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct EventSummary {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
}

impl HasId for EventSummary {
    fn id(&self) -> &str {
        &self.id
    }
}

/// An object with an id, for paging.
pub trait HasId {
    fn id(&self) -> &str;
}

impl HasId for Object {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Subscription {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for Invoice {
    fn id(&self) -> &str {
        &self.id
    }
}
