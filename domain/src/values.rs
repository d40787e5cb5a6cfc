//! Value types that parse instead of validate: once you hold one, it is valid.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

/// Why a raw value was refused. The API reports it as a 422 field detail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValueError {
    pub code: &'static str,
    pub message: String,
}

impl ValueError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Characters that change how text around them is displayed without being
/// seen themselves: bidirectional controls (U+202E turns `exe.txt` into
/// `txt.exe`), zero-width characters, joiners, the BOM, invisible fillers and
/// tag characters. Names refuse them, so two names that look alike are alike.
pub fn is_invisible_or_bidi(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'                    // soft hyphen
            | '\u{034F}'              // combining grapheme joiner
            | '\u{061C}'              // Arabic letter mark
            | '\u{115F}' | '\u{1160}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180E}'              // Mongolian vowel separator
            | '\u{200B}'..='\u{200F}' // zero-width space, (non-)joiner, LRM, RLM
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{206F}' // isolates, deprecated format controls
            | '\u{3164}'              // Hangul filler
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{FEFF}'              // BOM, zero-width no-break space
            | '\u{FFA0}'              // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
            | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// A control character with no business in text sent to the API: every C0
/// control but tab and newline, DEL, and the C1 controls. The API refuses
/// these in every string of every body and query before a handler runs.
pub fn is_forbidden_control(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n') || c == '\u{7F}'
}

fn char_len_between(raw: &str, min: usize, max: usize, what: &str) -> Result<String, ValueError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        return Err(ValueError::new(
            "invalid_length",
            format!("{what} must be {min} to {max} characters"),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(ValueError::new(
            "invalid_characters",
            format!("{what} must not contain control characters"),
        ));
    }
    if trimmed.chars().any(is_invisible_or_bidi) {
        return Err(ValueError::new(
            "invalid_characters",
            format!("{what} must not contain invisible or text-direction characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// Why someone did something (a suspension, an impersonation): 1 to 500
/// characters, trimmed. Newlines and tabs are kept; no other character
/// below U+0020, no DEL or C1 control, and no bidirectional override or
/// isolate (which could make an admin console show a different reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reason(String);

impl Reason {
    pub const MAX_CHARS: usize = 500;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        note(raw, 1, Self::MAX_CHARS).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A note people write for people (a reason, an approval's summary, a
/// comment): `min` to `max` characters, trimmed. Newlines and tabs are kept;
/// no other character below U+0020, no DEL or C1 control, and no
/// bidirectional override or isolate (which could make a console show
/// something else than was written).
pub fn note(raw: &str, min: usize, max: usize) -> Result<String, ValueError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len < min || len > max {
        return Err(ValueError::new(
            "invalid_length",
            format!("{min} to {max} characters"),
        ));
    }
    let bidi = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if trimmed.chars().any(|c| is_forbidden_control(c) || bidi(c)) {
        return Err(ValueError::new(
            "invalid_characters",
            "newlines and tabs, but no other control or text-direction characters",
        ));
    }
    Ok(trimmed.to_string())
}

/// A short human label (an API key's name): 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Label(String);

impl Label {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        char_len_between(raw, 1, 100, "a name").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant's display name: 1 to 100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantName(String);

impl TenantName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        char_len_between(raw, 1, 100, "name").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's display name: 1 to 200 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        char_len_between(raw, 1, 200, "name").map(Self)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant slug: `[a-z0-9-]{3,63}`, not starting or ending with `-`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !(3..=63).contains(&raw.len()) || !ok_chars {
            return Err(ValueError::new(
                "invalid_slug",
                "slug must be 3 to 63 characters of a-z, 0-9 and -",
            ));
        }
        if raw.starts_with('-') || raw.ends_with('-') {
            return Err(ValueError::new(
                "invalid_slug",
                "slug must not start or end with -",
            ));
        }
        Ok(Self(raw.to_string()))
    }

    /// Derive a slug from a display name: ASCII letters and digits kept and
    /// lowercased, every other run of characters becomes one `-`; padded to
    /// three characters. `None` when nothing usable remains.
    pub fn derive_from(name: &str) -> Option<Self> {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c.to_ascii_lowercase());
            } else if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        }
        let mut out = out.trim_end_matches('-').to_string();
        out.truncate(63);
        let mut out = out.trim_end_matches('-').to_string();
        if out.is_empty() {
            return None;
        }
        while out.len() < 3 {
            out.push('0');
        }
        Self::parse(&out).ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address as given (case kept for display); compared and made
/// unique by its lowercase form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The longest address SMTP carries (RFC 5321's path limit less `<>`).
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let s = raw.trim();
        let bad = || ValueError::new("invalid_email", "email must look like name@example.com");
        if s.len() > Self::MAX_LEN
            || s.chars()
                .any(|c| c.is_whitespace() || c.is_control() || is_invisible_or_bidi(c))
        {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || local.len() > 64
            || local.contains('@')
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(bad());
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form uniqueness and sign-in compare.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

/// A person's data as events keep it: sealed under that person's data key
/// by the API before a command, opened by the read models
/// (`pd1:<data key id>:<base64url(nonce ‖ ciphertext)>`, `docs/AUDIT.md`,
/// "Erasure"). The domain only carries it. Destroying the key erases the
/// value in every event at once, and the events and their hashes stay.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(String);

impl Sealed {
    pub const PREFIX: &'static str = "pd1:";

    /// A sealed value as the vault wrote it: `pd1:<uuid>:<text>`.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = raw
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(key, body)| uuid::Uuid::parse_str(key).is_ok() && !body.is_empty());
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ValueError::new("invalid_sealed", "not a sealed value"))
        }
    }

    /// The data key it is sealed under.
    pub fn key_id(&self) -> Option<uuid::Uuid> {
        let rest = self.0.strip_prefix(Self::PREFIX)?;
        uuid::Uuid::parse_str(rest.split_once(':')?.0).ok()
    }

    /// The ciphertext part (after the key id).
    pub fn body(&self) -> &str {
        self.0
            .strip_prefix(Self::PREFIX)
            .and_then(|rest| rest.split_once(':'))
            .map_or("", |(_, body)| body)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({:?})", self.key_id())
    }
}

/// A keyed hash (HMAC-SHA256, lowercase hex) of a normalized email address:
/// what uniqueness, sign-in and invitations compare, so that finding a
/// person by their address needs no table to hold the address. The key is
/// the server's (`TENANTRY_LOOKUP_KEY`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailHash(String);

impl EmailHash {
    /// 64 lowercase hex digits.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let ok = raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Self(raw.to_string()))
        } else {
            Err(ValueError::new(
                "invalid_email_hash",
                "64 lowercase hex digits",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The longest password the policy allows.
const MAX_PASSWORD_CHARS: usize = 256;

/// The policy's upper bound alone: what sign-in checks before hashing, as a
/// longer password cannot be anyone's.
pub fn check_password_not_too_long(raw: &str) -> Result<(), ValueError> {
    if raw.chars().count() > MAX_PASSWORD_CHARS {
        return Err(ValueError::new(
            "password_too_long",
            format!("password must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Password policy, checked before hashing: 8 to 256 characters.
/// The plaintext never enters a command or an event.
pub fn check_password_policy(raw: &str) -> Result<(), ValueError> {
    if raw.chars().count() < 8 {
        return Err(ValueError::new(
            "password_too_short",
            "password must be at least 8 characters",
        ));
    }
    check_password_not_too_long(raw)
}

/// Free-form tenant settings: a JSON object of at most 16 KiB. Known keys are
/// typed: `max_seats` is a positive integer, `monthly_budget_minor` (the
/// tenant's spending limit per budget period in minor units, overriding the
/// plan's included credit) 0 or more, `budget_period` `calendar_month` (the
/// default) or `billing_period`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct TenantSettings(Map<String, Value>);

impl TenantSettings {
    pub const MAX_BYTES: usize = 16 * 1024;

    pub fn parse(value: Value) -> Result<Self, ValueError> {
        let Value::Object(map) = value else {
            return Err(ValueError::new(
                "invalid_settings",
                "settings must be a JSON object",
            ));
        };
        Self::check(map)
    }

    fn check(map: Map<String, Value>) -> Result<Self, ValueError> {
        if let Some(seats) = map.get("max_seats") {
            if seats.as_u64().is_none_or(|n| n < 1) {
                return Err(ValueError::new(
                    "invalid_settings",
                    "settings.max_seats must be a positive integer",
                ));
            }
        }
        if let Some(budget) = map.get("monthly_budget_minor") {
            if budget.as_u64().is_none() {
                return Err(ValueError::new(
                    "invalid_settings",
                    "settings.monthly_budget_minor must be a whole number, 0 or more",
                ));
            }
        }
        if let Some(period) = map.get("budget_period") {
            if period.as_str().and_then(BudgetPeriod::parse).is_none() {
                return Err(ValueError::new(
                    "invalid_settings",
                    "settings.budget_period must be calendar_month or billing_period",
                ));
            }
        }
        let size = Value::Object(map.clone()).to_string().len();
        if size > Self::MAX_BYTES {
            return Err(ValueError::new(
                "settings_too_large",
                format!("settings must be at most {} bytes of JSON", Self::MAX_BYTES),
            ));
        }
        Ok(Self(map))
    }

    /// JSON merge patch (RFC 7396) on the top level: a `null` removes a key.
    pub fn merged(&self, patch: &Self) -> Result<Self, ValueError> {
        let mut map = self.0.clone();
        for (k, v) in &patch.0 {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
        Self::check(map)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The tenant's monthly spending limit in minor units, when one is set.
    pub fn monthly_budget_minor(&self) -> Option<u64> {
        self.0.get("monthly_budget_minor").and_then(Value::as_u64)
    }

    /// What the tenant's budgets are counted over.
    pub fn budget_period(&self) -> BudgetPeriod {
        self.0
            .get("budget_period")
            .and_then(Value::as_str)
            .and_then(BudgetPeriod::parse)
            .unwrap_or_default()
    }

    /// The seat limit, when one is set.
    pub fn max_seats(&self) -> Option<u64> {
        self.0.get("max_seats").and_then(Value::as_u64)
    }
}

/// What a tenant's budgets are counted over, and reset after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BudgetPeriod {
    /// The calendar month, UTC.
    #[default]
    CalendarMonth,
    /// The tenant's subscription's current billing period (the calendar
    /// month while it has none running).
    BillingPeriod,
}

impl BudgetPeriod {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "calendar_month" => Some(Self::CalendarMonth),
            "billing_period" => Some(Self::BillingPeriod),
            _ => None,
        }
    }
}

/// A provider's model name (`gpt-4o-mini`, `claude-3-5-sonnet-latest`,
/// `accounts/fireworks/models/llama`): 1 to 100 of letters, digits and
/// `. _ : - /`.
pub fn model_name(raw: &str) -> Result<&str, ValueError> {
    let ok = (1..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-/".contains(&b));
    if ok {
        Ok(raw)
    } else {
        Err(ValueError::new(
            "invalid_model",
            "a model is 1 to 100 of letters, digits and . _ : - /",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slug_is_derived_from_a_name() {
        assert_eq!(
            Slug::derive_from("Acme Corp!").unwrap().as_str(),
            "acme-corp"
        );
        assert_eq!(
            Slug::derive_from("  Ünïcode  AI ").unwrap().as_str(),
            "n-code-ai"
        );
        assert_eq!(Slug::derive_from("X").unwrap().as_str(), "x00");
        assert!(Slug::derive_from("!!!").is_none());
        let long = "a".repeat(80);
        assert_eq!(Slug::derive_from(&long).unwrap().as_str().len(), 63);
    }

    #[test]
    fn slugs_outside_the_pattern_are_refused() {
        for bad in ["ab", "Acme", "acme_corp", "-acme", "acme-", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad} should be refused");
        }
        assert!(Slug::parse("acme-2").is_ok());
    }

    #[test]
    fn emails_are_unique_by_their_lowercase_form() {
        let e = Email::parse(" Ada@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada@Example.COM");
        assert_eq!(e.normalized(), "ada@example.com");
        for bad in [
            "ada",
            "ada@",
            "@x.io",
            "a b@x.io",
            "ada@localhost",
            "ada@x..io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(TenantName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse(&"é".repeat(100)).is_ok());
        assert!(TenantName::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn names_refuse_text_direction_and_invisible_characters() {
        for spoof in [
            "invoice\u{202E}fdp.exe",
            "ad\u{200B}min",
            "\u{FEFF}Acme",
            "Ac\u{2066}me",
            "a\u{200D}b",
            "tag\u{E0041}",
        ] {
            let err = TenantName::parse(spoof).unwrap_err();
            assert_eq!(err.code, "invalid_characters", "{spoof:?}");
            assert!(PersonName::parse(spoof).is_err(), "{spoof:?}");
            assert!(Label::parse(spoof).is_err(), "{spoof:?}");
        }
        assert!(Email::parse("ad\u{200B}min@x.io").is_err());
        assert!(TenantName::parse("Café Ünïcode 東京").is_ok());
    }

    #[test]
    fn reasons_keep_newlines_and_tabs_and_nothing_else_below_space() {
        let r = Reason::parse("  line one\n\tline two  ").unwrap();
        assert_eq!(r.as_str(), "line one\n\tline two");
        for bad in [
            "a\u{0}b",
            "a\rb",
            "a\u{1b}[31mb",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{202E}b",
        ] {
            assert_eq!(
                Reason::parse(bad).unwrap_err().code,
                "invalid_characters",
                "{bad:?}"
            );
        }
        assert!(Reason::parse("   ").is_err());
        assert_eq!(note("  a\n\tb ", 0, 10).as_deref(), Ok("a\n\tb"));
        assert_eq!(note("", 0, 10).as_deref(), Ok(""));
        assert_eq!(
            note("x\u{2066}y", 0, 10).unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(note("abc", 0, 2).unwrap_err().code, "invalid_length");
        assert!(Reason::parse(&"x".repeat(500)).is_ok());
        assert!(Reason::parse(&"x".repeat(501)).is_err());
    }

    #[test]
    fn forbidden_controls_spare_tab_and_newline() {
        assert!(!is_forbidden_control('\t'));
        assert!(!is_forbidden_control('\n'));
        for c in ['\0', '\r', '\u{1b}', '\u{7f}', '\u{9f}'] {
            assert!(is_forbidden_control(c), "{c:?}");
        }
        assert!(!is_forbidden_control('é'));
    }

    #[test]
    fn settings_merge_and_check_known_keys() {
        let base = TenantSettings::parse(serde_json::json!({"a": 1, "b": 2})).unwrap();
        let patch = TenantSettings::parse(serde_json::json!({"a": null, "max_seats": 5})).unwrap();
        let merged = base.merged(&patch).unwrap();
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            serde_json::json!({"b": 2, "max_seats": 5})
        );
        assert!(TenantSettings::parse(serde_json::json!({"max_seats": 0})).is_err());
        assert!(TenantSettings::parse(serde_json::json!([1])).is_err());
    }

    #[test]
    fn the_budget_period_is_the_calendar_month_unless_billing_period_is_set() {
        let settings = |v| TenantSettings::parse(v).unwrap().budget_period();
        assert_eq!(settings(serde_json::json!({})), BudgetPeriod::CalendarMonth);
        assert_eq!(
            settings(serde_json::json!({"budget_period": "billing_period"})),
            BudgetPeriod::BillingPeriod
        );
        for bad in [serde_json::json!("weekly"), serde_json::json!(1)] {
            assert!(TenantSettings::parse(serde_json::json!({ "budget_period": bad })).is_err());
        }
    }
}
