//! A generator of large, valid CUSDEC-like interchanges for benchmarks, load
//! tests and memory measurements (deterministic: the same size gives the
//! same bytes). Values include released service characters.

use std::io::{self, Write};

use super::{Element, Message, Segment};

/// One message with `items` goods items; returns its segment count. The
/// segments follow the D.96B CUSDEC segment table, so the message also
/// passes structure validation.
fn message(out: &mut Vec<u8>, reference: u64, items: u64) -> u64 {
    let seg = |out: &mut Vec<u8>, text: &str| {
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"'\n");
    };
    seg(out, &format!("UNH+{reference}+CUSDEC:D:96B:UN"));
    seg(out, &format!("BGM+830+LRN{reference:010}+9"));
    seg(out, "LOC+22+KRPUS:139:6");
    seg(out, "DTM+137:202611241030:203");
    seg(
        out,
        "TDT+20+V2611+1++HDMU:172:20+++9353216:146::HMM ALGECIRAS",
    );
    seg(
        out,
        "NAD+DT+1234567890::ZZZ++HANBIT TRADING CO?+ LTD+123 HARBOUR ROAD+BUSAN++48058+KR",
    );
    // The exporter an export declaration needs (business rule RUL001), so
    // that the generated declarations are accepted, not only valid.
    seg(out, "NAD+EX+1234567890::ZZZ++HANBIT TRADING CO?+ LTD");
    seg(out, "MOA+39:125000.50:USD");
    seg(out, "UNS+D");
    for i in 1..=items {
        seg(out, &format!("CST+{i}+847989"));
        seg(
            out,
            &format!("FTX+AAA+++MACHINE PARTS?: BEARINGS 50% STEEL?+ALLOY ITEM {i}"),
        );
        seg(out, &format!("MEA+AAE+G+KGM:{}.5", 1000 + i));
        seg(out, &format!("MOA+123:{}.25:USD", 50_000 + i));
        seg(out, "TAX+7+CUD+++:::8+S");
    }
    seg(out, "UNS+S");
    // UNH, BGM, LOC, DTM, TDT, two NAD, MOA, UNS, five per item, UNS, UNT.
    let count = 11 + 5 * items;
    seg(out, &format!("UNT+{count}+{reference}"));
    count
}

/// Writes an interchange of at least `target_bytes` (UNA, UNB, messages of 5
/// to 15 goods items, UNZ with the right count). Returns the bytes written.
pub fn write_interchange<W: Write>(out: &mut W, target_bytes: u64) -> io::Result<u64> {
    let mut written = 0u64;
    let head = b"UNA:+.? 'UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+BENCH0001'\n";
    out.write_all(head)?;
    written += head.len() as u64;
    let mut buf = Vec::with_capacity(8192);
    let mut messages = 0u64;
    while written < target_bytes {
        buf.clear();
        messages += 1;
        message(&mut buf, messages, 5 + messages % 11);
        out.write_all(&buf)?;
        written += buf.len() as u64;
    }
    let tail = format!("UNZ+{messages}+BENCH0001'\n");
    out.write_all(tail.as_bytes())?;
    Ok(written + tail.len() as u64)
}

/// Values a [`Mutator`] puts in place of others: codes and qualifiers the
/// mappings look for, numbers in several shapes, dates, and text that is
/// none of these.
const WORDS: &[&str] = &[
    "", "1,5", "12.50", "x", "G", "N", "KGM", "AAE", "WT", "40", "123", "161", "39", "137", "102",
    "203", "20230115", "830", "929", "777", "9", "5", "DT", "IM", "EX", "27", "22", "AAA", "~/a",
];

/// Changes decoded messages in ways a sender gets wrong (a segment left
/// out, repeated, moved, of another tag; a value changed; a repetition
/// added), deterministically from its seed: for tests that compare two
/// ways of reading the same messages.
#[derive(Debug)]
pub struct Mutator(u64);

impl Mutator {
    pub fn new(seed: u64) -> Mutator {
        Mutator(seed)
    }

    /// A number below `bound` (0 for a bound of 0).
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % bound.max(1)
    }

    /// A copy of `message` with one to four changes (never to its UNH).
    pub fn mutate(&mut self, message: &Message) -> Message {
        let mut m = message.clone();
        let steps = 1 + self.next(4);
        for _ in 0..steps {
            let len = m.segments.len();
            if len < 3 {
                break;
            }
            let s = 1 + self.next(len - 1);
            match self.next(7) {
                0 => {
                    m.segments.remove(s);
                }
                1 => {
                    if let Some(copy) = m.segments.get(s).cloned() {
                        m.segments.insert(s, copy);
                    }
                }
                2 => {
                    let t = 1 + self.next(len - 1);
                    m.segments.swap(s, t);
                }
                3 | 4 => {
                    let word = WORDS.get(self.next(WORDS.len())).copied().unwrap_or("");
                    let e = self.next(m.segments.get(s).map_or(0, |seg| seg.elements.len()) + 1);
                    let Some(seg) = m.segments.get_mut(s) else {
                        continue;
                    };
                    let mut reps: Vec<Vec<String>> = seg
                        .elements
                        .get(e)
                        .map(|el| el.repetitions().to_vec())
                        .unwrap_or_else(|| vec![vec![String::new()]]);
                    let c = self.next(reps.first().map_or(1, Vec::len) + 1);
                    if let Some(first) = reps.first_mut() {
                        match first.get_mut(c) {
                            Some(v) => *v = word.to_owned(),
                            None => first.push(word.to_owned()),
                        }
                    }
                    while seg.elements.len() <= e {
                        seg.elements.push(Element::simple(""));
                    }
                    if let Some(slot) = seg.elements.get_mut(e) {
                        *slot = Element::repeated(reps);
                    }
                }
                5 => {
                    // A repetition (syntax version 4) of some element.
                    let e = self.next(m.segments.get(s).map_or(0, |seg| seg.elements.len()));
                    if let Some(el) = m
                        .segments
                        .get_mut(s)
                        .and_then(|seg| seg.elements.get_mut(e))
                    {
                        let mut reps = el.repetitions().to_vec();
                        reps.push(vec!["R1".into(), "R2".into()]);
                        *el = Element::repeated(reps);
                    }
                }
                _ => {
                    let tags = [
                        "FTX", "MOA", "NAD", "LOC", "DTM", "CST", "TAX", "DOC", "XYZ",
                    ];
                    let tag = tags.get(self.next(tags.len())).copied().unwrap_or("FTX");
                    m.segments.insert(
                        s,
                        Segment::new(
                            tag,
                            vec![Element::simple("AAA"), Element::composite(["x", "y"])],
                        ),
                    );
                }
            }
        }
        m
    }
}

/// The same in memory.
pub fn interchange(target_bytes: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(target_bytes as usize + 8192);
    // Writing to a Vec cannot fail.
    let _ = write_interchange(&mut out, target_bytes);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn generated_interchange_is_valid() {
        let data = super::interchange(200_000);
        assert!(data.len() >= 200_000);
        let parsed = crate::edifact::parse(&data);
        assert!(parsed.is_valid(), "{:#?}", parsed.issues.first());
        assert!(parsed.interchange.counts.messages > 100);
    }
}
