//! People's data in events (`docs/AUDIT.md`, "Erasure"; ADR 0008).
//!
//! A person's email and name are sealed before a command under a data key
//! of their own: a `data_keys` row whose `subject` is the person (a user's
//! id; for an invitee's address, an id derived from the address's keyed
//! hash), wrapped by the vault's master keys like a provider key's. The log
//! holds `pd1:<data key id>:<base64url(nonce ‖ ciphertext)>`, bound to the
//! key and the field (associated data `tenantry/personal/v1 | key id |
//! field`). The read models open it ([`PersonalData`] is their
//! `Opener`). Erasure destroys the subject's keys: every event that sealed
//! under them stays, with its hash, and opens to nothing.
//!
//! Addresses are found by their keyed hash (HMAC-SHA256 under
//! `TENANTRY_LOOKUP_KEY`), never by the address.

use std::sync::Arc;

use base64::Engine;
use tenantry_domain::values::{Email, EmailHash, Sealed};
use tenantry_projections::personal::Opener;
use uuid::Uuid;

use crate::credentials::EmailHasher;
use crate::error::ApiError;
use crate::store::Store;
use crate::vault::{self, MasterKeys};

/// Which of a person's fields a sealed value is: bound into it, so a
/// sealed name does not open as an email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Email,
    Name,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
        }
    }
}

/// Seals and opens people's data, and hashes their addresses.
pub struct PersonalData {
    masters: Arc<MasterKeys>,
    hasher: EmailHasher,
}

/// The namespace of the subjects derived from an address's hash.
const ADDRESS_SUBJECTS: Uuid = Uuid::from_u128(0x7e6a_11c0_5eed_4d1b_9a3e_ad0d_0e55_0001);

fn aad(key_id: Uuid, field: &str) -> Vec<u8> {
    [
        b"tenantry/personal/v1".as_slice(),
        key_id.as_bytes(),
        field.as_bytes(),
    ]
    .concat()
}

impl PersonalData {
    pub fn new(masters: Arc<MasterKeys>, lookup_key: &[u8]) -> Self {
        Self {
            masters,
            hasher: EmailHasher::derive(lookup_key),
        }
    }

    pub fn from_config(config: &crate::config::Config) -> Self {
        Self::new(config.master_keys.clone(), config.lookup_key_bytes())
    }

    /// The keyed hash of an address (normalized first).
    pub fn email_hash(&self, email: &Email) -> EmailHash {
        self.hash_normalized(&email.normalized())
    }

    /// The keyed hash of an address already normalized.
    pub fn hash_normalized(&self, normalized: &str) -> EmailHash {
        EmailHash::parse(&self.hasher.hash(normalized))
            .unwrap_or_else(|_| unreachable!("HMAC-SHA256 hex is 64 lowercase hex digits"))
    }

    /// What tells this lookup key from another without revealing it: the
    /// keyed hash of a fixed label.
    pub fn lookup_key_fingerprint(&self) -> String {
        self.hasher.hash("tenantry/lookup-key-fingerprint/v1")
    }

    /// The subject whose key seals an address for people who may not have
    /// an account (invitees): derived from the address's hash.
    pub fn address_subject(hash: &EmailHash) -> Uuid {
        Uuid::new_v5(&ADDRESS_SUBJECTS, hash.as_str().as_bytes())
    }

    /// Seal each value as its field under the subject's live data key (made
    /// and kept on first need; read once for all of them).
    pub async fn seal<const N: usize>(
        &self,
        store: &Store,
        subject: Uuid,
        fields: [(Field, &str); N],
    ) -> Result<[Sealed; N], ApiError> {
        let vault_tables = store.vault();
        let (key_id, wrapped) = match vault_tables.subject_key(subject).await? {
            Some(key) => key,
            None => {
                let id = Uuid::now_v7();
                let master = self.masters.active();
                let wrapped = vault::wrap(master, id, &vault::DataKey::generate())
                    .map_err(ApiError::internal)?;
                vault_tables
                    .keep_subject_key(subject, id, master.id(), &wrapped)
                    .await?
            }
        };
        let data_key =
            vault::unwrap(&self.masters, key_id, &wrapped).map_err(ApiError::internal)?;
        let mut sealed = Vec::with_capacity(N);
        for (field, plain) in fields {
            let bytes =
                vault::seal_bound(&data_key, &aad(key_id, field.as_str()), plain.as_bytes())
                    .map_err(ApiError::internal)?;
            let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            sealed.push(
                Sealed::parse(&format!("{}{key_id}:{body}", Sealed::PREFIX))
                    .map_err(ApiError::internal)?,
            );
        }
        sealed
            .try_into()
            .map_err(|_| ApiError::internal("sealed another number of values than asked"))
    }
}

impl Opener for PersonalData {
    fn open(
        &self,
        key_id: Uuid,
        wrapped: &[u8],
        field: &str,
        sealed: &Sealed,
    ) -> Result<String, String> {
        let data_key = vault::unwrap(&self.masters, key_id, wrapped).map_err(|e| e.to_string())?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed.body())
            .map_err(|_| "not base64url".to_string())?;
        vault::open_bound(&data_key, &aad(key_id, field), &bytes)
            .map(|plain| plain.to_string())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn personal() -> PersonalData {
        let masters = MasterKeys::parse(&format!(
            "m1:{}",
            base64::engine::general_purpose::STANDARD.encode([7u8; 32])
        ))
        .unwrap();
        PersonalData::new(Arc::new(masters), b"lookup-key-lookup-key-lookup-key")
    }

    #[test]
    fn a_sealed_field_opens_as_itself_only_and_hides_the_plaintext() {
        let p = personal();
        let key_id = Uuid::now_v7();
        let data_key = vault::DataKey::generate();
        let wrapped = vault::wrap(p.masters.active(), key_id, &data_key).unwrap();
        let sealed =
            vault::seal_bound(&data_key, &aad(key_id, "email"), b"ada@example.com").unwrap();
        let text = format!(
            "pd1:{key_id}:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        );
        assert!(!text.contains("ada"));
        let sealed = Sealed::parse(&text).unwrap();
        assert_eq!(
            p.open(key_id, &wrapped, "email", &sealed).as_deref(),
            Ok("ada@example.com")
        );
        assert!(
            p.open(key_id, &wrapped, "name", &sealed).is_err(),
            "another field"
        );
        assert!(
            p.open(Uuid::now_v7(), &wrapped, "email", &sealed).is_err(),
            "another key id"
        );
    }

    #[test]
    fn addresses_hash_by_their_normalized_form_under_the_lookup_key() {
        let p = personal();
        let a = p.email_hash(&Email::parse("Ada@Example.com").unwrap());
        assert_eq!(a, p.email_hash(&Email::parse("ada@example.COM").unwrap()));
        assert_ne!(a, p.email_hash(&Email::parse("bob@example.com").unwrap()));
        let other = PersonalData::new(p.masters.clone(), b"another-lookup-key-another-lookup");
        assert_ne!(
            a,
            other.email_hash(&Email::parse("ada@example.com").unwrap())
        );
        assert_eq!(
            PersonalData::address_subject(&a),
            PersonalData::address_subject(&a.clone())
        );
    }
}
