//! Hostile and broken XML: every attack gets a clear issue with its code and
//! location, is refused before any parser that could be hurt sees it, and
//! never panics or hangs. Also: validators on several threads agree.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tradehub::diag::Code;
use tradehub::xml::{XmlLimits, XmlReport, XmlValidator};

fn schemas() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/wco")
}

fn validator(limits: XmlLimits) -> XmlValidator {
    XmlValidator::new(Some(&schemas()), limits)
}

fn sample() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/wco/corpus/valid/hmrc__TT_IM078a__TT_IM078a.xml"),
    )
    .unwrap()
}

/// Asserts the single refusal: its code, that the schema engine never ran,
/// and where it was found.
fn refused(report: &XmlReport, code: Code, line: u32) {
    assert!(!report.valid);
    assert!(!report.readable, "nothing may be read from it");
    assert!(
        !report.schema_validated,
        "a refused document must not reach libxml2: {report:#?}"
    );
    assert_eq!(report.issues.len(), 1, "{:#?}", report.issues);
    assert_eq!(report.issues[0].code, code, "{:#?}", report.issues);
    assert_eq!(
        report.issues[0].location.line,
        Some(line),
        "{:#?}",
        report.issues
    );
}

#[test]
fn external_entity_is_refused_with_the_dtd() {
    let doc = br#"<?xml version="1.0"?>
<!DOCTYPE Declaration [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Declaration xmlns="urn:wco:datamodel:WCO:DEC-DMS:2"><FunctionCode>&xxe;</FunctionCode></Declaration>"#;
    let report = validator(XmlLimits::default()).validate(doc, "xxe.xml");
    refused(&report, Code::XmlDtd, 2);
    assert!(
        !format!("{report:?}").contains("root:x:0"),
        "no file content may leak into the report"
    );
}

#[test]
fn external_dtd_is_never_fetched() {
    let doc = br#"<?xml version="1.0"?>
<!DOCTYPE Declaration SYSTEM "http://127.0.0.1:9/evil.dtd">
<Declaration xmlns="urn:wco:datamodel:WCO:DEC-DMS:2"/>"#;
    refused(
        &validator(XmlLimits::default()).validate(doc, "dtd.xml"),
        Code::XmlDtd,
        2,
    );
}

#[test]
fn billion_laughs_is_refused_before_expansion() {
    let mut doc =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    for i in 1..10 {
        let prev = if i == 1 {
            "lol".to_owned()
        } else {
            format!("lol{}", i - 1)
        };
        doc.push_str(&format!(
            "<!ENTITY lol{i} \"{}\">\n",
            format!("&{prev};").repeat(10)
        ));
    }
    doc.push_str("]>\n<lolz>&lol9;</lolz>\n");
    refused(
        &validator(XmlLimits::default()).validate(doc.as_bytes(), "lol.xml"),
        Code::XmlDtd,
        2,
    );
}

#[test]
fn undefined_entity_is_not_well_formed() {
    let doc = b"<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<FunctionCode>&nbsp;</FunctionCode></Declaration>";
    let report = validator(XmlLimits::default()).validate(doc, "ent.xml");
    assert!(!report.valid);
    assert_eq!(
        report.issues[0].code,
        Code::XmlNotWellFormed,
        "{:#?}",
        report.issues
    );
    assert_eq!(report.issues[0].location.line, Some(2));
}

#[test]
fn deep_nesting_stops_at_the_depth_limit() {
    let depth = 100_000;
    let mut doc = String::with_capacity(depth * 8);
    for _ in 0..depth {
        doc.push_str("<a>");
    }
    for _ in 0..depth {
        doc.push_str("</a>");
    }
    let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "deep.xml");
    refused(&report, Code::XmlTooDeep, 1);
    // The element that went one level too deep: the 65th, at byte 64 * 3.
    assert_eq!(report.issues[0].location.offset, Some(64 * 3));
}

#[test]
fn element_count_limit() {
    let limits = XmlLimits {
        max_elements: 1_000,
        ..XmlLimits::default()
    };
    let mut doc = String::from("<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n");
    for _ in 0..2_000 {
        doc.push_str("<X/>\n");
    }
    doc.push_str("</Declaration>");
    let report = validator(limits).validate(doc.as_bytes(), "many.xml");
    refused(&report, Code::XmlTooManyElements, 1_001);
}

