//! `lgsp`: the platform server and its command-line client.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lgsp::cli::{self, Command as ClientCommand};
use lgsp::config::{Config, ServeArgs};

#[derive(Parser)]
#[command(
    name = "lgsp",
    version,
    about = "Local Government Service Platform: integration and data sharing for a province"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the platform: data plane (tokens, gateway) and control plane (admin API).
    Serve(ServeArgs),
    /// Check an evidence bundle offline: signature, proof and record (exit 0 or 1).
    Verify(lgsp::logcmd::VerifyArgs),
    /// The evidence log: verify a data directory, export and restore archives,
    /// rotate the signing key, download a call's bundle.
    #[command(subcommand)]
    Log(lgsp::logcmd::LogCommand),
    #[command(flatten)]
    Client(ClientCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Verify(args) => lgsp::logcmd::verify(args),
        Command::Log(command) => lgsp::logcmd::run(command),
        Command::Client(command) => cli::run(command),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    init_tracing();
    let config = match Config::resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("lgsp: bad configuration: {e:#}");
            return ExitCode::from(2);
        }
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = config.workers {
        runtime.worker_threads(workers);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lgsp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let data_dir = config.data_dir.clone();
        let tls = config.tls.is_some();
        let running = match lgsp::server::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("lgsp: cannot start: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        let scheme = if tls { "https" } else { "http" };
        println!(
            "lgsp: data plane listening on {scheme}://{}",
            running.data_addr
        );
        println!(
            "lgsp: control plane listening on {scheme}://{}",
            running.admin_addr
        );
        println!(
            "lgsp: operator admin token is in {}",
            running.admin_token_path.display()
        );
        println!("lgsp: data directory {}", data_dir.display());
        if let Some(tour) = &running.demo_tour {
            println!("\n{tour}");
        }

        wait_for_signal().await;
        running.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; stopping"),
        _ = term.recv() => tracing::info!("SIGTERM received; stopping"),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LGSP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
