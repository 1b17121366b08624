//! The `tradehub` binary: hands the command line to the library.
#![forbid(unsafe_code)]

// mimalloc rather than the system allocator: parsing and mapping make many
// small, short-lived allocations (docs/PERFORMANCE.md measures both).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tradehub::cli::run(std::env::args_os())
}
