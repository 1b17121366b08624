//! The block scanner: classifies input 64 bytes at a time into bit masks of
//! segment terminators and data element, component and repetition
//! separators, with release characters resolved, and a mask of bytes that
//! need a closer look. This is the lexer's structural index: every token
//! boundary of a block is one set bit, found with one count-trailing-zeros.
//!
//! The scanner decides only what is certain from the masks. A set bit in
//! [`Block::attention`] means "this byte is not plainly valid here": a byte
//! outside printable ASCII or outside the repertoire, a release character
//! before an ordinary character, a separator before a data element
//! separator or before the terminator. Whoever uses the scanner hands such
//! segments to the exact per-segment lexer, which reports them (see
//! `Lexer::skip_clean_data`), so the fast path never decides an error.
//!
//! On x86-64 the classification uses SSE2 (part of the x86-64 baseline, so
//! no run-time detection and no `unsafe`); elsewhere a scalar loop computes
//! the same masks. A property test checks that both agree.

use super::charset::Charset;
use super::separators::Separators;

/// The masks of one 64-byte block: bit `i` stands for byte `i` of the block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Block {
    /// Segment terminators (not released).
    pub terminators: u64,
    /// Data element separators (not released).
    pub elements: u64,
    /// Component data element and repetition separators (not released).
    pub components: u64,
    /// Bytes that need the exact lexer (see the module documentation).
    pub attention: u64,
}

/// Raw per-byte comparisons before release characters are resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Raw {
    term: u64,
    elem: u64,
    sub: u64,
    rel: u64,
    /// Not printable ASCII, or printable but outside the repertoire.
    odd: u64,
}

/// Streams blocks through the classifier, carrying release and separator
/// state from one block to the next. Start a new scanner (or
/// [`Scanner::reset`]) at a segment boundary.
#[derive(Debug, Clone)]
pub struct Scanner {
    term: u8,
    elem: u8,
    comp: u8,
    /// Repetition separator; the component separator when there is none.
    rep: u8,
    rel: Option<u8>,
    /// Printable ASCII ranges (inclusive) outside the repertoire.
    excluded: [(u8, u8); MAX_EXCLUDED],
    excluded_len: usize,
    #[cfg(target_arch = "x86_64")]
    vectors: Vectors,
    /// Byte 0 of the next block is released.
    carry_escaped: bool,
    /// The last byte of the previous block was a separator (element,
    /// component, repetition) or a component/repetition separator.
    carry_sep: bool,
    carry_sub: bool,
}

const MAX_EXCLUDED: usize = 4;

/// How far ahead of the block being classified [`Scanner::scan_slice`]
/// prefetches, in bytes.
const PREFETCH_DISTANCE: usize = 2048;

/// The comparison operands of [`Scanner::classify16`], splat once.
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy)]
struct Vectors {
    term: safe_arch::m128i,
    elem: safe_arch::m128i,
    comp: safe_arch::m128i,
    rep: safe_arch::m128i,
    rel: safe_arch::m128i,
    /// All ones when there is a release character, else zero.
    rel_enabled: u16,
    below_printable: safe_arch::m128i,
    above_printable: safe_arch::m128i,
    /// (lo - 1, hi + 1) of each excluded range.
    excluded: [(safe_arch::m128i, safe_arch::m128i); MAX_EXCLUDED],
}

#[cfg(target_arch = "x86_64")]
impl Vectors {
    fn new(seps: Separators, excluded: &[(u8, u8); MAX_EXCLUDED]) -> Vectors {
        use safe_arch::set_splat_i8_m128i as splat;
        let byte = |b: u8| splat(b as i8);
        Vectors {
            term: byte(seps.terminator),
            elem: byte(seps.element),
            comp: byte(seps.component),
            rep: byte(seps.repetition.unwrap_or(seps.component)),
            rel: byte(seps.release.unwrap_or(seps.terminator)),
            rel_enabled: if seps.release.is_some() { u16::MAX } else { 0 },
            below_printable: byte(0x1F),
            above_printable: byte(0x7F),
            excluded: excluded.map(|(lo, hi)| (byte(lo.wrapping_sub(1)), byte(hi.wrapping_add(1)))),
        }
    }
}