#[test]
fn attribute_limits() {
    let big = "A".repeat(1 << 20);
    let doc = format!(
        "<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<InvoiceAmount currencyID=\"{big}\">1</InvoiceAmount></Declaration>"
    );
    let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "attr.xml");
    refused(&report, Code::XmlAttributeTooLarge, 2);
    // At the attribute (docs/formats.md: `/@name` when an attribute is at
    // fault), not at the parent element.
    assert_eq!(
        report.issues[0].location.path.as_deref(),
        Some("/Declaration/InvoiceAmount/@currencyID")
    );

    let many: String = (0..100).map(|i| format!(" a{i}=\"x\"")).collect();
    let doc = format!("<Declaration{many}/>");
    let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "attrs.xml");
    refused(&report, Code::XmlAttributeTooLarge, 1);
    assert_eq!(
        report.issues[0].location.path.as_deref(),
        Some("/Declaration")
    );
}

#[test]
fn text_limit() {
    let big = "9".repeat(2 << 20);
    let doc = format!(
        "<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<FunctionCode>{big}</FunctionCode></Declaration>"
    );
    refused(
        &validator(XmlLimits::default()).validate(doc.as_bytes(), "text.xml"),
        Code::XmlTextTooLarge,
        2,
    );
}

/// Text cut into pieces by empty comments (or processing instructions)
/// is still one value to libxml2, which joins the pieces at a cost growing
/// with their square: the limit counts the element's character data across
/// them, and a long comment counts too.
#[test]
fn text_limit_holds_across_comments() {
    let piece = "A".repeat(1 << 10);
    for cut in ["<!---->", "<?x?>"] {
        let text: String = (0..2048).map(|_| format!("{piece}{cut}")).collect();
        let doc = format!(
            "<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<FunctionalReferenceID>{text}</FunctionalReferenceID></Declaration>"
        );
        refused(
            &validator(XmlLimits::default()).validate(doc.as_bytes(), "pieces.xml"),
            Code::XmlTextTooLarge,
            2,
        );
    }
    let comment = format!("<!--{}-->", "c".repeat(2 << 20));
    let doc = format!(
        "<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<FunctionCode>9</FunctionCode>{comment}</Declaration>"
    );
    refused(
        &validator(XmlLimits::default()).validate(doc.as_bytes(), "comment.xml"),
        Code::XmlTextTooLarge,
        2,
    );
    // Text between child elements starts a new run at each element: a
    // declaration whose values add up to more than the limit is fine.
    let items: String = (0..3)
        .map(|_| {
            format!(
                "<FunctionalReferenceID>{}</FunctionalReferenceID>",
                "B".repeat(600 << 10)
            )
        })
        .collect();
    let doc =
        format!("<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n{items}</Declaration>");
    let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "items.xml");
    assert!(
        report
            .issues
            .iter()
            .all(|i| i.code != Code::XmlTextTooLarge),
        "{:#?}",
        report.issues
    );
}

#[test]
fn document_size_limit_is_checked_before_parsing() {
    let limits = XmlLimits {
        max_document_bytes: 1_000,
        ..XmlLimits::default()
    };
    let report = validator(limits).validate(&sample(), "big.xml");
    assert!(!report.valid && !report.schema_validated);
    assert_eq!(report.issues[0].code, Code::XmlTooLarge);
    assert_eq!(report.summary.elements, 0, "nothing was parsed");
}

