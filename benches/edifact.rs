//! Criterion benchmarks of the UN/EDIFACT syntax engine (filled in below).
fn main() {}
