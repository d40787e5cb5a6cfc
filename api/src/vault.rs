//! Envelope encryption for provider keys (AES-256-GCM-SIV).
//!
//! Each secret gets a fresh random data key; the secret is sealed under it
//! with its tenant, key id and provider bound as associated data, so a
//! ciphertext moved to another tenant or provider does not open. The data
//! key is wrapped by the active master key and kept in `data_keys`, outside
//! the event log: destroying it makes the ciphertext left in the log
//! unreadable for good (crypto-shredding).
//!
//! Formats (every blob starts with a version byte):
//! - wrapped data key: `01 | len(master id) | master id | nonce(12) | ct+tag`,
//!   associated data `tenantry/data-key/v1 | data key id`;
//! - sealed secret: `01 | nonce(12) | ct+tag`, associated data
//!   `tenantry/llm-key/v1 | tenant id | key id | provider`.

use std::fmt;
use std::path::Path;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use rand_core::{OsRng, RngCore};
use uuid::Uuid;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const KEY_LEN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("ciphertext format version {0} is not known to this build")]
    UnknownVersion(u8),
    #[error("the ciphertext is truncated or malformed")]
    Malformed,
    #[error("master key {0:?} is not configured")]
    UnknownMasterKey(String),
    #[error("decryption failed: wrong key or associated data")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

/// One master key: an id stored beside what it wraps, and 32 secret bytes.
pub struct MasterKey {
    id: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl MasterKey {
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The configured master keys; the first wraps new data keys.
pub struct MasterKeys {
    keys: Vec<MasterKey>,
}

impl fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKeys")
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

impl MasterKeys {
    /// Parse `id:base64(32 bytes)` entries separated by commas. Errors name
    /// the entry by position and id, never its key material.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let keys = crate::secret_file::parse_keyed(raw)?
            .into_iter()
            .map(|(id, key)| MasterKey { id, key })
            .collect();
        Ok(Self { keys })
    }

    /// The master key kept in `data_dir/master_keys`, or a new one (with
    /// what the composition root must keep) when there is none yet.
    pub fn generated(
        data_dir: &Path,
    ) -> Result<(Self, Option<crate::secret_file::Generated>), String> {
        let path = data_dir.join("master_keys");
        let (line, generated) = crate::secret_file::kept_or_new_keyed(
            &path,
            "generated a master key because TENANTRY_MASTER_KEYS is unset; \
             configure master keys explicitly in production (docs/KEY_MANAGEMENT.md)",
        );
        let keys =
            Self::parse(&line).map_err(|e| format!("{} is unreadable: {e}", path.display()))?;
        Ok((keys, generated))
    }

    pub fn active(&self) -> &MasterKey {
        &self.keys[0]
    }

    pub fn get(&self, id: &str) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }
}

/// A data key in memory, zeroized on drop.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    pub fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(key.as_mut());
        Self(key)
    }
}

fn cipher(key: &[u8; KEY_LEN]) -> Aes256GcmSiv {
    Aes256GcmSiv::new(key.into())
}

fn nonce() -> [u8; NONCE_LEN] {
    let mut n = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut n);
    n
}

fn data_key_aad(data_key_id: Uuid) -> Vec<u8> {
    [b"tenantry/data-key/v1".as_slice(), data_key_id.as_bytes()].concat()
}

