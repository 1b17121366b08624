//! A generator of large, valid CUSDEC-like interchanges for benchmarks, load
//! tests and memory measurements (deterministic: the same size gives the
//! same bytes). Values include released service characters.

use std::io::{self, Write};

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
