//! The `tradehub` binary: parses arguments and hands over to the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
