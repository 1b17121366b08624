#![allow(clippy::expect_used)]
//! Declarations mapped per second from a generated 100 MB CUSDEC
//! interchange (D.96B, 5–15 goods items a message), beside validation
//! alone and validation with the decoding of each message's text (what
//! mapping needs from the parser) in the same run. Mapping is streaming: each
//! message is mapped to the canonical declaration
//! (mappings/edifact/D96B/CUSDEC.toml) as the parser hands it over, so
//! memory stays flat in the file size.
//!
//! `cargo bench --bench mapping` (TRADEHUB_BENCH_MB for another size).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tradehub::edifact::{Message, ParseOptions, Parsed, Parser, sample};
use tradehub::mapping::edifact::mapping_for;
use tradehub::model::Declaration;
use tradehub::schema::Directories;

// The allocator the tradehub binary runs with (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn mapping(c: &mut Criterion) {
    let mb: u64 = std::env::var("TRADEHUB_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
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
    // Declarations in the sample: its message count, from one parse.
    let messages = Parser::new(&data[..], ParseOptions::default())
        .run(|_, _| {})
        .map(|p| p.interchange.counts.messages)
        .unwrap_or(0);
    assert!(messages > 0);

    let mut group = c.benchmark_group("mapping");
    // Throughput in declarations (= messages) per second.
    group.throughput(Throughput::Elements(messages));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.warm_up_time(Duration::from_secs(2));
    group.bench_with_input(BenchmarkId::new("validate", mb), &data, |b, data| {
        b.iter(|| {
            validated(data, &directories, false, |_| {})
                .interchange
                .counts
                .messages
        })
    });
    // Validation plus the decoding of every message into its text, which
    // mapping reads: the part of validate_map that is not the mapping
    // itself.
    group.bench_with_input(BenchmarkId::new("validate_text", mb), &data, |b, data| {
        b.iter(|| {
            let mut segments = 0u64;
            let parsed = validated(data, &directories, true, |message| {
                segments += message.text.len() as u64
            });
            assert!(segments > parsed.interchange.counts.messages);
            segments
        })
    });
    group.bench_with_input(BenchmarkId::new("validate_map", mb), &data, |b, data| {
        b.iter(|| {
            let mut mapped = 0u64;
            let parsed = validated(data, &directories, true, |message| {
                let (value, _issues) = cusdec.apply(message);
                if value.get("lrn").is_some() {
                    mapped += 1;
                }
            });
            assert_eq!(mapped, parsed.interchange.counts.messages);
            mapped
        })
    });
    // Into the typed canonical declaration, read from the mapped values
    // directly (the form the hub and the business rules work on).
    group.bench_with_input(
        BenchmarkId::new("validate_map_typed", mb),
        &data,
        |b, data| {
            b.iter(|| {
                let mut mapped = 0u64;
                let parsed = validated(data, &directories, true, |message| {
                    let (declaration, _issues) = cusdec.apply_typed::<Declaration>(message);
                    if declaration.is_ok_and(|d| !d.lrn.is_empty()) {
                        mapped += 1;
                    }
                });
                assert_eq!(mapped, parsed.interchange.counts.messages);
                mapped
            })
        },
    );
    // As the hub maps: with each value's provenance, so that business-rule
    // findings can be located at their segment and element.
    group.bench_with_input(
        BenchmarkId::new("validate_map_located", mb),
        &data,
        |b, data| {
            b.iter(|| {
                let mut mapped = 0u64;
                let parsed = validated(data, &directories, true, |message| {
                    let (value, _issues, provenance) = cusdec.apply_located(message);
                    if value.get("lrn").is_some() && !provenance.is_empty() {
                        mapped += 1;
                    }
                });
                assert_eq!(mapped, parsed.interchange.counts.messages);
                mapped
            })
        },
    );
    group.finish();
}

/// One streaming parse of `data` with structure validation, each message
/// handed to `on_message` (with its text when `text`); the sample must
/// come out valid.
fn validated(
    data: &[u8],
    directories: &Arc<Directories>,
    text: bool,
    mut on_message: impl FnMut(&Message),
) -> Parsed {
    let options = ParseOptions {
        keep_messages: false,
        message_text: text,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(data, options)
        .with_directories(directories.clone())
        .run(|message, _| on_message(message))
        .unwrap_or_default();
    assert!(parsed.is_valid(), "{:?}", parsed.issues.first());
    parsed
}

criterion_group!(benches, mapping);
criterion_main!(benches);