impl Scanner {
    /// A scanner for these separators and repertoire, or `None` when they
    /// fall outside what the masks can decide (a separator that is not
    /// printable ASCII punctuation, as with the level B defaults, or a
    /// repertoire with too many gaps in printable ASCII). Callers then use
    /// the per-segment lexer alone.
    pub fn new(seps: Separators, charset: Charset) -> Option<Scanner> {
        let plain = |b: u8| (0x21..0x7F).contains(&b) && !b.is_ascii_alphanumeric();
        let mut all = vec![seps.terminator, seps.element, seps.component];
        all.extend(seps.release);
        all.extend(seps.repetition);
        if !all.iter().all(|&b| plain(b)) {
            return None;
        }
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != all.len() {
            return None;
        }
        let repertoire = charset.repertoire();
        let mut excluded = [(0u8, 0u8); MAX_EXCLUDED];
        let mut excluded_len = 0usize;
        let mut b = 0x20u8;
        while b < 0x7F {
            if repertoire[b as usize] || all.contains(&b) {
                b += 1;
                continue;
            }
            let start = b;
            while b < 0x7F && !repertoire[b as usize] && !all.contains(&b) {
                b += 1;
            }
            let slot = excluded.get_mut(excluded_len)?;
            *slot = (start, b - 1);
            excluded_len += 1;
        }
        Some(Scanner {
            term: seps.terminator,
            elem: seps.element,
            comp: seps.component,
            rep: seps.repetition.unwrap_or(seps.component),
            rel: seps.release,
            excluded,
            excluded_len,
            #[cfg(target_arch = "x86_64")]
            vectors: Vectors::new(seps, &excluded),
            carry_escaped: false,
            carry_sep: false,
            carry_sub: false,
        })
    }

    /// Forgets the state carried from the previous block.
    pub fn reset(&mut self) {
        self.carry_escaped = false;
        self.carry_sep = false;
        self.carry_sub = false;
    }

    /// Classifies the next block of the input.
    pub fn next_block(&mut self, bytes: &[u8; 64]) -> Block {
        let raw = self.classify(bytes);
        self.resolve(raw)
    }

