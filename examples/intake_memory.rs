//! Memory and time of mapping a large interchange as the hub's intake does,
//! with every value's provenance recorded (`map_interchange`) and with only
//! each message's own fields traced (`map_interchange_top`, what the hub
//! uses: a message with a rule finding or that changes an earlier one is
//! traced whole afterwards), in the same process, alternating.
//!
//! `cargo run --release --example intake_memory -- [MB] [rounds]`
//!
//! The interchange is `edifact::sample` (D.96B CUSDECs of 5–15 goods
//! items); it is parsed once (kept messages with their texts, as the hub
//! parses). For each mode: the heap's peak above what was held before the
//! mapping (every mapped message held, as the hub holds them until it has
//! written them), what stays held once mapped, the provenance entries, and
//! the wall time of mapping and the business rules.
#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]
// A global allocator is an unsafe trait: this one only counts and passes
// every call on to mimalloc unchanged (a measuring tool, not the hub).
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tradehub::edifact::{ParseOptions, Parser, sample};
use tradehub::mapping::edifact::{map_interchange, map_interchange_top, trace_message};
use tradehub::rules::{RuleSettings, check_mapped};
use tradehub::schema::Directories;
use tradehub::timestamp::Timestamp;

/// mimalloc (the allocator of the tradehub binary), counting the bytes
/// held and their peak.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout is passed on unchanged.
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if !p.is_null() {
            let now = HELD.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc` and `dealloc`.
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let now = HELD.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                HELD.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mb: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(13);
    let rounds: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(2);
    let data = sample::interchange(mb << 20);
    let directories = Arc::new(Directories::new(&[
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid")
    ]));
    let options = ParseOptions {
        keep_messages: true,
        message_text: true,
        ..ParseOptions::default()
    };
    let parsed = Parser::new(&data[..], options)
        .with_directories(directories.clone())
        .run(|_, _| {})
        .expect("the sample parses");
    assert!(parsed.is_valid(), "the sample is valid");
    let messages = parsed.interchange.all_messages().count();
    let settings = RuleSettings::at(Timestamp::parse("2026-11-28T12:00").unwrap());
    // Warm the directories and the mapping cache.
    drop(map_interchange_top(&parsed, &directories));
    println!(
        "{} bytes, {messages} messages; heap held after parsing: {:.1} MiB",
        data.len(),
        mib(HELD.load(Ordering::Relaxed))
    );
    println!(
        "| mode | mapping + rules | peak above parsed | held once mapped | provenance entries | findings |"
    );
    println!("|---|---|---|---|---|---|");
    for _ in 0..rounds {
        for mode in ["all", "top"] {
            let base = HELD.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            let started = Instant::now();
            let mut mapped = if mode == "all" {
                map_interchange(&parsed, &directories)
            } else {
                map_interchange_top(&parsed, &directories)
            };
            let mut findings = 0;
            for (index, m) in mapped.iter_mut().enumerate() {
                let mut found = check_mapped(m, &settings);
                if mode == "top" && !found.is_empty() {
                    trace_message(m, &parsed, &directories, index);
                    found = check_mapped(m, &settings);
                }
                findings += found.len();
            }
            let elapsed = started.elapsed();
            let held = HELD.load(Ordering::Relaxed).saturating_sub(base);
            let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
            let entries: usize = mapped.iter().map(|m| m.provenance.len()).sum();
            println!(
                "| {mode} | {:.2} s | {:.1} MiB | {:.1} MiB | {entries} | {findings} |",
                elapsed.as_secs_f64(),
                mib(peak),
                mib(held)
            );
            drop(mapped);
        }
    }
}