#[test]
fn encodings_other_than_utf8_are_refused_clearly() {
    // UTF-16 with a byte order mark.
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "<Declaration/>"
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes()),
        )
        .collect();
    refused(
        &validator(XmlLimits::default()).validate(&utf16, "u16.xml"),
        Code::XmlEncoding,
        1,
    );
    // UTF-32 (big and little endian) with a byte order mark: XML (not
    // EDIFACT with stray bytes), refused as such.
    for bom in [[0x00, 0x00, 0xFE, 0xFF], [0xFF, 0xFE, 0x00, 0x00]] {
        let utf32: Vec<u8> = bom
            .into_iter()
            .chain("<Declaration/>".chars().flat_map(|c| {
                let u = c as u32;
                if bom[0] == 0 {
                    u.to_be_bytes()
                } else {
                    u.to_le_bytes()
                }
            }))
            .collect();
        assert!(tradehub::xml::looks_like_xml(&utf32));
        let report = validator(XmlLimits::default()).validate(&utf32, "u32.xml");
        refused(&report, Code::XmlEncoding, 1);
        assert!(
            report.issues[0].message.contains("UTF-32"),
            "{:?}",
            report.issues
        );
    }
    // The first character decides, read in the marked encoding: XML after
    // blanks is XML, EDIFACT saved as UTF-16 or UTF-32 is not.
    let wide = |text: &str, mark: &[u8], unit: fn(char) -> Vec<u8>| -> Vec<u8> {
        mark.iter()
            .copied()
            .chain(text.chars().flat_map(unit))
            .collect()
    };
    let le16 = |c: char| (c as u16).to_le_bytes().to_vec();
    let be16 = |c: char| (c as u16).to_be_bytes().to_vec();
    let le32 = |c: char| (c as u32).to_le_bytes().to_vec();
    assert!(tradehub::xml::looks_like_xml(&wide(
        " \r\n<Declaration/>",
        &[0xFF, 0xFE],
        le16
    )));
    assert!(tradehub::xml::looks_like_xml(&wide(
        "\n<Declaration/>",
        &[0xFE, 0xFF],
        be16
    )));
    for (mark, unit) in [
        (&[0xFF, 0xFE][..], le16 as fn(char) -> Vec<u8>),
        (&[0xFE, 0xFF][..], be16),
        (&[0xFF, 0xFE, 0, 0][..], le32),
    ] {
        let edifact = wide("UNA:+.? 'UNB+UNOC:3+A+B+260101:1200+1'", mark, unit);
        assert!(!tradehub::xml::looks_like_xml(&edifact), "{mark:?}");
    }
    assert!(!tradehub::xml::looks_like_xml(&[0xFF, 0xFE]));
    assert!(tradehub::xml::looks_like_xml(b"\xEF\xBB\xBF  <a/>"));
    // A declared single-byte encoding.
    let latin = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<Declaration/>";
    let report = validator(XmlLimits::default()).validate(latin, "latin.xml");
    refused(&report, Code::XmlEncoding, 1);
    assert!(report.issues[0].message.contains("ISO-8859-1"));
    // Bytes that are not UTF-8, located.
    let bad = b"<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n<FunctionalReferenceID>M\xFCller</FunctionalReferenceID></Declaration>";
    let report = validator(XmlLimits::default()).validate(bad, "bad.xml");
    refused(&report, Code::XmlEncoding, 2);
    assert_eq!(report.issues[0].location.column, Some(25));
    // UTF-16 and UTF-32 without a byte order mark: ASCII text in them is
    // valid UTF-8 byte for byte, NULs included; refused for the encoding
    // (it was a well-formedness error whose path held NULs).
    let declared = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><Declaration/>";
    let be32 = |c: char| (c as u32).to_be_bytes().to_vec();
    for (unit, family) in [
        (le16 as fn(char) -> Vec<u8>, "UTF-16"),
        (be16, "UTF-16"),
        (le32, "UTF-32"),
        (be32, "UTF-32"),
    ] {
        let bytes = wide(declared, &[], unit);
        // Taken as XML by intake (big-endian went to EDIFACT, EDI104).
        assert!(tradehub::xml::looks_like_xml(&bytes), "{family}");
        let report = validator(XmlLimits::default()).validate(&bytes, "nb.xml");
        refused(&report, Code::XmlEncoding, 1);
        assert!(
            report.issues[0].message.contains(family) && report.issues[0].location.path.is_none(),
            "{:?}",
            report.issues
        );
    }
    // ASCII declared, UTF-8 written: refused for the encoding at the first
    // byte over 0x7F (libxml2 said "Extra content at the end of the
    // document"); ASCII declared and kept is fine.
    let text: String = String::from_utf8(sample())
        .unwrap()
        .chars()
        .map(|c| if c.is_ascii() { c } else { 'e' })
        .collect();
    let ascii = text.replacen("encoding=\"UTF-8\"", "encoding=\"US-ASCII\"", 1);
    assert_ne!(ascii, text, "the sample declares UTF-8");
    assert!(
        validator(XmlLimits::default())
            .validate(ascii.as_bytes(), "ascii.xml")
            .valid
    );
    // … after a UTF-8 byte order mark too.
    let mut marked = b"\xEF\xBB\xBF".to_vec();
    marked.extend_from_slice(ascii.as_bytes());
    assert!(
        validator(XmlLimits::default())
            .validate(&marked, "ascii-bom.xml")
            .valid
    );
    let accented = ascii.replacen("</FunctionalReferenceID>", "é</FunctionalReferenceID>", 1);
    let report = validator(XmlLimits::default()).validate(accented.as_bytes(), "ascii.xml");
    let at = accented.find('é').unwrap();
    let line = accented[..at].matches('\n').count() as u32 + 1;
    refused(&report, Code::XmlEncoding, line);
    let at = at as u64;
    assert_eq!(
        report.issues[0].location.offset,
        Some(at),
        "{:?}",
        report.issues
    );
    assert!(report.issues[0].message.contains("US-ASCII"));
    // A UTF-8 byte order mark is fine (a corpus file starts with one).
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(&sample());
    assert!(
        validator(XmlLimits::default())
            .validate(&bom, "bom.xml")
            .valid
    );
}

