//! The `ykt` command: wiring only. Each subcommand lives in its own module; this file parses the
//! command line, installs logging and maps errors to exit codes (see `exit`).

mod clock;
mod conform;
mod demo;
mod entropy;
mod exit;
mod gp;
mod gp_issue;
mod harden;
mod phone;
mod qr;
mod se;
mod se_production;
mod state;
mod terminal;
mod tsm;
mod tsm_link;
mod wallet;
mod wallet_api;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// ykt: an open implementation of the transit-card mobile payment system (JT/T 1059).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// The whole system end to end on embedded defaults: issue, load, ride, tear, prove, clear.
    Demo(demo::DemoArgs),
    /// The simulated secure element: serve it to PC/SC, talk to PC/SC cards.
    Se(se::SeArgs),
    /// The conformance suite: catalogue items against the simulator, a PC/SC card or the
    /// terminal flows, with HTML and JUnit reports.
    Conform(conform::ConformArgs),
    /// An acceptance terminal and load point: purchase, metro entry/exit, bus ride, load,
    /// balance and records, with a PSAM, a journal and grey-transaction recovery.
    Terminal(terminal::TerminalArgs),
    /// The ride QR code's issuer side with test keys: root CA, issuer certificate,
    /// authorisations (qr-code.md §2, §4.1).
    Qr(qr::QrArgs),
    /// The wallet: enrol with the TSM, open, top up, read, delete, return and transfer cards;
    /// the ride QR code made and shown at display time (qr-code.md §4.2).
    Wallet(qr::WalletArgs),
    /// The TSM (SEI-TSM and SP-TSM) over HTTP: open card, top-up, delete, return, transfer
    /// for wallets, on SQLite or PostgreSQL.
    Tsm(tsm::TsmArgs),
    /// GlobalPlatform card management (list, info, install, delete, create-sd, put-key,
    /// store-data, lock, unlock, extradite) over PC/SC or on a simulated SE.
    Gp(gp::GpArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version are not errors; clap picks the stream and the code.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { 0 });
        }
    };
    // The demo narrates on stdout; the services it starts log only what goes wrong.
    init_logging(if matches!(cli.command, Command::Demo(_)) {
        "warn"
    } else {
        "info"
    });
    let result = match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Se(args) => se::run(args),
        Command::Conform(args) => conform::run_conform(args),
        Command::Terminal(args) => terminal::run(args),
        Command::Qr(args) => qr::run(args),
        Command::Wallet(args) => qr::run_wallet(args),
        Command::Gp(args) => gp::run(args),
        Command::Tsm(args) => tsm::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("error: {error:#}");
            exit::code_for(&error)
        }
    }
}

/// Logs go to stderr, filtered by `RUST_LOG` (default: `default`; the demo passes `warn`).
fn init_logging(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let filter = harden::cap_logs(filter);
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
