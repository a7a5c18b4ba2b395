//! `replay TARGET FILE...`: runs files (an AFL crash, a corpus entry) through a target
//! without AFL, so a finding reproduces under a plain `cargo run -p axs-fuzz --bin replay`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let Some(target) = axs_fuzz::target(&name) else {
        let names: Vec<&str> = axs_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!(
            "usage: replay TARGET FILE..., TARGET one of: {}",
            names.join(" ")
        );
        return ExitCode::from(2);
    };
    for path in args {
        match std::fs::read(&path) {
            Ok(data) => {
                eprintln!("{path}");
                target(&data);
            }
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
