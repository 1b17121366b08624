//! One pass of structure validation, of validation with decoding, or of
//! validation with the CUSDEC mapping over a generated interchange, for
//! instruction counts under valgrind or `perf stat`:
//!
//! `cargo run --release --example map_profile -- lex|validate|decode|text|map|located|typed|typed-json [MB]`
//! (`typed`: into the typed canonical declaration as the hub reads it;
//! `typed-json`: the same through a JSON tree, for comparison)
//! (`setup`: only the generation of the interchange and the loading of
//! the mapping, to subtract)
//!
//! `dump [MB]` writes, one JSON line per mapped message, the output of
//! `apply_located` (value, issues, provenance) for every fixture under
//! `fixtures/` and for the generated interchange with its messages
//! mutated in many ways, so that two builds of the mapping can be compared
//! byte for byte.
#![allow(
    clippy::print_stdout,
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tradehub::edifact::sample::Mutator;
use tradehub::edifact::{Lexer, Limits, Message, Next, ParseOptions, Parser, sample};
use tradehub::mapping::edifact::{EdifactMapping, mapping_for};
use tradehub::model::Declaration;
use tradehub::schema::Directories;

// The allocator the tradehub binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "map".into());
    let mb: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(2);
    let data = sample::interchange(mb << 20);
    let directories = Arc::new(Directories::new(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid")
    ]));
    let release = directories
        .release("D96B")
        .ok()
        .flatten()
        .expect("D96B vendored");
    let cusdec = mapping_for("CUSDEC", &release, 3).expect("the CUSDEC mapping compiles");
    if mode == "dump" {
        return dump(&data, &directories, &cusdec);
    }
    if mode == "setup" {
        println!("setup: {} bytes, {}", data.len(), cusdec.name);
        return Ok(());
    }
    if mode == "lex" {
        // The lexer alone, splitting every segment: the reference the
        // validator is compared with.
        let mut lexer = Lexer::new(&data[..], Limits::default());
        lexer.start()?;
        let mut n = 0u64;
        while let Ok(next) = lexer.next_segment() {
            match next {
                Next::Segment(seg) => n += seg.element_count() as u64,
                Next::Oversized { .. } => n += 1,
                Next::End => break,
            }
        }
        println!("lex: {n} elements");
        return Ok(());
    }
    // The mappings read each message's text; `decode` gives owned segments
    // instead (for comparison).
    let options = ParseOptions {
        keep_messages: false,
        decode_messages: mode == "decode",
        message_text: matches!(
            mode.as_str(),
            "text" | "map" | "located" | "typed" | "typed-json"
        ),
        ..ParseOptions::default()
    };
    let mut n = 0u64;
    let parsed = Parser::new(&data[..], options)
        .with_directories(directories)
        .run(|message, _| match mode.as_str() {
            "map" => {
                let (value, issues) = cusdec.apply(message);
                n += u64::from(value.get("lrn").is_some()) + issues.len() as u64;
            }
            "typed" => {
                let (typed, issues) = cusdec.apply_typed::<Declaration>(message);
                n += u64::from(typed.is_ok()) + issues.len() as u64;
            }
            "typed-json" => {
                let (value, issues) = cusdec.apply(message);
                let typed = serde_json::from_value::<Declaration>(value);
                n += u64::from(typed.is_ok()) + issues.len() as u64;
            }
            "located" => {
                let (value, issues, provenance) = cusdec.apply_located(message);
                n += u64::from(value.get("lrn").is_some())
                    + issues.len() as u64
                    + provenance.len() as u64;
            }
            "text" => n += message.text.len() as u64,
            _ => n += message.segments.len() as u64,
        })?;
    if !parsed.is_valid() {
        println!("invalid: {:?}", parsed.issues.first());
    }
    println!(
        "{mode}: {} messages, {n}",
        parsed.interchange.counts.messages
    );
    Ok(())
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "edi" | "txt" | "edifact"))
        {
            out.push(path);
        }
    }
}

