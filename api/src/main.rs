use clap::Parser;
use tenantry_api::cli::{run, Cli, Done};
use tenantry_api::config::{self, Config};

/// mimalloc returns freed memory to the system: with glibc's allocator each
/// blocking thread kept its arena, and a burst of sign-ins (argon2 takes
/// 19 MiB per hash) left the process at about 190 MiB for good.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Verifying an export needs no configuration (and writes nothing).
    if let Some(done) = tenantry_api::cli::run_without_config(&cli) {
        return exit_code(done);
    }
    // The logger first: reading the configuration may generate a secret,
    // and its warning must reach the log. (A bad format is reported below.)
    let format = config::log_format(&config::env_var).unwrap_or(config::LogFormat::Text);
    tenantry_api::telemetry::init(format);
    // Parsing writes nothing; the secrets it had to generate are kept here.
    let config = match Config::from_env().and_then(|c| c.persist_generated().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tenantry: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    exit_code(run(cli, config).await)
}

fn exit_code(done: Result<Done, String>) -> std::process::ExitCode {
    match done {
        Ok(Done::Clean) => std::process::ExitCode::SUCCESS,
        // Reconciliation found differences, or a chain is broken (printed).
        Ok(Done::Drift) => std::process::ExitCode::from(3),
        Err(e) => {
            eprintln!("tenantry: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
