//! The conformance runner (a fixed interface, see README.md):
//!
//! ```text
//! cargo run --release --example conformance -- [--check] [--repeat K] PATH...
//! ```
//!
//! PATH is a vector file or a directory of vectors in the format of
//! docs/FORMAT.md. Without `--check` it prints one result object per vector
//! (JSON Lines). With `--check` it compares each result with
//! `NAME.expected.json` (read from the vector's own directory only), prints
//! each mismatch as a diff, ends with `N passed, N failed` and exits 1 if
//! any failed. `--repeat K` also times the decision K times per vector and
//! adds `median_us` to each result.
//!
//! A vector that cannot be used (not JSON, an unknown field, a duplicate
//! id or name, a row naming a missing row, an option Cinder does not
//! have, ...) makes the run exit 1 in both modes: without `--check` the
//! reason goes to standard error (or, for a vector that decoded, into its
//! result object as `"outcome": "error"`), so standard output stays JSON
//! Lines. Bad arguments exit 2. Everything printed from a vector is
//! escaped (no raw control characters).

mod cli;

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    ExitCode::from(cli::run(&args, &mut stdout.lock(), &mut stderr.lock()).await)
}
