//! Lexes a file and prints its segment count (for profiling the lexer):
//! `cargo run --release --example lex_file -- FILE`.
#![allow(clippy::print_stdout)]

use tradehub::edifact::{Lexer, Limits, Next};

fn main() -> std::io::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "interchange.edi".into());
    let file = std::fs::File::open(path)?;
    let mut lexer = Lexer::new(file, Limits::default());
    lexer.start()?;
    let mut segments = 0u64;
    while let Next::Segment(_) | Next::Oversized { .. } = lexer.next_segment()? {
        segments += 1;
    }
    println!("{segments} segments");
    Ok(())
}
