//! The AFL++ harness: `afl TARGET` runs target TARGET under `afl::fuzz!` (built by
//! `cargo afl build -p axs-fuzz --features afl`; `fuzz/run` drives it).

use std::process::ExitCode;

fn main() -> ExitCode {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = axs_fuzz::target(&name) else {
        let names: Vec<&str> = axs_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: afl TARGET, one of: {}", names.join(" "));
        return ExitCode::from(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
    ExitCode::SUCCESS
}
