//! Explain a decision: take scenarios (vectors in the format of
//! docs/FORMAT.md), optionally a real `cinder.conf`, and print the full
//! decision: the path chosen, every rejected alternative with its reason,
//! the availability-zone decision for API requests, and the steps — as
//! text, or as JSON Lines with `--json`.
//!
//! ```text
//! cargo run --release --example explain -- SCENARIO.json... [--conf cinder.conf [--backend NAME]]
//!     [--policy same_backend|skip_doomed|liberty_delete]... [--now TIMESTAMP] [--json]
//! ```
//!
//! See `cli.rs` (`USAGE`) for every option and the exit codes.

mod cli;

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = cli::run(&args, &mut stdout.lock(), &mut stderr.lock()).await;
    ExitCode::from(code)
}
