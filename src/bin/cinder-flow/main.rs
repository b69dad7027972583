//! `cinder-flow`: the operator's command line (feature `cli`).
//!
//! ```text
//! cinder-flow explain SCENARIO.json... [--conf cinder.conf [--backend NAME]] [--policy P]... [--now T] [--json]
//! cinder-flow explain --conf /etc/cinder/cinder.conf --image ID --size GIB --host HOST@BACKEND#POOL \
//!     --project ID [--os-token TOKEN | --os-auth-url URL ... | --glance-trusted-headers] [--json]
//! ```
//!
//! `cinder-flow explain --help` documents every option and the exit codes.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cinder-flow: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_UNUSABLE);
        }
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = runtime.block_on(cli::run(&args, &mut stdout.lock(), &mut stderr.lock()));
    ExitCode::from(code)
}