/// Wrap a data key under a master key.
pub fn wrap(
    master: &MasterKey,
    data_key_id: Uuid,
    data_key: &DataKey,
) -> Result<Vec<u8>, VaultError> {
    let n = nonce();
    let aad = data_key_aad(data_key_id);
    let sealed = cipher(&master.key)
        .encrypt(
            Nonce::from_slice(&n),
            Payload {
                msg: data_key.0.as_ref(),
                aad: &aad,
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    let id = master.id.as_bytes();
    let mut out = Vec::with_capacity(2 + id.len() + NONCE_LEN + sealed.len());
    out.push(VERSION);
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&n);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// The id of the master key a wrapped data key names.
pub fn wrapped_by(blob: &[u8]) -> Result<&str, VaultError> {
    let (&version, rest) = blob.split_first().ok_or(VaultError::Malformed)?;
    if version != VERSION {
        return Err(VaultError::UnknownVersion(version));
    }
    let (&len, rest) = rest.split_first().ok_or(VaultError::Malformed)?;
    let id = rest.get(..len as usize).ok_or(VaultError::Malformed)?;
    std::str::from_utf8(id).map_err(|_| VaultError::Malformed)
}

/// Unwrap a data key with whichever configured master key wrapped it.
pub fn unwrap(keys: &MasterKeys, data_key_id: Uuid, blob: &[u8]) -> Result<DataKey, VaultError> {
    let id = wrapped_by(blob)?;
    let master = keys
        .get(id)
        .ok_or_else(|| VaultError::UnknownMasterKey(id.to_string()))?;
    let body = &blob[2 + id.len()..];
    if body.len() < NONCE_LEN {
        return Err(VaultError::Malformed);
    }
    let (n, sealed) = body.split_at(NONCE_LEN);
    let aad = data_key_aad(data_key_id);
    let plain = Zeroizing::new(
        cipher(&master.key)
            .decrypt(
                Nonce::from_slice(n),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Decrypt)?,
    );
    let key: [u8; KEY_LEN] = plain
        .as_slice()
        .try_into()
        .map_err(|_| VaultError::Malformed)?;
    Ok(DataKey(Zeroizing::new(key)))
}

/// What a sealed secret is bound to: moving it anywhere else breaks it.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub provider: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        [
            b"tenantry/llm-key/v1".as_slice(),
            self.tenant_id.as_bytes(),
            self.key_id.as_bytes(),
            self.provider.as_bytes(),
        ]
        .concat()
    }
}

/// Seal a secret under a data key.
pub fn seal(
    data_key: &DataKey,
    binding: Binding<'_>,
    secret: &[u8],
) -> Result<Vec<u8>, VaultError> {
    seal_bound(data_key, &binding.aad(), secret)
}

/// Seal bytes under a data key, bound to `aad` (what they may be opened as):
/// `01 | nonce(12) | ct+tag`.
pub fn seal_bound(data_key: &DataKey, aad: &[u8], secret: &[u8]) -> Result<Vec<u8>, VaultError> {
    let n = nonce();
    let sealed = cipher(&data_key.0)
        .encrypt(Nonce::from_slice(&n), Payload { msg: secret, aad })
        .map_err(|_| VaultError::Encrypt)?;
    Ok([[VERSION].as_slice(), &n, &sealed].concat())
}

/// Open a sealed secret.
pub fn open(
    data_key: &DataKey,
    binding: Binding<'_>,
    ciphertext: &[u8],
) -> Result<Zeroizing<String>, VaultError> {
    open_bound(data_key, &binding.aad(), ciphertext)
}

