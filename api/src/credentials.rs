//! Passwords (argon2id), bearer tokens (HS256 JWTs with pinned algorithm,
//! issuer and audience), opaque refresh tokens, and the extractors that
//! authenticate a request.

use std::sync::OnceLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::header;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::config::{JWT_AUDIENCE, JWT_ISSUER};

/// A credential operation that failed inside (never a wrong password:
/// that is `Ok(false)`). The API answers it as an opaque 500.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the hashing worker failed: {0}")]
    Worker(String),
    #[error("invitation token key: {0}")]
    Key(String),
    #[error("signing a token failed: {0}")]
    Signing(String),
}

/// The argon2id parameters in use (OWASP's minimum: 19 MiB, 2 passes, 1 lane).
pub fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Run an argon2 computation off the async runtime, at most one per CPU
/// at a time. Each takes 19 MiB and tens of milliseconds of CPU by design;
/// unbounded, a burst of sign-ins would start one blocking thread each (up
/// to tokio's 512), holding gigabytes and starving everything else.
async fn argon2_task<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CredentialError> {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        tokio::sync::Semaphore::new(cpus)
    });
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| CredentialError::Worker(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CredentialError::Worker(e.to_string()))
}

/// Hash a password off the async runtime; argon2 is deliberately slow.
pub async fn hash_password(password: Zeroizing<String>) -> Result<String, CredentialError> {
    argon2_task(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| CredentialError::Hashing(e.to_string()))
    })
    .await?
}

/// Check a password against a stored hash. With no hash (unknown user) a
/// dummy hash is checked anyway, so both cases cost the same time.
pub async fn verify_password(
    password: Zeroizing<String>,
    stored: Option<String>,
) -> Result<bool, CredentialError> {
    argon2_task(move || {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_string());
        let ok = PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"tenantry-timing-equalizer", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// 32 random bytes, URL-safe base64: an opaque bearer secret.
pub fn random_token() -> String {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_ref())
}

/// An invitation's token: HMAC-SHA256 under the server secret of the
/// invitation id and token version, URL-safe. It is derived rather than
/// stored, so the email worker can rebuild the link from the event log after a
/// crash while the database holds only the token's SHA-256; a resend moves
/// to the next version, which kills the old token.
pub fn invitation_token(
    secret: &[u8],
    invitation_id: Uuid,
    version: u32,
) -> Result<Zeroizing<String>, CredentialError> {
    use hmac::{Hmac, Mac};
    // HMAC takes keys of any length; the error arm is unreachable in practice.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .map_err(|e| CredentialError::Key(e.to_string()))?;
    mac.update(b"tenantry/invitation-token/v1");
    mac.update(invitation_id.as_bytes());
    mac.update(&version.to_be_bytes());
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()),
    ))
}

/// Keyed hashes of email addresses: what the log keeps of an address that
/// no user has, so an auditor can count the attempts on one address while
/// the log holds neither the address nor whatever else was typed into the
/// field. The key is derived from the server secret
/// (`TENANTRY_JWT_SECRET`) under its own label; changing that secret
/// changes the hashes from then on.
pub struct EmailHasher(Zeroizing<[u8; 32]>);

impl EmailHasher {
    pub fn derive(secret: &[u8]) -> Self {
        use hmac::{Hmac, Mac};
        let mut key = Zeroizing::new([0u8; 32]);
        // HMAC takes keys of any length: new_from_slice cannot fail.
        if let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(secret) {
            mac.update(b"tenantry/email-hash/v1");
            key.copy_from_slice(&mac.finalize().into_bytes());
        }
        Self(key)
    }

    /// Lowercase hex of HMAC-SHA256 over the normalized address.
    pub fn hash(&self, normalized_email: &str) -> String {
        use hmac::{Hmac, Mac};
        match <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()) {
            Ok(mut mac) => {
                mac.update(normalized_email.as_bytes());
                hex::encode(mac.finalize().into_bytes())
            }
            Err(_) => String::new(),
        }
    }
}

/// SHA-256, the right hash for high-entropy random tokens.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    /// Session id: checked on every request, so logout takes effect at once.
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[JWT_ISSUER]);
        validation.set_audience(&[JWT_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: Uuid, session_id: Uuid) -> Result<String, CredentialError> {
        self.issue_for(user_id, session_id, self.ttl)
    }

    /// A token with its own life (impersonation tokens live at most an hour).
    pub fn issue_for(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        ttl: Duration,
    ) -> Result<String, CredentialError> {
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iss: JWT_ISSUER.to_string(),
            aud: JWT_AUDIENCE.to_string(),
            iat: now,
            exp: now + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| CredentialError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims)
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// An authenticated person with a live session (see `guard`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub is_platform_admin: bool,
    /// The platform admin behind an impersonation session.
    pub impersonator: Option<Uuid>,
}

impl Caller {
    pub fn actor(&self) -> tenantry_domain::Actor {
        tenantry_domain::Actor::User { id: self.user_id }
    }
}

/// Every tenant API key starts with this.
pub const API_KEY_PREFIX: &str = "tnt_";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_from_another_secret_or_audience_is_refused() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let other = JwtKeys::new(b"fedcba9876543210fedcba9876543210", Duration::from_secs(60));
        let token = keys.issue(Uuid::now_v7(), Uuid::now_v7()).unwrap();
        assert!(keys.verify(&token).is_some());
        assert!(other.verify(&token).is_none());
        let none_alg = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"alg":"none","typ":"JWT"}"#),
            token.split('.').nth(1).unwrap()
        );
        assert!(keys.verify(&none_alg).is_none());
    }

    #[test]
    fn invitation_tokens_are_keyed_per_invitation_and_version() {
        let id = Uuid::now_v7();
        let token = |secret: &[u8], id, v| invitation_token(secret, id, v).unwrap();
        let one = b"secret-one-secret-one-secret-one";
        let t1 = token(one, id, 1);
        assert_eq!(t1.len(), 43, "32 bytes, URL-safe");
        assert_eq!(t1, token(one, id, 1));
        assert_ne!(t1, token(one, id, 2));
        assert_ne!(t1, token(b"secret-two-secret-two-secret-two", id, 1));
        assert_ne!(t1, token(one, Uuid::now_v7(), 1));
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a).len(), 32);
    }
}
