//! The server's Ed25519 keys for signing checkpoints of the tenants'
//! chains (`docs/AUDIT.md`): from `TENANTRY_AUDIT_SIGNING_KEYS`
//! (`id:base64(32-byte seed)`, comma separated, the first signs), or one
//! generated into the data directory with a warning. Every key's public
//! half is published, so checkpoints signed before a rotation still verify.

use std::fmt;
use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};
use tenantry_store::chain::ChainCheckpoint;

pub struct AuditKeys {
    keys: Vec<(String, SigningKey)>,
}

impl fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("AuditKeys")
            .field("ids", &ids)
            .finish_non_exhaustive()
    }
}

/// A public key as `GET /v1/audit/keys` publishes it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct PublicKey {
    pub id: String,
    /// `ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, lowercase hex.
    pub public_key: String,
    /// Whether new checkpoints are signed with it.
    pub active: bool,
}

impl AuditKeys {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let keys = crate::secret_file::parse_keyed(raw)?
            .into_iter()
            .map(|(id, seed)| (id, SigningKey::from_bytes(&seed)))
            .collect();
        Ok(Self { keys })
    }

    /// The keys kept in `data_dir/audit_signing_keys`, or a new one.
    pub fn generated(
        data_dir: &Path,
    ) -> Result<(Self, Option<crate::secret_file::Generated>), String> {
        let path = data_dir.join("audit_signing_keys");
        let (line, generated) = crate::secret_file::kept_or_new_keyed(
            &path,
            "generated an audit signing key because TENANTRY_AUDIT_SIGNING_KEYS is unset; \
             configure it explicitly in production (docs/AUDIT.md)",
        );
        let keys =
            Self::parse(&line).map_err(|e| format!("{} is unreadable: {e}", path.display()))?;
        Ok((keys, generated))
    }

    /// Sign `checkpoint` (its `key_id` and `signature` set here) with the
    /// active key.
    pub fn sign(&self, mut checkpoint: ChainCheckpoint) -> ChainCheckpoint {
        let (id, key) = &self.keys[0];
        checkpoint.key_id = id.clone();
        checkpoint.signature = hex::encode(key.sign(&checkpoint.message()).to_bytes());
        checkpoint
    }

    /// The public half of key `id`.
    pub fn public_key(&self, id: &str) -> Option<[u8; 32]> {
        self.keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, key)| key.verifying_key().to_bytes())
    }

    pub fn published(&self) -> Vec<PublicKey> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, (id, key))| PublicKey {
                id: id.clone(),
                algorithm: "ed25519",
                public_key: hex::encode(key.verifying_key().to_bytes()),
                active: i == 0,
            })
            .collect()
    }
}