/// Open what [`seal_bound`] sealed with the same `aad`, as text.
pub fn open_bound(
    data_key: &DataKey,
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<String>, VaultError> {
    let (&version, rest) = ciphertext.split_first().ok_or(VaultError::Malformed)?;
    if version != VERSION {
        return Err(VaultError::UnknownVersion(version));
    }
    if rest.len() < NONCE_LEN {
        return Err(VaultError::Malformed);
    }
    let (n, sealed) = rest.split_at(NONCE_LEN);
    let plain = Zeroizing::new(
        cipher(&data_key.0)
            .decrypt(Nonce::from_slice(n), Payload { msg: sealed, aad })
            .map_err(|_| VaultError::Decrypt)?,
    );
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys(spec: &str) -> MasterKeys {
        MasterKeys::parse(spec).unwrap()
    }

    fn b64(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    fn binding(provider: &str) -> Binding<'_> {
        Binding {
            tenant_id: Uuid::from_u128(1),
            key_id: Uuid::from_u128(2),
            provider,
        }
    }

    #[test]
    fn a_secret_round_trips_through_wrap_seal_unwrap_open() {
        let masters = keys(&format!("k1:{}", b64(7)));
        let (dk_id, dk) = (Uuid::now_v7(), DataKey::generate());
        let wrapped = wrap(masters.active(), dk_id, &dk).unwrap();
        assert_eq!(wrapped_by(&wrapped), Ok("k1"));
        let sealed = seal(&dk, binding("openai"), b"sk-secret-value").unwrap();
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        let dk = unwrap(&masters, dk_id, &wrapped).unwrap();
        assert_eq!(
            open(&dk, binding("openai"), &sealed).unwrap().as_str(),
            "sk-secret-value"
        );
    }

    #[test]
    fn a_secret_moved_to_another_tenant_key_or_provider_does_not_open() {
        let dk = DataKey::generate();
        let sealed = seal(&dk, binding("openai"), b"sk-secret-value").unwrap();
        assert_eq!(
            open(&dk, binding("anthropic"), &sealed).unwrap_err(),
            VaultError::Decrypt
        );
        let other_tenant = Binding {
            tenant_id: Uuid::from_u128(9),
            ..binding("openai")
        };
        assert_eq!(
            open(&dk, other_tenant, &sealed).unwrap_err(),
            VaultError::Decrypt
        );
        let other_key = Binding {
            key_id: Uuid::from_u128(9),
            ..binding("openai")
        };
        assert_eq!(
            open(&dk, other_key, &sealed).unwrap_err(),
            VaultError::Decrypt
        );
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_id_and_a_configured_master() {
        let masters = keys(&format!("k1:{},k2:{}", b64(1), b64(2)));
        let (dk_id, dk) = (Uuid::now_v7(), DataKey::generate());
        let wrapped = wrap(masters.active(), dk_id, &dk).unwrap();
        assert!(unwrap(&masters, Uuid::now_v7(), &wrapped).is_err());
        let only_k2 = keys(&format!("k2:{}", b64(2)));
        assert_eq!(
            unwrap(&only_k2, dk_id, &wrapped).err(),
            Some(VaultError::UnknownMasterKey("k1".into()))
        );
        let impostor = keys(&format!("k1:{}", b64(3)));
        assert_eq!(
            unwrap(&impostor, dk_id, &wrapped).err(),
            Some(VaultError::Decrypt)
        );
    }

    #[test]
    fn unknown_versions_and_truncation_are_refused() {
        let dk = DataKey::generate();
        let mut sealed = seal(&dk, binding("openai"), b"x").unwrap();
        sealed[0] = 9;
        assert_eq!(
            open(&dk, binding("openai"), &sealed).unwrap_err(),
            VaultError::UnknownVersion(9)
        );
        assert_eq!(
            open(&dk, binding("openai"), &[1, 2, 3]).unwrap_err(),
            VaultError::Malformed
        );
        assert_eq!(wrapped_by(&[1, 40, b'k']), Err(VaultError::Malformed));
    }

    #[test]
    fn master_key_lists_are_checked_without_echoing_key_material() {
        for (bad, why) in [
            ("k1", "not id:base64"),
            ("k1:!!!", "not base64"),
            ("k1:AAAA", "32 bytes"),
            ("bad id:AAAA", "the id"),
        ] {
            let err = MasterKeys::parse(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
        let dup = format!("a:{},a:{}", b64(1), b64(2));
        assert!(MasterKeys::parse(&dup).unwrap_err().contains("twice"));
        assert_eq!(
            keys(&format!("new:{}, old:{}", b64(1), b64(2))).ids(),
            ["new", "old"]
        );
        assert!(!format!("{:?}", keys(&format!("k:{}", b64(5)))).contains(&b64(5)));
    }
}