fn record(out: &mut impl Write, what: &str, mapping: &EdifactMapping, message: &Message) {
    let (value, issues, provenance) = mapping.apply_located(message);
    let (plain, plain_issues) = mapping.apply(message);
    assert_eq!(plain, value, "{what}: apply and apply_located differ");
    assert_eq!(
        plain_issues, issues,
        "{what}: apply and apply_located differ"
    );
    let (canonical, canonical_issues, canonical_provenance) = mapping.canonical_located(message);
    assert_eq!(
        canonical_issues, issues,
        "{what}: canonical_located and apply_located differ"
    );
    assert_eq!(
        canonical_provenance, provenance,
        "{what}: canonical_located and apply_located differ"
    );
    // The typed mapping reads as the JSON tree through serde_json would.
    let through_json = tradehub::mapping::typed(&mapping.target, value.clone());
    match (&canonical, &through_json) {
        (Ok(direct), Ok(json)) => assert_eq!(direct, json, "{what}: typed and JSON differ"),
        (Err(direct), Err(json)) => {
            assert_eq!(&direct.error.to_string(), json, "{what}: errors differ")
        }
        _ => panic!("{what}: typed {canonical:?}, through JSON {through_json:?}"),
    }
    let canonical = match canonical {
        Ok(value) => value,
        Err(e) => serde_json::Value::String(e.error.to_string()),
    };
    let line = serde_json::json!({
        "what": what,
        "canonical": canonical,
        "value": value,
        "issues": issues,
        "provenance": provenance,
    });
    writeln!(out, "{line}").expect("stdout");
}

fn dump(
    data: &[u8],
    directories: &Arc<Directories>,
    cusdec: &EdifactMapping,
) -> std::io::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut paths = Vec::new();
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"),
        &mut paths,
    );
    paths.sort();
    for path in &paths {
        let Ok(bytes) = std::fs::read(path) else {
            continue;
        };
        // Decoded (the mutations edit segments), and with each message's
        // text only, as the hub and `convert` parse it: what is recorded
        // for the message as is.
        let parse = |text: bool| {
            let options = ParseOptions {
                keep_messages: true,
                decode_messages: !text,
                message_text: text,
                ..ParseOptions::default()
            };
            Parser::new(&bytes[..], options)
                .with_directories(directories.clone())
                .run(|_, _| {})
        };
        let (Ok(parsed), Ok(texts)) = (parse(false), parse(true)) else {
            continue;
        };
        let texts: Vec<&Message> = texts.interchange.all_messages().collect();
        let interchange = &parsed.interchange;
        let version: u8 = interchange.syntax_version.parse().unwrap_or(3);
        for (index, message) in interchange.all_messages().enumerate() {
            let name = format!("{}{}", message.version, message.release);
            let Ok(Some(release)) = directories.release(&name) else {
                continue;
            };
            let Ok(mapping) = mapping_for(&message.message_type, &release, version) else {
                continue;
            };
            let what = format!("{} {}", path.display(), message.reference);
            let as_parsed = texts.get(index).copied().unwrap_or(message);
            assert!(as_parsed.segments.is_empty() && !as_parsed.text.is_empty());
            record(&mut out, &what, &mapping, as_parsed);
            let mut rng = Mutator::new((what.len() - env!("CARGO_MANIFEST_DIR").len()) as u64);
            for k in 0..200 {
                let mutated = rng.mutate(message);
                record(&mut out, &format!("{what} #{k}"), &mapping, &mutated);
            }
        }
    }
    // The generated interchange: each message as is and mutated.
    let options = ParseOptions {
        keep_messages: true,
        decode_messages: true,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(data, options)
        .with_directories(directories.clone())
        .run(|_, _| {})?;
    let mut rng = Mutator::new(7);
    for (i, message) in parsed.interchange.messages.iter().take(400).enumerate() {
        record(&mut out, &format!("sample {i}"), cusdec, message);
        for k in 0..20 {
            let mutated = rng.mutate(message);
            record(&mut out, &format!("sample {i} #{k}"), cusdec, &mutated);
        }
    }
    out.flush()
}
