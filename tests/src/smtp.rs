//! A real SMTP server on loopback for delivery tests: aiosmtpd from PyPI,
//! installed on first use into a virtualenv in the temp directory
//! ([`crate::venv`]), writing every message it receives into a Maildir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The virtualenv's python with aiosmtpd.
fn python() -> PathBuf {
    crate::venv::python_with(AIOSMTPD)
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

use crate::venv::free_port;

impl SmtpSink {
    /// A sink on a free port.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// A sink on this port, accepting connections when this returns.
    pub async fn start_on(port: u16) -> Self {
        let python = python();
        let maildir = std::env::temp_dir().join(format!("tenantry-mail-{}", uuid::Uuid::now_v7()));
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        crate::venv::wait_for_port(port, "aiosmtpd").await;
        Self {
            child,
            port,
            maildir,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, raw.
    pub fn messages(&self) -> Vec<String> {
        read_dir(&self.maildir.join("new"))
    }

    /// Wait until at least `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn read_dir(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// A port nothing listens on (for failing sends).
pub fn closed_port() -> u16 {
    free_port()
}