#[test]
fn every_truncation_of_a_valid_declaration_is_rejected_and_located() {
    let doc = sample();
    let validator = validator(XmlLimits::default());
    let end = doc.iter().rposition(|b| *b == b'>').unwrap();
    for cut in (0..end).step_by(13) {
        let report = validator.validate(&doc[..cut], "cut.xml");
        assert!(!report.valid, "a document cut at {cut} passed");
        let first = &report.issues[0];
        assert!(first.is_error());
        // Cut inside a multi-byte character, the input is not UTF-8 any more.
        assert!(
            first.code == Code::XmlNotWellFormed || first.code == Code::XmlEncoding,
            "cut at {cut}: {:#?}",
            report.issues
        );
        assert!(
            first.location.line.is_some(),
            "cut at {cut}: unlocated {first:?}"
        );
    }
}

#[test]
fn schema_errors_carry_the_element_path_with_indexes() {
    // A declaration with 120 goods items; the third one's HS code is broken.
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus/valid/crafted-many-items.xml");
    let text = std::fs::read_to_string(path).unwrap();
    let mut seen = 0;
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.contains("<GovernmentAgencyGoodsItem>") {
            seen += 1;
        }
        if seen == 3 && line.contains("<InvoiceLine>") {
            out.push_str(&line.replace("<InvoiceLine>", "<InvoiceLine><Bogus/>"));
            seen += 1000;
            continue;
        }
        out.push_str(line);
    }
    assert!(seen > 1000, "the third goods item was found");
    let report = validator(XmlLimits::default()).validate(out.as_bytes(), "items.xml");
    assert!(!report.valid);
    let issue = report
        .issues
        .iter()
        .find(|i| i.code == Code::XmlSchemaInvalid)
        .unwrap();
    assert_eq!(
        issue.location.path.as_deref(),
        Some(
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/InvoiceLine/Bogus"
        ),
        "{issue:#?}"
    );
    assert!(issue.location.column.is_some());
}

#[test]
fn attribute_errors_point_at_the_attribute() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus/invalid/crafted-bad-currency.xml");
    let report = validator(XmlLimits::default()).validate(&std::fs::read(path).unwrap(), "cur.xml");
    let issue = &report.issues[0];
    assert_eq!(issue.code, Code::XmlSchemaInvalid);
    assert_eq!(issue.location.line, Some(236));
    assert_eq!(
        issue.location.path.as_deref(),
        Some(
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem/Commodity/InvoiceLine/ItemChargeAmount/@currencyID"
        )
    );
}

fn many_items() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus/valid/crafted-many-items.xml");
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn all_errors_are_reported_not_only_the_first() {
    // 120 goods items, each with a lower-case currency.
    let broken = many_items().replace("currencyID=\"GBP\"", "currencyID=\"gbp\"");
    let report = validator(XmlLimits::default()).validate(broken.as_bytes(), "many-errors.xml");
    let schema_errors: Vec<_> = report
        .issues
        .iter()
        .filter(|i| i.code == Code::XmlSchemaInvalid)
        .collect();
    assert_eq!(schema_errors.len(), 100, "capped at max_issues");
    assert_eq!(report.issues.last().unwrap().code, Code::XmlTooManyIssues);
    assert!(
        report
            .issues
            .last()
            .unwrap()
            .message
            .starts_with("20 further"),
        "{:?}",
        report.issues.last()
    );
    // Each is located at its own goods item.
    assert_eq!(
        schema_errors[41].location.path.as_deref(),
        Some(
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[42]/Commodity/InvoiceLine/ItemChargeAmount/@currencyID"
        )
    );
}

