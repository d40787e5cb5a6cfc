//! Files that hold a secret: written with mode 0600, and synced; and the
//! secrets generated for an unset setting, which the configuration makes
//! in memory and the composition root writes (`Config::persist_generated`).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// A secret the configuration generated because its setting was unset and
/// no earlier one was kept: where to keep it, what, and what to warn.
#[derive(Clone)]
pub struct Generated {
    pub path: PathBuf,
    pub contents: Zeroizing<String>,
    pub warning: &'static str,
}

impl std::fmt::Debug for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generated")
            .field("path", &self.path)
            .field("contents", &"<redacted>")
            .finish()
    }
}

impl Generated {
    /// Keep it (unless another process kept one meanwhile), and warn.
    pub fn persist(&self) -> std::io::Result<()> {
        if self.path.exists() {
            return Ok(());
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_private(&self.path, &self.contents)?;
        tracing::warn!(path = %self.path.display(), "{}", self.warning);
        Ok(())
    }
}

/// Write `contents` to `path`, readable by this user only.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// A key's id and its 32 bytes.
pub type KeyedSecret = (String, Zeroizing<[u8; 32]>);

/// Parse `id:base64(32 bytes)` entries separated by commas (the first is
/// the active key): master keys, audit signing keys. Errors name the entry
/// by position and id, never its key material.
pub fn parse_keyed(raw: &str) -> Result<Vec<KeyedSecret>, String> {
    use base64::Engine;
    let mut keys: Vec<KeyedSecret> = Vec::new();
    for (i, entry) in raw.split(',').map(str::trim).enumerate() {
        let n = i + 1;
        let (id, b64) = entry
            .split_once(':')
            .ok_or_else(|| format!("entry {n} is not id:base64-key"))?;
        let valid_id = (1..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !valid_id {
            return Err(format!(
                "entry {n}: the id must be 1 to 64 of A-Z a-z 0-9 - _ ."
            ));
        }
        if keys.iter().any(|(k, _)| k == id) {
            return Err(format!("entry {n}: id {id:?} appears twice"));
        }
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| format!("entry {n} ({id}): the key is not base64"))?,
        );
        let key: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "entry {n} ({id}): the key must be 32 bytes, not {}",
                bytes.len()
            )
        })?;
        keys.push((id.to_string(), Zeroizing::new(key)));
    }
    Ok(keys)
}

/// The keyed secret line kept at `path`, or a new one (`local-<8 hex>:` and
/// 32 random bytes) with what the composition root must keep. Reads, never
/// writes.
pub fn kept_or_new_keyed(
    path: &Path,
    warning: &'static str,
) -> (Zeroizing<String>, Option<Generated>) {
    use base64::Engine;
    use rand_core::RngCore;
    if let Ok(existing) = std::fs::read_to_string(path) {
        return (Zeroizing::new(existing.trim().to_string()), None);
    }
    let mut key = Zeroizing::new([0u8; 32]);
    rand_core::OsRng.fill_bytes(key.as_mut());
    let id = format!("local-{}", &uuid::Uuid::now_v7().simple().to_string()[..8]);
    let line = Zeroizing::new(format!(
        "{id}:{}",
        base64::engine::general_purpose::STANDARD.encode(key.as_ref())
    ));
    let generated = Generated {
        path: path.to_path_buf(),
        contents: line.clone(),
        warning,
    };
    (line, Some(generated))
}
