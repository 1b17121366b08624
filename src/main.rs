//! The `tradehub` binary: hands the command line to the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tradehub::cli::run(std::env::args_os())
}
