use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::{ClaimChange, UniqueClaims};
use crate::error::{DomainError, ErrorKind};
use crate::PriceBookId;

/// The one price book's id.
pub const PRICE_BOOK_ID: Uuid = Uuid::from_u128(0x7072_6963_652d_626f_6f6b_0000_0000_0001);

/// What one model costs, in micro-units of the list's currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    pub provider: String,
    /// A model name, or `*` for the provider's other models.
    pub model: String,
    pub input_per_mtok: i64,
    pub output_per_mtok: i64,
    #[serde(default)]
    pub cached_input_per_mtok: i64,
    #[serde(default)]
    pub per_request: i64,
}

/// One version's prices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceList {
    /// ISO 4217, lowercase.
    pub currency: String,
    pub effective_from: DateTime<Utc>,
    pub prices: Vec<ModelPrice>,
}

/// What a piece of usage cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub micros: i64,
    pub version: u32,
    /// No price for this provider and model: costed at zero.
    pub unpriced: bool,
}

/// Micro-units for `tokens` at `per_mtok` per million, rounded half up.
fn per_million(tokens: i64, per_mtok: i64) -> i64 {
    let exact = i128::from(tokens) * i128::from(per_mtok);
    i64::try_from((exact + 500_000) / 1_000_000).unwrap_or(i64::MAX)
}

impl PriceList {
    /// The price of a provider's model: its own, else the provider's `*`.
    pub fn price_of(&self, provider: &str, model: &str) -> Option<&ModelPrice> {
        let of = |m: &str| {
            self.prices
                .iter()
                .find(|p| p.provider == provider && p.model == m)
        };
        of(model).or_else(|| of("*"))
    }

    /// The cost of usage under this list (version `version`).
    #[allow(clippy::too_many_arguments)]
    pub fn cost(
        &self,
        version: u32,
        provider: &str,
        model: &str,
        input: i64,
        output: i64,
        cached_input: i64,
        requests: i64,
    ) -> Cost {
        match self.price_of(provider, model) {
            None => Cost {
                micros: 0,
                version,
                unpriced: true,
            },
            Some(p) => Cost {
                micros: per_million(input, p.input_per_mtok)
                    .saturating_add(per_million(output, p.output_per_mtok))
                    .saturating_add(per_million(cached_input, p.cached_input_per_mtok))
                    .saturating_add(requests.saturating_mul(p.per_request)),
                version,
                unpriced: false,
            },
        }
    }

    /// Check every price; the first problem.
    pub fn validate(&self) -> Result<(), PriceBookError> {
        let bad = |why: String| Err(PriceBookError::Invalid(why));
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return bad("currency: three lowercase letters (ISO 4217)".into());
        }
        if self.prices.len() > 2000 {
            return bad("at most 2000 prices".into());
        }
        for (i, p) in self.prices.iter().enumerate() {
            if [
                p.input_per_mtok,
                p.output_per_mtok,
                p.cached_input_per_mtok,
                p.per_request,
            ]
            .iter()
            .any(|v| *v < 0)
            {
                return bad(format!("prices[{i}]: a price is 0 or more"));
            }
            if p.model.is_empty() || p.model.len() > 100 || p.provider.is_empty() {
                return bad(format!(
                    "prices[{i}]: a provider and a model of 1 to 100 bytes"
                ));
            }
            if self.prices[..i]
                .iter()
                .any(|q| q.provider == p.provider && q.model == p.model)
            {
                return bad(format!(
                    "prices[{i}]: {}/{} is priced twice",
                    p.provider, p.model
                ));
            }
        }
        Ok(())
    }
}

