#![allow(clippy::expect_used)]
//! Throughput of WCO XML validation on the corpus declarations, beside
//! quick-xml's raw read of the same bytes in the same run (the parsing
//! reference): raw read, the guard pass alone, and the full validation
//! (guard + libxml2 streaming XSD validation, the schemas compiled once per
//! thread). The xmllint comparison is a whole-command one (hyperfine), see
//! docs/PERFORMANCE.md.
//!
//! `cargo bench --bench xml`

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use quick_xml::Reader;
use quick_xml::events::Event;
use tradehub::xml::{XmlLimits, XmlValidator, reader};

fn declarations() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wco/corpus/valid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read"))
        .filter(|bytes| {
            let scan = reader::scan(bytes, &XmlLimits::default());
            scan.summary.kind == tradehub::xml::DocumentKind::Declaration
        })
        .collect()
}

fn raw_read(doc: &[u8]) -> u64 {
    let mut reader = Reader::from_reader(doc);
    let mut n = 0u64;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) | Err(_) => return n,
            Ok(_) => n += 1,
        }
    }
}

fn xml(c: &mut Criterion) {
    let docs = declarations();
    let bytes: usize = docs.iter().map(Vec::len).sum();
    let validator = XmlValidator::new(None, XmlLimits::default());
    validator.warm_up().expect("schemas compile");
    for doc in &docs {
        assert!(
            validator.validate(doc, "bench").valid,
            "corpus declarations are valid"
        );
    }

    let mut group = c.benchmark_group("wco_corpus");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(10));
    let label = format!("{}docs", docs.len());
    group.bench_with_input(
        BenchmarkId::new("quick_xml_raw", &label),
        &docs,
        |b, docs| b.iter(|| docs.iter().map(|d| raw_read(d)).sum::<u64>()),
    );
    group.bench_with_input(BenchmarkId::new("guard", &label), &docs, |b, docs| {
        b.iter(|| {
            docs.iter()
                .map(|d| reader::scan(d, &XmlLimits::default()).summary.elements)
                .sum::<u64>()
        })
    });
    group.bench_with_input(BenchmarkId::new("validate", &label), &docs, |b, docs| {
        b.iter(|| {
            docs.iter()
                .filter(|d| validator.validate(d, "bench").valid)
                .count()
        })
    });
    group.finish();

    // One large declaration: the 120-item corpus file grown to 999 items
    // (the schema's maximum), documents/s and MB/s.
    let big = grow(999);
    assert!(validator.validate(&big, "big").valid, "999 items are valid");
    let mut group = c.benchmark_group("wco_999_items");
    group.throughput(Throughput::Bytes(big.len() as u64));
    group.sample_size(20);
    group.bench_with_input(
        BenchmarkId::new("quick_xml_raw", big.len()),
        &big,
        |b, d| b.iter(|| raw_read(d)),
    );
    group.bench_with_input(BenchmarkId::new("validate", big.len()), &big, |b, d| {
        b.iter(|| validator.validate(d, "big").valid)
    });
    group.finish();
}

/// The 120-item corpus declaration with its goods item repeated `items` times.
fn grow(items: usize) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus/valid/crafted-many-items.xml");
    tradehub::xml::sample::repeat_goods_items(&std::fs::read(path).expect("read"), items)
        .expect("the sample has goods items")
}

criterion_group!(benches, xml);
criterion_main!(benches);