#[test]
fn issue_cap_counts_the_rest() {
    let broken = many_items().replace("currencyID=\"GBP\"", "currencyID=\"gbp\"");
    let limits = XmlLimits {
        max_issues: 5,
        ..XmlLimits::default()
    };
    let report = validator(limits).validate(broken.as_bytes(), "cap.xml");
    let codes: Vec<Code> = report.issues.iter().map(|i| i.code).collect();
    assert_eq!(codes.len(), 6);
    assert_eq!(codes.first(), Some(&Code::XmlSchemaInvalid));
    assert_eq!(
        codes.last(),
        Some(&Code::XmlTooManyIssues),
        "{:#?}",
        report.issues
    );
}

#[test]
fn missing_schema_folder_is_an_issue_not_a_pass() {
    let validator = XmlValidator::new(Some(Path::new("/nonexistent/wco")), XmlLimits::default());
    let report = validator.validate(&sample(), "s.xml");
    assert!(!report.valid && !report.schema_validated);
    assert_eq!(
        report.issues.last().unwrap().code,
        Code::XmlSchemaUnavailable
    );
}

#[test]
fn validators_on_many_threads_agree() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/wco/corpus");
    let mut files: Vec<(PathBuf, bool)> = Vec::new();
    for (dir, valid) in [("valid", true), ("invalid", false)] {
        for entry in std::fs::read_dir(corpus.join(dir)).unwrap() {
            files.push((entry.unwrap().path(), valid));
        }
    }
    let shared = validator(XmlLimits::default());
    std::thread::scope(|scope| {
        for t in 0..6 {
            let shared = shared.clone();
            let files = &files;
            scope.spawn(move || {
                for round in 0..3 {
                    for (i, (path, valid)) in files.iter().enumerate() {
                        if (i + t + round) % 2 == 0 {
                            continue;
                        }
                        let report =
                            shared.validate(&std::fs::read(path).unwrap(), &path.to_string_lossy());
                        assert_eq!(report.valid, *valid, "thread {t}: {}", path.display());
                    }
                }
            });
        }
    });
}

/// Many siblings with distinct names (each element's children are counted
/// by name to locate findings as `name[n]`): the guard's work stays linear,
/// and the document gets its answer instead of the validator working for
/// hours: up to `max_names` distinct names the schema's complaint about the
/// first unexpected element; beyond, the guard's XML013 (libxml2's name
/// table slows down with a million names), located at the parent.
#[test]
fn many_distinct_sibling_names_do_not_stall_the_guard() {
    let mut doc = String::from("<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n");
    for i in 0..4_000 {
        doc.push_str(&format!("<a{i}/>"));
    }
    doc.push_str("\n</Declaration>");
    let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "names.xml");
    assert!(!report.valid);
    assert!(
        report.issues.iter().all(|i| i.code != Code::XmlNames)
            && report
                .issues
                .iter()
                .any(|i| i.code == Code::XmlSchemaInvalid),
        "{:#?}",
        report.issues.first()
    );
    for (names, name_bytes, says) in [
        (
            150_000,
            4,
            "more than 4096 distinct element and attribute names",
        ),
        (1, 300, "is 300 bytes long; the limit is 256"),
    ] {
        let mut doc = String::from("<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">\n");
        for i in 0..names {
            doc.push_str(&format!(
                "<a{i:0>name_bytes$}/>",
                name_bytes = name_bytes - 1
            ));
        }
        doc.push_str("\n</Declaration>");
        let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "names.xml");
        let refusal = report.issues.iter().find(|i| i.code == Code::XmlNames);
        let refusal = refusal.unwrap_or_else(|| panic!("{:#?}", report.issues.first()));
        assert!(refusal.message.contains(says), "{refusal}");
        assert_eq!(refusal.location.path.as_deref(), Some("/Declaration"));
        assert!(refusal.location.line.is_some(), "{refusal:?}");
    }
}

