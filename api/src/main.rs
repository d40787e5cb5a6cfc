use clap::Parser;
use tenantry_api::cli::{run, Cli};
use tenantry_api::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tenantry: configuration error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tenantry_api::telemetry::init(config.log_format);
    match run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tenantry: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