/// The built-in book (version 0), in micro-USD per million tokens.
pub fn default_list() -> PriceList {
    let p = |provider: &str, model: &str, input, output, cached| ModelPrice {
        provider: provider.into(),
        model: model.into(),
        input_per_mtok: input,
        output_per_mtok: output,
        cached_input_per_mtok: cached,
        per_request: 0,
    };
    PriceList {
        currency: "usd".into(),
        effective_from: Utc.timestamp_opt(0, 0).single().unwrap_or_default(),
        prices: vec![
            p("openai", "gpt-4o", 2_500_000, 10_000_000, 1_250_000),
            p("openai", "gpt-4o-mini", 150_000, 600_000, 75_000),
            p("openai", "gpt-4.1", 2_000_000, 8_000_000, 500_000),
            p("openai", "gpt-4.1-mini", 400_000, 1_600_000, 100_000),
            p("openai", "o3-mini", 1_100_000, 4_400_000, 550_000),
            p("azure_openai", "gpt-4o", 2_500_000, 10_000_000, 1_250_000),
            p("azure_openai", "gpt-4o-mini", 150_000, 600_000, 75_000),
            p(
                "anthropic",
                "claude-3-5-sonnet",
                3_000_000,
                15_000_000,
                300_000,
            ),
            p(
                "anthropic",
                "claude-sonnet-4",
                3_000_000,
                15_000_000,
                300_000,
            ),
            p("anthropic", "claude-3-5-haiku", 800_000, 4_000_000, 80_000),
            p("google", "gemini-2.0-flash", 100_000, 400_000, 25_000),
            p("google", "gemini-1.5-pro", 1_250_000, 5_000_000, 312_500),
            p("mistral", "mistral-large", 2_000_000, 6_000_000, 0),
            p("mistral", "mistral-small", 200_000, 600_000, 0),
            p("groq", "llama-3.3-70b", 590_000, 790_000, 0),
            p("cohere", "command-r-plus", 2_500_000, 10_000_000, 0),
        ],
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum PriceBookCommand {
    /// The next version.
    Publish { list: PriceList },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum PriceBookEvent {
    PriceBookPublished {
        version: u32,
        #[serde(flatten)]
        list: PriceList,
    },
}

crate::stored_event!(PriceBookEvent);

impl UniqueClaims for PriceBookEvent {
    fn claim_changes(&self) -> Vec<ClaimChange> {
        Vec::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceBookError {
    #[error("{0}")]
    Invalid(String),
    #[error("a version takes effect no earlier than the one before it")]
    EffectiveTooEarly,
}

impl DomainError for PriceBookError {
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_price_book",
            Self::EffectiveTooEarly => "price_book_effective_too_early",
        }
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

/// Every published version (version 0, built in, is not stored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceBook {
    pub versions: Vec<(u32, PriceList)>,
}

impl PriceBook {
    /// Its own chain.
    fn chain_of(&self, id: PriceBookId, _actor: &crate::Actor) -> Option<Uuid> {
        Some(id.as_uuid())
    }

    /// The version in effect at `at`, and its list.
    pub fn in_effect(&self, at: DateTime<Utc>) -> (u32, PriceList) {
        self.versions
            .iter()
            .rev()
            .find(|(_, list)| list.effective_from <= at)
            .cloned()
            .unwrap_or_else(|| (0, default_list()))
    }

    pub fn latest(&self) -> (u32, PriceList) {
        self.versions
            .last()
            .cloned()
            .unwrap_or_else(|| (0, default_list()))
    }

    fn decide(&self, command: PriceBookCommand) -> Result<Vec<PriceBookEvent>, PriceBookError> {
        match command {
            PriceBookCommand::Publish { list } => {
                list.validate()?;
                let (version, previous) = self.latest();
                if version > 0 && list.effective_from < previous.effective_from {
                    return Err(PriceBookError::EffectiveTooEarly);
                }
                Ok(vec![PriceBookEvent::PriceBookPublished {
                    version: version + 1,
                    list,
                }])
            }
        }
    }

    fn evolve(&mut self, event: PriceBookEvent) {
        match event {
            PriceBookEvent::PriceBookPublished { version, list } => {
                self.versions.push((version, list));
            }
        }
    }
}

crate::aggregate!(
    PriceBook,
    "price_book",
    crate::PriceBookId,
    PriceBookCommand,
    PriceBookEvent,
    PriceBookError
);