    /// Classifies a whole slice (the last block padded with bytes that are
    /// never separators), calling `f` with each block's offset and masks.
    pub fn scan_slice(&mut self, bytes: &[u8], mut f: impl FnMut(usize, Block)) {
        let mut chunks = bytes.chunks_exact(64);
        let mut base = 0usize;
        for chunk in &mut chunks {
            // Ask for the input well ahead: the classification is cheap
            // enough that waiting for memory would otherwise dominate.
            #[cfg(target_arch = "x86_64")]
            if let Some(ahead) = bytes.get(base + PREFETCH_DISTANCE) {
                safe_arch::prefetch_t0(ahead);
            }
            if let Ok(block) = <&[u8; 64]>::try_from(chunk) {
                f(base, self.next_block(block));
            }
            base += 64;
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 64];
            if let Some(head) = last.get_mut(..rest.len()) {
                head.copy_from_slice(rest);
            }
            f(base, self.next_block(&last));
        }
    }

    fn resolve(&mut self, raw: Raw) -> Block {
        // A release character releases the next byte unless it is itself
        // released, so what counts is the parity of each run of release
        // characters: the byte after an odd run is released. Runs are found
        // with carries, without a branch per bit (the technique simdjson
        // uses for backslashes in JSON strings).
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let rel = raw.rel;
        let carry = u64::from(self.carry_escaped);
        let starts = rel & !(rel << 1);
        let even_start_mask = EVEN ^ carry;
        let even_starts = starts & even_start_mask;
        let odd_starts = starts & !even_start_mask;
        let even_carries = rel.wrapping_add(even_starts);
        let (odd_carries, overflow) = rel.overflowing_add(odd_starts);
        let odd_carries = odd_carries | carry;
        let even_carry_ends = even_carries & !rel;
        let odd_carry_ends = odd_carries & !rel;
        let escaped = (even_carry_ends & !EVEN) | (odd_carry_ends & EVEN);
        // A run reaching the end of the block with odd parity releases byte
        // 0 of the next block.
        self.carry_escaped = overflow;
        // What a release character releases must be a service character.
        let service = raw.term | raw.elem | raw.sub;
        let mut attention = raw.odd | (escaped & !service);
        let terminators = raw.term & !escaped;
        let elements = raw.elem & !escaped;
        let components = raw.sub & !escaped;
        let seps = elements | components;
        // A component or repetition separator right before a data element
        // separator, or any separator right before the terminator: trailing
        // separators the exact lexer reports.
        let after_sub = (components << 1) | u64::from(self.carry_sub);
        let after_sep = (seps << 1) | u64::from(self.carry_sep);
        attention |= elements & after_sub;
        attention |= terminators & after_sep;
        self.carry_sep = seps >> 63 == 1;
        self.carry_sub = components >> 63 == 1;
        Block {
            terminators,
            elements,
            components,
            attention,
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn classify(&self, bytes: &[u8; 64]) -> Raw {
        let mut raw = Raw::default();
        for (i, lane) in bytes.chunks_exact(16).enumerate() {
            let r = self.classify16(lane);
            let shift = 16 * i as u32;
            raw.term |= u64::from(r[0]) << shift;
            raw.elem |= u64::from(r[1]) << shift;
            raw.sub |= u64::from(r[2]) << shift;
            raw.rel |= u64::from(r[3]) << shift;
            raw.odd |= u64::from(r[4]) << shift;
        }
        raw
    }

    /// One 16-byte lane with SSE2: term, elem, sub, rel, odd masks.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn classify16(&self, lane: &[u8]) -> [u16; 5] {
        use safe_arch::{
            bitand_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, cmp_gt_mask_i8_m128i,
            cmp_lt_mask_i8_m128i, load_unaligned_m128i, m128i, move_mask_i8_m128i,
        };
        let mut bytes = [0u8; 16];
        if let Some(src) = lane.get(..16) {
            bytes.copy_from_slice(src);
        }
        let v = load_unaligned_m128i(&bytes);
        let k = &self.vectors;
        let mask = |m: m128i| move_mask_i8_m128i(m) as u16;
        let term = mask(cmp_eq_mask_i8_m128i(v, k.term));
        let elem = mask(cmp_eq_mask_i8_m128i(v, k.elem));
        let sub = mask(bitor_m128i(
            cmp_eq_mask_i8_m128i(v, k.comp),
            cmp_eq_mask_i8_m128i(v, k.rep),
        ));
        let rel = mask(cmp_eq_mask_i8_m128i(v, k.rel)) & k.rel_enabled;
        // Printable ASCII is 0x20..=0x7E; as signed bytes everything from
        // 0x80 up is negative, so two signed compares decide it.
        let printable = bitand_m128i(
            cmp_gt_mask_i8_m128i(v, k.below_printable),
            cmp_lt_mask_i8_m128i(v, k.above_printable),
        );
        let mut outside = 0u16;
        for &(below, above) in k.excluded.iter().take(self.excluded_len) {
            let within = bitand_m128i(
                cmp_gt_mask_i8_m128i(v, below),
                cmp_lt_mask_i8_m128i(v, above),
            );
            outside |= mask(within);
        }
        let odd = !mask(printable) | outside;
        [term, elem, sub, rel, odd]
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn classify(&self, bytes: &[u8; 64]) -> Raw {
        self.classify_scalar(bytes)
    }

    /// The reference classification, one byte at a time.
    #[cfg_attr(all(target_arch = "x86_64", not(test)), allow(dead_code))]
    fn classify_scalar(&self, bytes: &[u8; 64]) -> Raw {
        let mut raw = Raw::default();
        for (i, &b) in bytes.iter().enumerate() {
            let bit = 1u64 << i;
            if b == self.term {
                raw.term |= bit;
            }
            if b == self.elem {
                raw.elem |= bit;
            }
            if b == self.comp || b == self.rep {
                raw.sub |= bit;
            }
            if Some(b) == self.rel {
                raw.rel |= bit;
            }
            let excluded = self
                .excluded
                .iter()
                .take(self.excluded_len)
                .any(|&(lo, hi)| (lo..=hi).contains(&b));
            if !(0x20..0x7F).contains(&b) || excluded {
                raw.odd |= bit;
            }
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scanner(charset: Charset) -> Scanner {
        let mut seps = Separators::LEVEL_A;
        seps.repetition = Some(b'*');
        Scanner::new(seps, charset).unwrap()
    }

    fn block(text: &[u8]) -> Block {
        let mut s = scanner(Charset::Iso8859(1));
        let mut blocks = Vec::new();
        s.scan_slice(text, |_, b| blocks.push(b));
        blocks[0]
    }

    fn bits(mask: u64, len: usize) -> String {
        (0..len)
            .map(|i| if mask >> i & 1 == 1 { '^' } else { ' ' })
            .collect()
    }

    #[test]
    fn separators_and_releases() {
        let text = b"FTX+AAA+++A?:B?+C??'NAD+X:Y*Z'";
        let b = block(text);
        assert_eq!(
            bits(b.terminators, text.len()),
            "                   ^         ^"
        );
        assert_eq!(
            bits(b.elements, text.len()),
            "   ^   ^^^             ^      "
        );
        assert_eq!(
            bits(b.components, text.len()),
            "                         ^ ^  "
        );
        assert_eq!(b.attention & ((1 << text.len()) - 1), 0);
    }

    #[test]
    fn what_needs_attention() {
        // A release before an ordinary character, a lower-case letter in
        // UNOA, a trailing component separator, a line feed in a segment.
        let cases: [(&[u8], Charset, usize); 4] = [
            (b"FTX+A?B'", Charset::Iso8859(1), 6),
            (b"FTX+Ab'", Charset::LevelA, 5),
            (b"FTX+A:+B'", Charset::Iso8859(1), 6),
            (b"FTX+A\nB'", Charset::Iso8859(1), 5),
        ];
        for (text, charset, at) in cases {
            let mut s = scanner(charset);
            let mut got = Vec::new();
            s.scan_slice(text, |_, b| got.push(b));
            let attention = got[0].attention & ((1 << text.len()) - 1);
            assert_eq!(attention, 1 << at, "{}", String::from_utf8_lossy(text));
        }
    }

    #[test]
    fn release_state_crosses_blocks() {
        // A release character as the last byte of a block releases the
        // first byte of the next.
        let mut text = vec![b'A'; 63];
        text.push(b'?');
        text.extend_from_slice(b"'B'");
        let mut s = scanner(Charset::Iso8859(1));
        let mut got = Vec::new();
        s.scan_slice(&text, |_, b| got.push(b));
        assert_eq!(got[0].terminators, 0);
        assert_eq!(got[1].terminators & 0b111, 0b100);
        assert_eq!(got[1].attention & 0b111, 0);
    }

    #[test]
    fn level_b_defaults_are_not_scanned() {
        assert!(Scanner::new(Separators::LEVEL_B, Charset::LevelB).is_none());
    }

    proptest! {
        /// The SSE2 classification equals the scalar one, and the resolved
        /// masks equal a byte-by-byte walk of the release rule.
        #[test]
        fn vector_equals_scalar(bytes in proptest::collection::vec(
            prop_oneof![
                Just(b'\''), Just(b'+'), Just(b':'), Just(b'*'), Just(b'?'),
                Just(b'?'), Just(b'?'), Just(b'A'), Just(b'a'), Just(b'\n'),
                Just(0xE9u8), Just(b'#'),
            ],
            192..=192,
        ), charset in prop_oneof![
            Just(Charset::LevelA), Just(Charset::LevelB), Just(Charset::Iso8859(1)),
        ]) {
            let mut s = scanner(charset);
            for chunk in bytes.chunks(64) {
                let block: [u8; 64] = chunk.try_into().unwrap();
                prop_assert_eq!(s.classify(&block), s.classify_scalar(&block));
            }
            let mut got = Vec::new();
            s.scan_slice(&bytes, |_, b| got.push(b));
            let mut released = vec![false; bytes.len()];
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'?' {
                    if let Some(r) = released.get_mut(i + 1) {
                        *r = true;
                    }
                    i += 2;
                } else {
                    i += 1;
                }
            }
            for (i, &b) in bytes.iter().enumerate() {
                let free = !released[i];
                let block = got[i / 64];
                let bit = |m: u64| m >> (i % 64) & 1 == 1;
                prop_assert_eq!(bit(block.terminators), free && b == b'\'', "at {}", i);
                prop_assert_eq!(bit(block.elements), free && b == b'+', "at {}", i);
                prop_assert_eq!(bit(block.components), free && (b == b':' || b == b'*'));
                if released[i] && b != b'?' {
                    let service = matches!(b, b'\'' | b'+' | b':' | b'*');
                    if !service {
                        prop_assert!(bit(block.attention), "at {}", i);
                    }
                }
            }
        }
    }
}
