//! Generated WCO declarations for benchmarks and load tests: a real
//! declaration with its goods item repeated to any count.

/// `doc` with all its `GovernmentAgencyGoodsItem` elements replaced by
/// `items` copies of the first one, numbered 1..=items (its first
/// `SequenceNumeric`). `None` when `doc` has no goods item.
pub fn repeat_goods_items(doc: &[u8], items: usize) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(doc).ok()?;
    let open = "<GovernmentAgencyGoodsItem>";
    let close = "</GovernmentAgencyGoodsItem>";
    let first = text.find(open)?;
    let last_close = text.rfind(close)? + close.len();
    let first_close = text.get(first..)?.find(close)? + first + close.len();
    let item = text.get(first..first_close)?;
    let seq_open = "<SequenceNumeric>";
    let seq_at = item.find(seq_open)? + seq_open.len();
    let seq_end = item.get(seq_at..)?.find('<')? + seq_at;
    let (head, tail) = (item.get(..seq_at)?, item.get(seq_end..)?);
    let mut out = String::with_capacity(text.len() + item.len() * items);
    out.push_str(text.get(..first)?);
    for n in 1..=items {
        out.push_str(head);
        out.push_str(&n.to_string());
        out.push_str(tail);
        if n < items {
            out.push_str("\n\t\t\t");
        }
    }
    out.push_str(text.get(last_close..)?);
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_and_numbers_the_first_item() {
        let doc = b"<D><G><GovernmentAgencyGoodsItem><SequenceNumeric>1</SequenceNumeric><X/></GovernmentAgencyGoodsItem><GovernmentAgencyGoodsItem><SequenceNumeric>2</SequenceNumeric></GovernmentAgencyGoodsItem></G></D>";
        let out =
            String::from_utf8(repeat_goods_items(doc, 3).unwrap_or_default()).unwrap_or_default();
        assert_eq!(out.matches("<X/>").count(), 3);
        assert!(out.contains("<SequenceNumeric>3</SequenceNumeric>"));
        assert!(out.ends_with("</G></D>"));
        assert_eq!(repeat_goods_items(b"<D/>", 3), None);
    }
}
