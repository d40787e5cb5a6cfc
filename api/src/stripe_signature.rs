//! Stripe's webhook signature: `Stripe-Signature: t=<unix seconds>,v1=<hex>,
//! v1=<hex>...`, each `v1` an HMAC-SHA256 under an endpoint secret of
//! `"<t>.<raw body>"`. An event is genuine when any `v1` matches under any
//! configured secret (several during a rotation) and `t` is within the
//! tolerance of now (so a captured delivery cannot be replayed later).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// How far `t` may be from now.
pub const TOLERANCE_SECONDS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is outside the tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
}

/// Check `header` against `body` under any of `secrets` at `now`.
pub fn verify(
    header: &str,
    body: &[u8],
    secrets: &[SecretString],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => {
                if let Ok(bytes) = hex::decode(sig) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - t).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        for signature in &signatures {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
            else {
                continue;
            };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// The header Stripe would send for `body` at `t` under `secret` (tests and
/// tools that play Stripe).
pub fn sign(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<SecretString> {
        list.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    #[test]
    fn a_genuine_signature_under_any_secret_verifies() {
        let now = Utc::now();
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_new", now.timestamp());
        assert_eq!(
            verify(&header, body, &secrets(&["whsec_old", "whsec_new"]), now),
            Ok(())
        );
        // Any one of several v1 signatures will do.
        let two = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify(&two, body, &secrets(&["whsec_new"]), now), Ok(()));
    }

    #[test]
    fn a_forged_stale_or_malformed_signature_is_refused() {
        let now = Utc::now();
        let body = br#"{"id":"evt_1"}"#;
        let forged = sign(body, "whsec_wrong", now.timestamp());
        assert_eq!(
            verify(&forged, body, &secrets(&["whsec_right"]), now),
            Err(SignatureError::Mismatch)
        );
        let tampered = sign(body, "whsec_right", now.timestamp());
        assert_eq!(
            verify(
                &tampered,
                br#"{"id":"evt_2"}"#,
                &secrets(&["whsec_right"]),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        let stale = sign(body, "whsec_right", now.timestamp() - TOLERANCE_SECONDS - 1);
        assert_eq!(
            verify(&stale, body, &secrets(&["whsec_right"]), now),
            Err(SignatureError::Stale)
        );
        for header in ["", "t=abc,v1=00", "v1=00", "t=1"] {
            assert_eq!(
                verify(header, body, &secrets(&["whsec_right"]), now),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }
}
