//! Writes a large, valid CUSDEC-like UN/EDIFACT interchange for benchmarks
//! and memory measurements: `cargo run --release --example gen_interchange -- OUT.edi SIZE_MB`.
#![allow(clippy::print_stderr)]

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "interchange.edi".into());
    let megabytes: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
    let written = tradehub::edifact::sample::write_interchange(&mut out, megabytes << 20)?;
    out.flush()?;
    eprintln!("{path}: {written} bytes");
    Ok(())
}
