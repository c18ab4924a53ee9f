//! `host`: the Shoal command line. Exit codes: 0 success, 1 the run failed, 2 usage or job error
//! (or a refused resume), 130 / 143 the run was stopped by SIGINT / SIGTERM.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: steps allocate on worker threads and free on the
/// scheduler's, where glibc spent a tenth of a step's time consolidating and trimming arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = host::cli::Cli::parse();
    match host::cli::main(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