/// The guard's work per element does not grow with the depth it is at: a
/// path is built only for what is reported.
#[test]
fn deep_elements_with_long_names_cost_no_path_each() {
    let name = "L".repeat(200);
    let mut doc = String::from("<Declaration xmlns=\"urn:wco:datamodel:WCO:DEC-DMS:2\">");
    for _ in 0..60 {
        doc.push_str(&format!("<{name}>"));
    }
    for _ in 0..200_000 {
        doc.push_str("<a/>");
    }
    for _ in 0..60 {
        doc.push_str(&format!("</{name}>"));
    }
    doc.push_str("</Declaration>");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let report = validator(XmlLimits::default()).validate(doc.as_bytes(), "deep.xml");
        let _ = tx.send(report);
    });
    // A liveness bound (12 KB of path per element took minutes for 16 MB).
    let report = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the validator did not answer");
    assert!(!report.valid);
}

/// The element path and line of each schema error of a document.
fn schema_places(doc: &[u8], name: &str) -> Vec<(Option<String>, Option<u32>)> {
    validator(XmlLimits::default())
        .validate(doc, name)
        .issues
        .into_iter()
        .filter(|i| i.code == Code::XmlSchemaInvalid)
        .map(|i| (i.location.path, i.location.line))
        .collect()
}

/// libxml2 gives a schema error's line only. On a document written on one
/// line, or for a value that runs over several lines, the element is still
/// the one at fault: the one holding the quoted value, at its start tag.
#[test]
fn schema_errors_on_one_line_or_over_several_find_their_element() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/wco/corpus/valid/hmrc__TT_IM001d__TT_IM001d.xml");
    let text = std::fs::read_to_string(path).unwrap();
    // Minified: no line breaks between tags; the third item's mass broken.
    let mut minified = String::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !(minified.is_empty() || minified.ends_with('>') && line.starts_with('<')) {
            minified.push(' ');
        }
        minified.push_str(line);
    }
    assert_eq!(minified.lines().count(), 1);
    let third = minified
        .rfind("<GrossMassMeasure>15</GrossMassMeasure>")
        .unwrap();
    let mut broken = minified.clone();
    broken.replace_range(
        third..third + 39,
        "<GrossMassMeasure>12a</GrossMassMeasure>",
    );
    let places = schema_places(broken.as_bytes(), "min.xml");
    assert_eq!(
        places,
        [(
            Some(
                "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/GoodsMeasure/GrossMassMeasure"
                    .to_owned()
            ),
            Some(1)
        )]
    );
    // A goods item missing what it must hold, after an error inside it:
    // libxml2 reports the item when it ends, after its child; both are in
    // the first item, not the next one.
    let from = minified.find("<GovernmentAgencyGoodsItem>").unwrap();
    let to = minified.find("</GovernmentAgencyGoodsItem>").unwrap()
        + "</GovernmentAgencyGoodsItem>".len();
    let mut gutted = minified.clone();
    gutted.replace_range(
        from..to,
        "<GovernmentAgencyGoodsItem><CustomsValueAmount currencyID=\"GBP\">abc</CustomsValueAmount></GovernmentAgencyGoodsItem>",
    );
    let places = schema_places(gutted.as_bytes(), "gutted.xml");
    let item = "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[1]";
    assert!(
        places.len() >= 2
            && places
                .iter()
                .all(|(p, _)| p.as_deref().is_some_and(|p| p.starts_with(item))),
        "{places:#?}"
    );
    // A value too long, which libxml2 gives by its length, not quoted: the
    // third item's description.
    let shavers = "<Description>Hair clippers</Description>";
    let long = minified.replacen(
        shavers,
        &format!("<Description>{}</Description>", "y".repeat(600)),
        1,
    );
    let places = schema_places(long.as_bytes(), "long.xml");
    let paths: Vec<Option<&str>> = places.iter().map(|(p, _)| p.as_deref()).collect();
    assert_eq!(
        paths,
        [Some(
            "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[3]/Commodity/Description"
        )],
        "{places:#?}"
    );

    // A description over two lines, in the first of three items whose
    // descriptions follow each other closely.
    let first = "<Description>Parts for shavers and hair clippers</Description>";
    let line = text[..text.find(first).unwrap()].matches('\n').count() as u32 + 1;
    let split = text.replacen(first, "<Description>\n\n</Description>", 1);
    let places = schema_places(split.as_bytes(), "split.xml");
    assert_eq!(
        places,
        [(
            Some(
                "/MetaData/Declaration/GoodsShipment/GovernmentAgencyGoodsItem[1]/Commodity/Description"
                    .to_owned()
            ),
            Some(line)
        )]
    );
}
