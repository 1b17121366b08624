//! One pass of the lexer or of structure validation over a generated
//! CUSDEC interchange, for instruction counts under valgrind or perf:
//! `cargo run --release --example profile_validate -- lex|validate [MB]`.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;

use tradehub::edifact::{Lexer, Limits, Next, ParseOptions, Parser, sample};
use tradehub::schema::Directories;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "validate".into());
    let mb: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(2);
    let data = sample::interchange(mb << 20);
    let directories = Arc::new(Directories::new(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid")
    ]));
    // Open the release and read the message table before the measured
    // pass, and keep them open after it: both are paid once per process.
    let release = directories.release("D96B").map_err(std::io::Error::other)?;
    if let Some(release) = &release {
        release.message("CUSDEC").map_err(std::io::Error::other)?;
    }
    let n = match mode.as_str() {
        "lex" => lex(&data)?,
        _ => validate(&data, directories.clone())?,
    };
    println!("{mode}: {n}");
    drop(release);
    Ok(())
}

/// Segments' elements lexed (measured alone with
/// `valgrind --tool=callgrind --toggle-collect='profile_validate::lex'`).
#[inline(never)]
fn lex(data: &[u8]) -> std::io::Result<u64> {
    let mut n = 0u64;
    let mut lexer = Lexer::new(data, Limits::default());
    lexer.start()?;
    while let Ok(next) = lexer.next_segment() {
        match next {
            Next::Segment(seg) => n += seg.element_count() as u64,
            Next::Oversized { .. } => n += 1,
            Next::End => break,
        }
    }
    Ok(n)
}

/// Messages validated.
#[inline(never)]
fn validate(data: &[u8], directories: Arc<Directories>) -> std::io::Result<u64> {
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: false,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(data, options)
        .with_directories(directories)
        .run(|_, _| {})?;
    if !parsed.is_valid() {
        println!("invalid: {:?}", parsed.issues.first());
    }
    Ok(parsed.interchange.counts.messages)
}
