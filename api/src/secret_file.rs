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
