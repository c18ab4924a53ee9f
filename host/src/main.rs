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
    let json = cli.json();
    match host::cli::main(cli) {
        Ok(code) => code,
        Err(err) => {
            if json {
                // Also one JSON line on stdout, where the command's other JSON goes.
                let causes: Vec<String> = err.chain().skip(1).map(ToString::to_string).collect();
                println!(
                    "{}",
                    serde_json::json!({"error": err.to_string(), "causes": causes})
                );
            }
            // Messages may quote guest text (a panic in `describe`): escaped, and every line
            // after the first indented, so that it cannot pass for the host's own output.
            let text = |message: String| {
                message
                    .lines()
                    .map(|line| host::report::escape(line).into_owned())
                    .collect::<Vec<_>>()
                    .join("\n    ")
            };
            let label = console::style("error:").red().bold().for_stderr();
            eprintln!("{label} {}", text(err.to_string()));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {}", text(cause.to_string()));
            }
            ExitCode::from(2)
        }
    }
}
