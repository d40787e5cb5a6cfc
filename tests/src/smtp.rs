//! A real SMTP server on loopback for delivery tests: aiosmtpd from PyPI,
//! installed on first use into a virtualenv in the temp directory, writing
//! every message it receives into a Maildir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AIOSMTPD: &str = "aiosmtpd==1.4.6";

/// The virtualenv's python, creating the virtualenv when missing. Several
/// test processes may race here: each builds its own and renames it into
/// place; the loser discards its copy.
fn python() -> PathBuf {
    let venv = std::env::temp_dir().join("tenantry-aiosmtpd-1.4.6");
    let python = venv.join("bin/python");
    if venv.join("ready").exists() {
        return python;
    }
    let staging = std::env::temp_dir().join(format!(
        "tenantry-aiosmtpd-staging-{}-{}",
        std::process::id(),
        uuid::Uuid::now_v7().simple()
    ));
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&staging),
        "python3 -m venv",
    );
    run(
        Command::new(staging.join("bin/pip")).args(["install", "--quiet", AIOSMTPD]),
        "pip install aiosmtpd",
    );
    std::fs::write(staging.join("ready"), b"").expect("mark the venv ready");
    if std::fs::rename(&staging, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    // A venv's scripts hold absolute paths; run the module with the interpreter only.
    python
}

pub struct SmtpSink {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

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
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "aiosmtpd did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
