#![allow(clippy::expect_used)]
//! Throughput of the UN/EDIFACT syntax engine on a generated 100 MB
//! CUSDEC-like interchange, beside a memchr scan for the segment terminator
//! in the same run (the memory-bandwidth reference).
//!
//! `cargo bench --bench edifact` (set TRADEHUB_BENCH_MB for another size).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tradehub::edifact::scan::Scanner;
use tradehub::edifact::{Charset, Lexer, Limits, Next, ParseOptions, Parser, Separators, sample};
use tradehub::schema::{Directories, Release};

// The allocator the tradehub binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn engine(c: &mut Criterion) {
    let mb: u64 = std::env::var("TRADEHUB_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let data = sample::interchange(mb << 20);
    let mut group = c.benchmark_group("edifact");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.warm_up_time(Duration::from_secs(2));

    group.bench_with_input(BenchmarkId::new("memchr_scan", mb), &data, |b, data| {
        b.iter(|| memchr::memchr_iter(b'\'', data).count())
    });
    group.bench_with_input(BenchmarkId::new("lex_index", mb), &data, |b, data| {
        let mut seps = Separators::LEVEL_A;
        seps.repetition = None;
        let scanner = Scanner::new(seps, Charset::Iso8859(1)).expect("plain separators");
        b.iter(|| {
            let mut scanner = scanner.clone();
            let (mut segments, mut elements, mut attention) = (0u64, 0u64, 0u64);
            scanner.scan_slice(data, |_, block| {
                segments += u64::from(block.terminators.count_ones());
                elements += u64::from(block.elements.count_ones());
                attention |= block.attention;
            });
            (segments, elements, attention)
        })
    });
    group.bench_with_input(BenchmarkId::new("lex_split", mb), &data, |b, data| {
        b.iter(|| {
            let mut lexer = Lexer::new(&data[..], Limits::default());
            let _ = lexer.start();
            let mut n = 0u64;
            while let Ok(next) = lexer.next_segment() {
                match next {
                    Next::Segment(seg) => n += seg.element_count() as u64,
                    Next::Oversized { .. } => n += 1,
                    Next::End => break,
                }
            }
            n
        })
    });
    group.bench_with_input(BenchmarkId::new("lex_envelope", mb), &data, |b, data| {
        b.iter(|| {
            let options = ParseOptions {
                keep_messages: false,
                decode_messages: false,
                ..ParseOptions::default()
            };
            let parsed = Parser::new(&data[..], options)
                .run(|_, _| {})
                .unwrap_or_default();
            assert!(parsed.is_valid());
            parsed.interchange.counts.messages
        })
    });
    group.bench_with_input(
        BenchmarkId::new("lex_envelope_decode", mb),
        &data,
        |b, data| {
            b.iter(|| {
                let options = ParseOptions {
                    keep_messages: false,
                    decode_messages: true,
                    ..ParseOptions::default()
                };
                let mut segments = 0usize;
                let parsed = Parser::new(&data[..], options)
                    .run(|m, _| segments += m.segments.len())
                    .unwrap_or_default();
                assert!(parsed.is_valid());
                segments
            })
        },
    );
    let directories = Arc::new(Directories::new(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid")
    ]));
    group.bench_with_input(
        BenchmarkId::new("lex_envelope_validate", mb),
        &data,
        |b, data| {
            b.iter(|| {
                let options = ParseOptions {
                    keep_messages: false,
                    decode_messages: false,
                    ..ParseOptions::default()
                };
                let parsed = Parser::new(&data[..], options)
                    .with_directories(directories.clone())
                    .run(|_, _| {})
                    .unwrap_or_default();
                assert!(parsed.is_valid(), "{:?}", parsed.issues.first());
                parsed.interchange.counts.messages
            })
        },
    );
    group.finish();

    // Cold start of the directories: opening a release (segment directory
    // and code lists parsed from the zip) and reading one message's table.
    let mut cold = c.benchmark_group("directory");
    cold.sample_size(10);
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid");
    cold.bench_function("open_release_d96b", |b| {
        b.iter(|| {
            let dirs = Directories::new(std::slice::from_ref(&folder));
            dirs.release("D96B")
                .ok()
                .flatten()
                .map(|r| r.segment_count())
        })
    });
    let dirs = Directories::new(std::slice::from_ref(&folder));
    let release = dirs.release("D96B").ok().flatten().expect("D96B vendored");
    cold.bench_function("read_message_cusdec_d96b", |b| {
        // Each iteration reads the table from a freshly opened release (the
        // opening is setup, not measured), so no cached table is reused.
        b.iter_batched(
            || Release::open("D96B", &release.path).expect("D96B opens"),
            |fresh| {
                fresh
                    .message("CUSDEC")
                    .ok()
                    .flatten()
                    .map(|d| d.group_count())
            },
            criterion::BatchSize::PerIteration,
        )
    });
    cold.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
