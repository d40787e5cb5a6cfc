//! Test peers from PyPI: each pinned package is installed on first use into
//! its own virtualenv in the temp directory, and its servers are started on
//! free loopback ports.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// The python of a virtualenv holding `package` (`name==version`),
/// creating it when missing. Several test processes may race here: each
/// builds its own and renames it into place; the loser discards its copy.
pub fn python_with(package: &str) -> PathBuf {
    let slug: String = package
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let venv = std::env::temp_dir().join(format!("tenantry-{slug}"));
    let python = venv.join("bin/python");
    if venv.join("ready").exists() {
        return python;
    }
    let staging = std::env::temp_dir().join(format!(
        "tenantry-{slug}-staging-{}-{}",
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
        Command::new(staging.join("bin/pip")).args(["install", "--quiet", package]),
        &format!("pip install {package}"),
    );
    std::fs::write(staging.join("ready"), b"").expect("mark the venv ready");
    if std::fs::rename(&staging, &venv).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    // A venv's scripts hold absolute paths; run modules with the interpreter only.
    python
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Wait until something accepts connections on the port.
pub async fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "{what} did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
