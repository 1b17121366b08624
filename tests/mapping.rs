//! Declarative mappings: every mapping file compiles against its directory;
//! real and generated messages map to the golden canonical JSON (with every
//! unmapped value listed); mistakes in a mapping file name their line; bad
//! values and untranslated codes are located in the message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use tradehub::diag::{Code, Severity};
use tradehub::mapping::Mapped;
use tradehub::mapping::edifact::{EdifactMapping, parse_and_map};
use tradehub::schema::Directories;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn map(bytes: &[u8]) -> Vec<Mapped> {
    parse_and_map(bytes, &Directories::global()).unwrap().1
}

/// The golden form: canonical objects and the mapping issues (code,
/// location, message) of every message.
fn golden(mapped: &[Mapped]) -> serde_json::Value {
    serde_json::to_value(mapped).unwrap()
}

#[test]
fn every_mapping_file_compiles() {
    let directories = Directories::global();
    let mut count = 0;
    for release in std::fs::read_dir(root().join("mappings/edifact")).unwrap() {
        let release = release.unwrap().path();
        let name = release.file_name().unwrap().to_string_lossy().into_owned();
        let dir = directories.release(&name).unwrap().unwrap();
        for file in std::fs::read_dir(&release).unwrap() {
            let file = file.unwrap().path();
            let text = std::fs::read_to_string(&file).unwrap();
            for version in [3, 4] {
                EdifactMapping::compile(&file.display().to_string(), &text, &dir, version)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            count += 1;
        }
    }
    assert!(count >= 3, "CUSDEC D96B, PAXLST D02B and D05B at least");
}

/// Every fixture interchange (fixtures/edifact/ok and the corpus samples)
/// with a message some mapping reads has its golden: a new fixture without
/// one fails until `UPDATE_EXPECT=1` writes it.
#[test]
fn messages_map_to_their_golden_canonical_json() {
    // Corpus samples whose goldens were named before the list was read
    // from the folders; other goldens are named after their file.
    let named: &[(&str, &str)] = &[
        ("gtas__Test1.txt", "paxlst-d02b-gtas-test1"),
        ("gtas__airline2.edi", "paxlst-d02b-gtas-airline2"),
        ("gtas__apisMessage.txt", "paxlst-d05b-gtas-apis"),
    ];
    let mut failures = Vec::new();
    let mut checked = Vec::new();
    for folder in ["ok", "corpus"] {
        let mut inputs: Vec<PathBuf> =
            std::fs::read_dir(root().join("fixtures/edifact").join(folder))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy();
                    !name.ends_with(".json") && !name.starts_with("LICENSE") && name != "SOURCES.md"
                })
                .collect();
        inputs.sort();
        for input in inputs {
            let file = input.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&input).unwrap();
            let Ok((_, mapped)) = parse_and_map(&bytes, &Directories::global()) else {
                continue;
            };
            if mapped.iter().all(|m| m.target.is_empty()) {
                continue; // no mapping reads its messages
            }
            let name = match named.iter().find(|(f, _)| *f == file) {
                Some((_, name)) => (*name).to_owned(),
                None if folder == "ok" => file.trim_end_matches(".edi").to_owned(),
                None => format!("corpus-{}", file.replace('.', "-")),
            };
            checked.push(name.clone());
            let got = golden(&mapped);
            let expected_path: PathBuf =
                root().join("fixtures/mapping").join(format!("{name}.json"));
            if std::env::var_os("UPDATE_EXPECT").is_some() {
                std::fs::create_dir_all(expected_path.parent().unwrap()).unwrap();
                std::fs::write(
                    &expected_path,
                    serde_json::to_string_pretty(&got).unwrap() + "\n",
                )
                .unwrap();
                continue;
            }
            let expected: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap_or_default())
                    .unwrap_or(serde_json::Value::Null);
            if got != expected {
                failures.push(format!(
                    "{folder}/{file}: differs from {} (UPDATE_EXPECT=1 to refresh)",
                    expected_path.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // CUSDEC (syntax 3 and 4, every repertoire), CUSCAR, PAXLST D.02B and
    // D.05B.
    for expected in [
        "cusdec-d96b-unoc",
        "cusdec-unow-utf8",
        "cusdec-unod-latin2",
        "cusdec-v4-repetition",
        "cuscar-d96b-edinet",
        "paxlst-d02b-gtas-test1",
        "paxlst-d05b-iata-guideline",
        "paxlst-d02b-iata-references",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected}: {checked:?}"
        );
    }
}

#[test]
fn cusdec_fields_land_where_the_directory_says() {
    let bytes = std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let mapped = map(&bytes);
    assert_eq!(mapped.len(), 2);
    let d = &mapped[0].canonical.as_ref().unwrap();
    assert_eq!(d["lrn"], "LRN2026001");
    assert_eq!(d["kind"], "export");
    assert_eq!(d["function"], "original");
    assert_eq!(d["declarant"]["id"], "1234567890");
    assert_eq!(
        d["importer"]["name"], "HANBIT TRADING CO+ LTD",
        "release character resolved"
    );
    assert_eq!(
        d["totals"]["invoice"]["value"], "125000.50",
        "exact decimal, as text"
    );
    assert_eq!(d["goods"][1]["sequence"], 2);
    assert_eq!(d["goods"][1]["hs_code"], "847989");
    assert_eq!(d["issued"]["iso"], "2026-11-24T10:30");
    assert!(
        mapped.iter().all(|m| m.issues.is_empty()),
        "{:#?}",
        mapped[0].issues
    );
}

fn cusdec_with(from: &str, to: &str) -> Vec<Mapped> {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    assert!(text.contains(from));
    map(text.replacen(from, to, 1).as_bytes())
}

#[test]
fn an_untranslated_code_is_located() {
    // BGM 1225 = 3 (deletion) has no canonical function.
    let mapped = cusdec_with("BGM+830+LRN2026001+9'", "BGM+830+LRN2026001+3'");
    let issue = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingCodeUnknown)
        .unwrap();
    assert_eq!(issue.location.tag.as_deref(), Some("BGM"));
    assert_eq!(issue.location.message_segment, Some(2));
    assert_eq!(issue.location.element, Some(3));
    // Without a function the declaration is incomplete, and says so.
    assert!(mapped[0].canonical.is_none());
    assert!(
        mapped[0]
            .issues
            .iter()
            .any(|i| i.code == Code::MappingIncomplete)
    );
}

/// A goods item the typed model cannot take (no item number) makes the
/// declaration incomplete, and the error points at that item: the field
/// pointer of what it lacks, and the element of the segment that opened
/// it where that is read, not just the message.
#[test]
fn an_incomplete_goods_item_is_located() {
    let mapped = cusdec_with("CST+2+847989'", "CST++847989'");
    assert!(mapped[0].canonical.is_none());
    let issue = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingIncomplete)
        .unwrap_or_else(|| panic!("{:#?}", mapped[0].issues));
    assert!(
        issue.message.contains("missing field `sequence`") && issue.message.contains("/goods/1"),
        "{issue:?}"
    );
    // At the element the item number is read from (CST 1496), in the
    // segment that opened the item.
    assert_eq!(issue.location.field.as_deref(), Some("/goods/1/sequence"));
    assert_eq!(issue.location.tag.as_deref(), Some("CST"));
    assert_eq!(issue.location.element, Some(1));
    // The second message, untouched, maps whole.
    assert!(mapped[1].canonical.is_some());
}

#[test]
fn a_bad_value_is_located() {
    let mapped = cusdec_with("MOA+39:125000.50:USD'", "MOA+39:12S000.50:USD'");
    let issue = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingValueInvalid)
        .unwrap();
    assert_eq!(issue.location.tag.as_deref(), Some("MOA"));
    assert_eq!(
        (issue.location.element, issue.location.component),
        (Some(1), Some(2))
    );
}

#[test]
fn nothing_is_dropped_silently() {
    // A free text the mapping has no place for (FTX subject ACB) is listed.
    let mapped = cusdec_with("CST+1+847989'", "CST+1+847989'FTX+ACB+++LOOSE NOTE'");
    let unmapped: Vec<_> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.code == Code::MappingUnmapped)
        .collect();
    assert!(
        unmapped.iter().any(|i| i.message.contains("LOOSE NOTE")),
        "{unmapped:#?}"
    );
    assert!(unmapped.iter().any(|i| i.message.contains("\"ACB\"")));
    assert!(
        mapped[0].canonical.is_some(),
        "warnings do not stop the mapping"
    );
}

/// A value the parser's text cannot address (here the 70,001st element of
/// a segment) is not dropped silently: the mapping says the message was
/// not read whole.
#[test]
fn values_beyond_what_can_be_addressed_are_reported() {
    let hostile = format!("CST+1+847989'FTX+ACB{}+TAIL'", "+".repeat(70_000));
    let mapped = cusdec_with("CST+1+847989'", &hostile);
    let incomplete = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingIncomplete && i.message.contains("65,535"))
        .unwrap_or_else(|| panic!("{:#?}", mapped[0].issues));
    assert!(incomplete.is_error());
}

/// A message whose UNH names no type (the D.95B CUSCAR of the corpus) is
/// not mapped, and the reason says so rather than naming a file that
/// cannot exist.
#[test]
fn a_message_without_a_type_says_so() {
    let bytes =
        std::fs::read(root().join("fixtures/edifact/corpus/edinet__edifact.D95B.CUSCAR.EDI"))
            .unwrap();
    let mapped = map(&bytes);
    assert_eq!(mapped.len(), 1);
    assert!(mapped[0].canonical.is_none());
    let issue = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingUnavailable)
        .unwrap_or_else(|| panic!("{:#?}", mapped[0].issues));
    assert!(issue.message.contains("has no type"), "{}", issue.message);
    assert_eq!(
        issue.location.message.as_deref(),
        Some("201701191AB652"),
        "located at its message"
    );
}

/// A CUSDEC under another controlling agency than UN (an EANCOM or a
/// national subset under its own code) has a structure of its own: it is
/// not read with the UN mapping (before, it was mapped as if UN's and
/// accepted), and the UNH's own elements are still checked (before, an
/// agency code too long for 0051 passed unremarked).
#[test]
fn a_message_of_another_agency_is_not_mapped() {
    // The first of the fixture's two messages.
    let mapped = cusdec_with("CUSDEC:D:96B:UN'", "CUSDEC:D:96B:EA'");
    assert_eq!(mapped.len(), 2);
    assert!(mapped[1].canonical.is_some(), "{:#?}", mapped[1].issues);
    assert!(mapped[0].canonical.is_none(), "{:#?}", mapped[0].canonical);
    let issue = mapped[0]
        .issues
        .iter()
        .find(|i| i.code == Code::MappingUnavailable)
        .unwrap_or_else(|| panic!("{:#?}", mapped[0].issues));
    assert!(issue.message.contains("agency \"EA\""), "{}", issue.message);

    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let parsed = parsed_with_text(
        text.replacen("CUSDEC:D:96B:UN'", "CUSDEC:D:96B:UNXX'", 1)
            .as_bytes(),
    );
    let too_long: Vec<_> = parsed
        .issues
        .iter()
        .filter(|i| i.code == Code::TooLong)
        .map(|i| {
            (
                i.location.tag.as_deref(),
                i.location.element,
                i.location.component,
            )
        })
        .collect();
    assert_eq!(
        too_long,
        [(Some("UNH"), Some(2), Some(4))],
        "{:#?}",
        parsed.issues
    );
}

/// Free text written as several 4440 lines of one FTX is one description,
/// the lines joined as received; every line counts as read, and the value
/// is located at its first line.
#[test]
fn free_text_lines_are_joined_as_received() {
    let mapped = cusdec_with(
        "FTX+AAA+++MACHINE PARTS ITEM 1'",
        "FTX+AAA+++BALL BEARINGS, STEEL, FOR TEXTILE MACHI:NERY:::, 20 CARTONS'",
    );
    let goods = &mapped[0].canonical.as_ref().unwrap()["goods"][0];
    assert_eq!(
        goods["description"], "BALL BEARINGS, STEEL, FOR TEXTILE MACHINERY, 20 CARTONS",
        "lines 1, 2 and 5 joined, the empty ones skipped"
    );
    assert!(
        !mapped[0]
            .issues
            .iter()
            .any(|i| i.location.tag.as_deref() == Some("FTX")),
        "{:#?}",
        mapped[0].issues
    );
    let at = &mapped[0].provenance["/goods/0/description"];
    assert_eq!(
        (at.tag.as_deref(), at.element, at.component),
        (Some("FTX"), Some(4), Some(1))
    );
}

/// A party's name and street lines (C080, C059) are each one text, the
/// lines joined with a space; city, postcode and country are mapped too.
#[test]
fn party_names_and_addresses_are_mapped() {
    let mapped = cusdec_with(
        "NAD+IM+1234567890::ZZZ++HANBIT TRADING CO?+ LTD'",
        "NAD+IM+1234567890::ZZZ++HANBIT TRADING:CO LTD+12 HARBOUR RD:BLDG 5+BUSAN++48058+KR'",
    );
    let importer = &mapped[0].canonical.as_ref().unwrap()["importer"];
    assert_eq!(importer["name"], "HANBIT TRADING CO LTD");
    assert_eq!(
        importer["address"],
        serde_json::json!({
            "street": "12 HARBOUR RD BLDG 5",
            "city": "BUSAN",
            "postcode": "48058",
            "country": "KR"
        })
    );
    assert!(
        !mapped[0]
            .issues
            .iter()
            .any(|i| i.location.tag.as_deref() == Some("NAD")),
        "{:#?}",
        mapped[0].issues
    );
}

/// A range with `all` lists each occurrence present, in order, located at
/// its own component; here the address lines of an unstructured name and
/// address (C058) of a CUSCAR consignee.
#[test]
fn a_range_of_occurrences_lists_each_one() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cuscar-d96b-edinet.edi")).unwrap();
    let mapped = map(text.as_bytes());
    let consignment = &mapped[0].canonical.as_ref().unwrap()["consignments"][0];
    assert_eq!(consignment["notify"]["name"], "FRONERI ICE CREAM EGYPT");
    assert_eq!(
        consignment["notify"]["address"]["lines"],
        serde_json::json!([
            "SUMMIT 44,90 EL SHAMALY STREET AL",
            "TAGAMOAA EL KHAM,400 &401",
            "NEW CAIRO"
        ])
    );
    let at = &mapped[0].provenance["/consignments/0/notify/address/lines/2"];
    assert_eq!(
        (at.tag.as_deref(), at.element, at.component),
        (Some("NAD"), Some(3), Some(4))
    );
    // Two bills under one CNI share its master bill; the next CNI's bill
    // has its own.
    let bills = mapped[0].canonical.as_ref().unwrap()["consignments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(bills[0]["master_bill"], "MSCUXP080935");
    assert_eq!(bills[1]["master_bill"], "MSCUXP080935");
    assert_ne!(
        bills[0]["transport_document"],
        bills[1]["transport_document"]
    );
    assert_eq!(bills[2]["master_bill"], "MSCUEK569969");
    assert_eq!(bills[2]["consolidation_item"], 2);
}

/// Several rules may name one field. For a single value the first rule
/// that finds one wins and a later rule reads nothing, so a value only it
/// would take is reported (MAP001), not taken and dropped; for a list
/// (`all`) each rule appends, in rule order. (Two `all` rules into one
/// list used to keep the first rule's values only, silently: the second
/// given names of the GTAS passenger list were lost.)
/// An interchange parsed as the mapping reads it: messages kept, with
/// their text.
fn parsed_with_text(bytes: &[u8]) -> tradehub::edifact::Parsed {
    tradehub::edifact::Parser::new(
        bytes,
        tradehub::edifact::ParseOptions {
            keep_messages: true,
            message_text: true,
            ..tradehub::edifact::ParseOptions::default()
        },
    )
    .with_directories(Directories::global().clone())
    .run(|_, _| {})
    .unwrap()
}

#[test]
fn later_rules_for_one_field_append_or_leave_their_value_reported() {
    let directories = Directories::global();
    let d96b = directories.release("D96B").unwrap().unwrap();
    let text = "format = \"edifact\"\nmessage = \"CUSDEC\"\nrelease = \"D96B\"\n\
                target = \"declaration\"\n\
                [[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\n\
                [[field]]\nto = \"lrn\"\nfrom = \"SG6/NAD[3035=DT]/C082/3039\"\n\
                [[field]]\nto = \"transport.containers\"\nfrom = \"SG30/CST/C246/7361\"\nall = true\n\
                [[field]]\nto = \"transport.containers\"\nfrom = \"SG6/NAD[3035=IM]/C082/3039\"\nall = true\n";
    let mapping = EdifactMapping::compile("two-rules.toml", text, &d96b, 3).unwrap();
    let bytes = std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let parsed = parsed_with_text(&bytes);
    let message = parsed.interchange.all_messages().next().unwrap();
    let (value, issues, provenance) = mapping.apply_located(message);
    assert_eq!(value["lrn"], "LRN2026001");
    // The declarant's id went nowhere: reported at NAD C082.
    let declarant_id = issues
        .iter()
        .find(|i| {
            i.code == Code::MappingUnmapped
                && i.message.contains("\"1234567890\"")
                && i.location
                    .message_segment
                    .is_some_and(|s| message.text.tag(s as usize - 1) == Some("NAD"))
        })
        .unwrap_or_else(|| panic!("{issues:#?}"));
    assert_eq!(
        (
            declarant_id.location.element,
            declarant_id.location.component
        ),
        (Some(2), Some(1))
    );
    // Both rules' values, the first rule's first, each located.
    assert_eq!(
        value["transport"]["containers"],
        serde_json::json!(["847989", "847989", "1234567890"])
    );
    let last = &provenance["/transport/containers/2"];
    assert_eq!(last.tag.as_deref(), Some("NAD"));

    // With `distinct`, a value an earlier rule put in the list is not
    // added again.
    let distinct = text
        .replace("all = true\n", "all = true\ndistinct = true\n")
        .replace("SG6/NAD[3035=IM]/C082/3039", "SG30/CST/C246/7361");
    let mapping = EdifactMapping::compile("distinct.toml", &distinct, &d96b, 3).unwrap();
    let (value, _, _) = mapping.apply_located(message);
    assert_eq!(
        value["transport"]["containers"],
        serde_json::json!(["847989"])
    );
}

/// `skip_codes` and `skip_other`: a code a rule skips gives it no value
/// and no error, and leaves the field to a later rule (or to none).
#[test]
fn skipped_codes_give_no_value_and_no_error() {
    let directories = Directories::global();
    let d96b = directories.release("D96B").unwrap().unwrap();
    let text = "format = \"edifact\"\nmessage = \"CUSDEC\"\nrelease = \"D96B\"\n\
                target = \"declaration\"\n\
                [[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\n\
                [[field]]\nto = \"function\"\nfrom = \"BGM/1225\"\n\
                codes = { \"1\" = \"cancellation\" }\nskip_other = true\n\
                [[field]]\nto = \"function\"\nfrom = \"BGM/1225\"\n\
                codes = { \"9\" = \"original\" }\n\
                [[field]]\nto = \"kind\"\nfrom = \"BGM/C002/1001\"\n\
                codes = { \"929\" = \"import\" }\nskip_codes = [\"830\"]\n";
    let mapping = EdifactMapping::compile("skips.toml", text, &d96b, 3).unwrap();
    let bytes = std::fs::read(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let parsed = parsed_with_text(&bytes);
    // BGM+830+LRN2026001+9: 9 is skipped by the first rule and translated
    // by the second; 830 is skipped, so there is no kind.
    let message = parsed.interchange.all_messages().next().unwrap();
    let (value, issues) = mapping.apply(message);
    assert_eq!(value["function"], "original");
    assert_eq!(value.get("kind"), None, "{value}");
    assert!(!issues.iter().any(|i| i.is_error()), "{issues:#?}");
    // Typed, a declaration without a kind is incomplete unless it is a
    // cancellation.
    let (typed, _) = mapping.apply_typed::<tradehub::model::Declaration>(message);
    let typed = typed.unwrap();
    assert_eq!(typed.kind, None);
    assert_eq!(
        tradehub::model::Complete::incomplete(&typed).as_deref(),
        Some("missing field `kind`")
    );
    let cancellation = tradehub::model::Declaration {
        function: tradehub::model::DeclarationFunction::Cancellation,
        ..typed
    };
    assert_eq!(tradehub::model::Complete::incomplete(&cancellation), None);
    // Without the skip, 830 is an untranslated code (MAP003) at BGM.
    let strict = text.replace("skip_codes = [\"830\"]\n", "");
    let mapping = EdifactMapping::compile("strict.toml", &strict, &d96b, 3).unwrap();
    let (_, issues) = mapping.apply(message);
    let unknown = issues
        .iter()
        .find(|i| i.code == Code::MappingCodeUnknown)
        .unwrap_or_else(|| panic!("{issues:#?}"));
    assert_eq!(unknown.location.tag.as_deref(), Some("BGM"));
}

/// A CUSCAR's voyage ports are its main carriage's (the SG4 whose TDT has
/// 8051 20), not those of a feeder stage before it; a group step's filter
/// (`SG4[8051=20]`) selects the stage by its trigger TDT.
#[test]
fn voyage_ports_are_those_of_the_main_carriage() {
    let base =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cuscar-d96b-edinet.edi")).unwrap();
    let stages = "TDT+10+FEED1+1++MSC:172:166:MSC'LOC+9+CNNGB'LOC+11+CNSHA'\
                  TDT+20+AB652A+1++MSC:172:166:MSC SENA+++D5LQ7:146:14::EG'LOC+9+CNSHA'LOC+11+KRPUS'";
    let start = base.find("TDT+20+").unwrap();
    let end = start + base[start..].find("DTM+132").unwrap();
    let text = format!("{}{stages}{}", &base[..start], &base[end..]);
    let mapped = map(text.as_bytes());
    let report = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(report["port_of_loading"], "CNSHA", "{report}");
    assert_eq!(report["port_of_discharge"], "KRPUS", "{report}");
    assert_eq!(report["voyage"], "AB652A", "{report}");
    // The feeder's ports are reported as not mapped, not taken.
    let unmapped: Vec<&str> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.code == Code::MappingUnmapped)
        .map(|i| i.message.as_str())
        .collect();
    assert!(unmapped.iter().any(|m| m.contains("CNNGB")), "{unmapped:?}");
}

/// A passenger list's departure is its first leg's, place and time (a
/// later leg does not lend its time), and a traveller's travel document is
/// its first SG5, whose own DTM and LOC are read (not a visa's after it).
#[test]
fn places_times_and_documents_are_read_from_one_instance() {
    let base =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__apisMessage.txt"))
            .unwrap();
    let text = base
        .replacen("DTM+189:0702191540:201'", "", 1)
        .replacen(
            "RFF+CR:20060907NY123'",
            "RFF+CR:20060907NY123'DOC+P:110:111+PASS111'LOC+91+USA'\
             DOC+V:110:111+VISA222'DTM+36:191231'LOC+91+GBR'",
            1,
        )
        .replacen("UNT+33+PAX001", "UNT+37+PAX001", 1);
    let mapped = map(text.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(list["departure"], "ATL", "{list}");
    assert_eq!(list.get("departure_time"), None, "{list}");
    let document = &list["travellers"][0]["travel_document"];
    assert_eq!(document["code"], "P", "{list}");
    assert_eq!(document["reference"], "PASS111", "{list}");
    assert_eq!(document["issuer"], "USA", "{list}");
    assert_eq!(document.get("expires"), None, "{list}");
    // Born in 1972 (720907, YYMMDD), not in the future.
    assert_eq!(list["travellers"][0]["birth_date"]["iso"], "1972-09-07");
}

/// A CUSDEC's transport is one stage's: the means at the border (TDT
/// 8051 11) with its own voyage and carrier, not the main carriage's.
#[test]
fn the_transport_is_one_stages() {
    let base =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let text = base.replacen(
        "TDT+20+V2611+1++HDMU:172:20+++9353216:146::HMM ALGECIRAS'",
        "TDT+11+VOY11+4++CARR11+++MEANS11::::GB'TDT+20+VOY20+1++CARR20+++MEANS20::::CN'",
        1,
    );
    let mapped = map(text.as_bytes());
    let transport = &mapped[0].canonical.as_ref().unwrap()["transport"];
    assert_eq!(transport["means_id"], "MEANS11", "{transport}");
    assert_eq!(transport["voyage"], "VOY11", "{transport}");
    assert_eq!(transport["carrier"], "CARR11", "{transport}");
    assert_eq!(transport["nationality"], "GB", "{transport}");
}

/// A passenger list over two flights (GTAS APIS sample, D.05B): each leg
/// with its own number, places and times; the declared total; each
/// traveller's references with their qualifiers, every RFF of its
/// segment group 4.
#[test]
fn a_passenger_list_keeps_every_leg_and_reference() {
    let bytes =
        std::fs::read(root().join("fixtures/edifact/corpus/gtas__apisMessage.txt")).unwrap();
    let mapped = map(&bytes);
    let list = mapped[0].canonical.as_ref().unwrap();
    let legs: Vec<(&str, &str, &str, &str)> = list["legs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["journey"].as_str().unwrap(),
                l["departure"].as_str().unwrap(),
                l["arrival"].as_str().unwrap(),
                l["arrival_time"]["iso"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        legs,
        [
            ("AA123", "ATL", "ORD", "2007-02-19T17:40"),
            ("AA124", "ORD", "JFK", "2007-02-19T19:55")
        ]
    );
    // The whole journey: first number, first departure, last arrival.
    assert_eq!(
        (&list["journey"], &list["departure"], &list["arrival"]),
        (
            &serde_json::json!("AA123"),
            &serde_json::json!("ATL"),
            &serde_json::json!("JFK")
        )
    );
    assert_eq!(list["passenger_count"], 2);
    // The reporting party's telephone and fax (an `each` list at the
    // message level): the fax written as a second COM element position, as
    // the API guide writes it (the guide's profile takes the positions).
    assert_eq!(
        list["reporter"]["contacts"],
        serde_json::json!([
            {"number": "703-555-1212", "channel": "TE"},
            {"number": "703-555-4545", "channel": "FX"}
        ])
    );
    assert_eq!(list["travellers"].as_array().unwrap().len(), 2);
    // Every RFF of the traveller (the guide's profile repeats RFF in
    // segment group 4), in order; nothing of them is left unread.
    assert_eq!(
        list["travellers"][0]["references"],
        serde_json::json!([
            {"code": "AVF", "value": "TYR123"},
            {"code": "ABO", "value": "ABC123"},
            {"code": "AEA", "value": "1234567890ABC"},
            {"code": "CR", "value": "20060907NY123"}
        ])
    );
    assert_eq!(list["travellers"][1]["references"][1]["value"], "TYL009");
    // (The message's own RFF, segment 3, keeps its revision number 1060
    // unmapped.)
    assert!(
        mapped[0]
            .issues
            .iter()
            .all(|i| i.location.tag.as_deref() != Some("RFF")
                || i.location.message_segment == Some(3)),
        "{:#?}",
        mapped[0].issues
    );
}

/// The list's arrival place and time are both its last leg's: when that
/// leg gives no arrival time, the list has none, rather than the time an
/// earlier leg arrived somewhere else.
#[test]
fn a_passenger_list_arrives_where_and_when_its_last_leg_does() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__apisMessage.txt"))
            .unwrap();
    let time = "DTM+232:0702191955:201'";
    assert_eq!(text.matches(time).count(), 1);
    let untimed = text.replacen(time, "", 1).replacen("UNT+33+", "UNT+32+", 1);
    let mapped = map(untimed.as_bytes());
    assert!(
        !mapped[0]
            .issues
            .iter()
            .any(|i| i.severity == Severity::Error),
        "{:#?}",
        mapped[0].issues
    );
    let list = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(list["arrival"], "JFK", "{list:#}");
    assert!(list.get("arrival_time").is_none(), "{list:#}");
    // The first leg keeps its own arrival time.
    assert_eq!(list["legs"][0]["arrival_time"]["iso"], "2007-02-19T17:40");
    // With the time present, both come from the last leg.
    let list = map(text.as_bytes())[0].canonical.clone().unwrap();
    assert_eq!(
        (&list["arrival"], &list["arrival_time"]["iso"]),
        (
            &serde_json::json!("JFK"),
            &serde_json::json!("2007-02-19T19:55")
        )
    );
}

/// A CUSDEC's declared total gross mass (CNT 6069 7 "total gross weight",
/// UNCL D.96B, in KGM) is the canonical total, which RUL003 then holds
/// against the items' masses.
#[test]
fn a_cusdec_total_gross_weight_is_the_total_mass() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let end = "UNS+S'\nUNT+20+1'";
    assert_eq!(text.matches(end).count(), 1);
    let with = text.replacen(end, "UNS+S'\nCNT+7:2004:KGM'\nUNT+21+1'", 1);
    let mapped = map(with.as_bytes());
    let declaration = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(
        declaration["totals"]["gross_mass_kg"], "2004",
        "{declaration:#}"
    );
    assert!(
        !mapped[0].issues.iter().any(|i| i.message.contains("2004")),
        "{:#?}",
        mapped[0].issues
    );
}

/// BGM 960, the single administrative document, serves imports and exports:
/// its direction is its box 1 (IM, EX) as the document name; without it, an
/// original has no kind (MAP004) instead of being taken for an import.
#[test]
fn a_single_administrative_document_takes_its_direction_from_box_1() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let kind = |bgm: &str| {
        let mapped = map(text
            .replacen("BGM+830+", &format!("BGM+{bgm}+"), 1)
            .as_bytes());
        (
            mapped[0]
                .canonical
                .as_ref()
                .and_then(|d| d["kind"].as_str().map(str::to_owned)),
            mapped[0]
                .issues
                .iter()
                .any(|i| i.code == Code::MappingIncomplete),
        )
    };
    assert_eq!(kind("960:::IM"), (Some("import".to_owned()), false));
    assert_eq!(kind("960:::EX"), (Some("export".to_owned()), false));
    assert_eq!(kind("960"), (None, true));
    assert_eq!(kind("929"), (Some("import".to_owned()), false));
}

fn mapped_issues(bytes: &[u8]) -> Vec<tradehub::diag::Issue> {
    map(bytes).into_iter().flat_map(|m| m.issues).collect()
}

/// A leg dated by its own DTM (SG2, beside TDT, as the directory's table
/// has it) rather than by its places' (SG3, as IATA's profile does): the
/// times are read from there when the places carry none.
#[test]
fn a_leg_dated_beside_its_transport_keeps_its_times() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__Test1.txt")).unwrap();
    let leg =
        "TDT+20+UA0989+++UA'LOC+125+FRA'DTM+189:1701271725:201'LOC+87+IAD'DTM+232:1701280710:201'";
    assert!(text.contains(leg));
    let moved = text.replacen(
        leg,
        "TDT+20+UA0989+++UA'DTM+189:1701271725:201'LOC+125+FRA'LOC+87+IAD'DTM+232:1701280710:201'",
        1,
    );
    let list = map(moved.as_bytes())[0].canonical.clone().unwrap();
    assert_eq!(list["departure_time"]["iso"], "2017-01-27T17:25");
    assert_eq!(list["legs"][0]["departure_time"]["iso"], "2017-01-27T17:25");
    assert_eq!(list["arrival_time"]["iso"], "2017-01-28T07:10");
    assert_eq!(list["legs"][0]["arrival_time"]["iso"], "2017-01-28T07:10");
    // Nothing of the moved date is reported as unmapped.
    assert!(
        !mapped_issues(moved.as_bytes())
            .iter()
            .any(|i| i.message.contains("1701271725")),
    );
}

/// Mistakes in a mapping file are refused when it is loaded, naming the line.
#[test]
fn mapping_mistakes_name_their_line() {
    let directories = Directories::global();
    let d96b = directories.release("D96B").unwrap().unwrap();
    let head = "format = \"edifact\"\nmessage = \"CUSDEC\"\nrelease = \"D96B\"\ntarget = \"declaration\"\n";
    // (rule, what the error says, the key on the line it names, that line)
    let cases: &[(&str, &str, &str, usize)] = &[
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG99/BGM/C106/1004\"\n",
            "SG99",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG6/BGM/C106/1004\"\n",
            "segment BGM is not at this level",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/1004\"\n",
            "no data element 1004",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/9999\"\n",
            "no component 9999",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG6/NAD[3035=ZZZZ]/C082/3039\"\n",
            "\"ZZZZ\" is not a code of 3035",
            "from",
            8,
        ),
        // Another agency's code is allowed only written `~CODE`, only in
        // a composite with a code list agency (3055: BGM C002 has one),
        // and only when the UN list does not have it.
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM[C002.1001=V]/C106/1004\"\n",
            "\"V\" is not a code of 1001 (Document/message name, coded) in D96B (another agency's code is written ~CODE)",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM[C002.1001=~929]/C106/1004\"\n",
            "\"929\" is a code of 1001 (Document/message name, coded) in D96B: write it without ~",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG6/NAD[3035=~XX]/C082/3039\"\n",
            "~XX marks another agency's code, but the element is not in a composite with a code list agency (3055)",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"nonsense\"\nfrom = \"BGM/C106/1004\"\n",
            "no field \"nonsense\"",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"goods\"\nfrom = \"BGM/C106/1004\"\n",
            "is array",
            "to",
            7,
        ),
        (
            "[[list]]\nto = \"lrn\"\ngroup = \"SG30\"\n",
            "not a list",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\ndistinct = true\n",
            "needs `all = true`",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\nsurprise = 1\n",
            "unknown field `surprise`",
            "surprise",
            9,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\npast = true\n",
            "`past` and `near` are about two-digit years",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\nunit = \"KGM\"\n",
            "`unit` is for WCO mappings",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\ngives_way_to = { function = [\"INV\"] }\n",
            "`gives_way_to` is for the WCO writer",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\ncut_to_fit = true\n",
            "`cut_to_fit` is for the WCO writer",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\nfactor = \"2\"\n",
            "`factor` multiplies a number",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG6#0/NAD/C082/3039\"\n",
            "an instance of a group is written SGn#k",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"SG6[3035=ZZZZ]/NAD/C082/3039\"\n",
            "\"ZZZZ\" is not a code of 3035",
            "from",
            8,
        ),
        // Skipped codes: only with `codes`, not translated and skipped at
        // once, not kept and skipped at once.
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004\"\nskip_other = true\n",
            "which this rule has not",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"function\"\nfrom = \"BGM/1225\"\ncodes = { \"9\" = \"original\" }\nskip_codes = [\"9\"]\n",
            "code \"9\" is both translated",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"function\"\nfrom = \"BGM/1225\"\ncodes = { \"9\" = \"original\" }\npass_other = true\nskip_other = true\n",
            "either kept (`pass_other`) or skipped",
            "to",
            7,
        ),
        // `each` lists: a composite the segment has, fields of one
        // occurrence, components of that composite.
        (
            "[[list]]\nto = \"goods\"\ngroup = \"SG30\"\n[[list.each]]\nto = \"packages\"\nfrom = \"CST/C213\"\n",
            "has no composite C213",
            "from",
            11,
        ),
        (
            "[[list]]\nto = \"goods\"\ngroup = \"SG30\"\n[[list.each]]\nto = \"packages\"\nfrom = \"CST/C246\"\n[[list.each.field]]\nto = \"count\"\nfrom = \"7224\"\ntype = \"integer\"\n",
            "no component 7224",
            "from",
            14,
        ),
        (
            "[[list]]\nto = \"goods\"\ngroup = \"SG30\"\n[[list.each]]\nto = \"packages\"\nfrom = \"CST/C246\"\n[[list.each.field]]\nto = \"kind\"\nfrom = \"7361\"\nall = true\n",
            "no all, last, distinct, join or dates",
            "to",
            13,
        ),
        // Ranges of occurrences, `join` and `../` steps.
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FTX/C108/4440#1-3\"\n",
            "needs `all = true` (a list of them) or `join`",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FTX/C108/4440\"\njoin = \" \"\n",
            "`join` needs a range of occurrences",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FTX/C108/4440#1-9\"\njoin = \"\"\n",
            "4440 occurs 5 times here, not 9",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"FTX/C108/4440#3-2\"\njoin = \"\"\n",
            "a range of occurrences is written",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"BGM/C106/1004#1-\"\njoin = \"\"\n",
            "1004 occurs once here from #1 on",
            "from",
            8,
        ),
        (
            "[[field]]\nto = \"transport.containers\"\nfrom = \"FTX/C108/4440#1-2\"\nall = true\njoin = \"\"\n",
            "goes without `all`",
            "to",
            7,
        ),
        (
            "[[field]]\nto = \"lrn\"\nfrom = \"../BGM/C106/1004\"\n",
            "goes up 1 group level(s) from a place 0 deep",
            "from",
            8,
        ),
        (
            "[[list]]\nto = \"goods\"\ngroup = \"SG30\"\n[[list.field]]\nto = \"description\"\nfrom = \"../NAD/C082/3039\"\n",
            "segment NAD is not at this level",
            "from",
            11,
        ),
    ];
    for &(body, fragment, key, line) in cases {
        let text = format!("{head}\n{body}");
        let err = EdifactMapping::compile("test.toml", &text, &d96b, 3).unwrap_err();
        assert!(err.message.contains(fragment), "{body}: {err}");
        // The line named is the offending key's: the path (`from`), the
        // rule as a whole (its `to`), or the unknown field.
        let named = text.lines().nth(err.line.saturating_sub(1) as usize);
        assert_eq!(
            err.line as usize, line,
            "{body}: line {} is {named:?} ({err})",
            err.line
        );
        assert_eq!(
            named.and_then(|l| l.split(" = ").next()),
            Some(key),
            "{body}"
        );
    }
}

/// A leg's departure is its 125 place (last place of call) and its arrival
/// its 87 place (initial arrival) wherever they stand among the routing
/// places (92), which count only where the leg names neither.
#[test]
fn paxlst_departure_and_arrival_prefer_their_own_qualifiers() {
    let text = std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__Test1.txt"))
        .unwrap()
        .replacen("LOC+125+FRA'", "LOC+92+ZRH'LOC+125+FRA'", 1)
        .replacen(
            "DTM+232:1701280710:201'",
            "DTM+232:1701280710:201'LOC+92+JFK'",
            1,
        )
        .replace("UNT+0000152+", "UNT+0000109+");
    let mapped = map(text.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(list["departure"], "FRA", "{list:#}");
    assert_eq!(list["arrival"], "IAD", "{list:#}");
    // Each time is its place's: routing places dated too do not lend their
    // times to the 125 and 87 places (before, the last 232 and the first
    // 189 of the leg were taken, wherever they stood).
    let dated = text
        .replacen("LOC+92+ZRH'", "LOC+92+ZRH'DTM+189:1701271500:201'", 1)
        .replacen("LOC+92+JFK'", "LOC+92+JFK'DTM+232:1701281700:201'", 1)
        .replace("UNT+0000109+", "UNT+0000111+");
    let mapped = map(dated.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    let iso = |v: &serde_json::Value| v["iso"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        (list["departure"].as_str(), iso(&list["departure_time"])),
        (Some("FRA"), "2017-01-27T17:25".to_owned()),
        "{list:#}"
    );
    assert_eq!(
        (list["arrival"].as_str(), iso(&list["arrival_time"])),
        (Some("IAD"), "2017-01-28T07:10".to_owned()),
        "{list:#}"
    );
    let leg = &list["legs"][0];
    assert_eq!(
        (iso(&leg["departure_time"]), iso(&leg["arrival_time"])),
        ("2017-01-27T17:25".to_owned(), "2017-01-28T07:10".to_owned()),
        "{leg:#}"
    );
    // Without 125 and 87 the routing places give the leg's ends.
    let routed = text
        .replacen("LOC+125+FRA'", "", 1)
        .replacen("LOC+87+IAD'", "", 1)
        .replace("UNT+0000109+", "UNT+0000107+");
    let mapped = map(routed.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(list["departure"], "ZRH", "{list:#}");
    assert_eq!(list["arrival"], "JFK", "{list:#}");
}

/// In-transit travellers (3035 DDU passenger, DDT crew member) are marked
/// so: the agency must tell them from those entering the country.
#[test]
fn in_transit_travellers_are_marked() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__apisMessage.txt"))
            .unwrap();
    assert!(text.contains("NAD+FL+++CLARK:MICHAEL'"));
    let text = text
        .replacen("NAD+FL+++CLARK:MICHAEL'", "NAD+DDU+++CLARK:MICHAEL'", 1)
        .replacen("NAD+FL+++CLARK:CHERYL'", "NAD+DDT+++CLARK:CHERYL'", 1);
    let mapped = map(text.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    let travellers = list["travellers"].as_array().unwrap();
    let who = |surname: &str, given: &str| {
        travellers
            .iter()
            .find(|t| t["surname"] == surname && t["given_names"][0] == given)
            .unwrap()
            .clone()
    };
    let (michael, cheryl) = (who("CLARK", "MICHAEL"), who("CLARK", "CHERYL"));
    assert_eq!(
        (&michael["crew"], &michael["in_transit"]),
        (&serde_json::json!(false), &serde_json::json!(true))
    );
    assert_eq!(
        (&cheryl["crew"], &cheryl["in_transit"]),
        (&serde_json::json!(true), &serde_json::json!(true))
    );
    // A crew member's function and a birth country, as coded.
    let mut coded = text
        .replacen("LOC+178+ORD'", "LOC+178+ORD'LOC+180+USA:::BOSTON'", 1)
        .replacen("UNT+33+", "UNT+35+", 1);
    let at = coded.rfind("LOC+179+JFK'").unwrap() + "LOC+179+JFK'".len();
    coded.insert_str(at, "EMP+1+CR1'");
    let mapped = map(coded.as_bytes());
    for value in ["CR1", "USA", "BOSTON"] {
        assert!(
            !mapped[0]
                .issues
                .iter()
                .any(|i| i.code == tradehub::diag::Code::MappingUnmapped
                    && i.message.contains(&format!("\"{value}\""))),
            "{value}: {:#?}",
            mapped[0].issues
        );
    }
    let list = mapped[0].canonical.as_ref().unwrap();
    let cheryl = list["travellers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["given_names"][0] == "CHERYL")
        .unwrap();
    assert_eq!(cheryl["crew_function"], "CR1", "{cheryl:#}");
    assert_eq!(cheryl["birth_country"], "USA", "{cheryl:#}");
    assert_eq!(cheryl["birth_place"], "BOSTON", "{cheryl:#}");
    // Travellers who enter the country carry no mark.
    let plain =
        std::fs::read_to_string(root().join("fixtures/edifact/corpus/gtas__apisMessage.txt"))
            .unwrap();
    let mapped = map(plain.as_bytes());
    let travellers = mapped[0].canonical.as_ref().unwrap()["travellers"].clone();
    assert_eq!(travellers.as_array().map(Vec::len), Some(2));
    assert!(
        travellers
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("in_transit").is_none())
    );
}

/// An amount given without its currency is in the reference currency
/// (UNCL 6347 2, "the currency applicable to amounts stated") of the CUX
/// that follows its MOA (CUSDEC D.96B: SG8 MOA-SG9 CUX-DTM for the
/// declaration, SG33 MOA-SG34 CUX-DTM for an item). A currency the MOA
/// gives itself comes first; a CUX that says something else is then
/// reported unread, never taken, and one that says the same is read.
#[test]
fn an_amount_without_its_currency_takes_the_reference_currency_of_its_cux() {
    let header = "MOA+39:125000.50:USD'";
    let item = "MOA+123:50001.25:USD'";
    let with = |header_to: &str, item_to: &str, extra: usize| {
        first_cusdec_with(&[(header, header_to), (item, item_to)], extra)
    };

    // Currencies only in the CUX groups: taken from them.
    let mapped = with(
        "MOA+39:125000.50'\nCUX+2:EUR:4'",
        "MOA+123:50001.25'\nCUX+2:JPY'",
        2,
    );
    let d = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(d["totals"]["invoice"]["currency"], "EUR", "{d:#}");
    assert_eq!(d["totals"]["invoice"]["value"], "125000.50");
    assert_eq!(d["goods"][0]["statistical_value"]["currency"], "JPY");
    assert_eq!(d["goods"][1]["statistical_value"]["currency"], "USD");
    assert!(
        mapped[0].issues.iter().all(|i| !i.is_error()),
        "{:#?}",
        mapped[0].issues
    );
    // The CUX is read where its currency is used, and located there.
    let at = mapped[0]
        .provenance
        .get("/totals/invoice/currency")
        .expect("provenance of the invoice currency");
    assert_eq!(at.tag.as_deref(), Some("CUX"), "{at:?}");

    // A CUX whose C504 is not the reference currency (6347 3, target)
    // gives amounts no currency: the goods item is incomplete (MAP004).
    let mapped = with("MOA+39:125000.50:USD'", "MOA+123:50001.25'\nCUX+3:JPY'", 1);
    assert!(
        mapped[0]
            .issues
            .iter()
            .any(|i| i.code == Code::MappingIncomplete),
        "{:#?}",
        mapped[0].issues
    );

    // The MOA's own currency wins; the CUX's other currency is reported.
    let mapped = with("MOA+39:125000.50:USD'\nCUX+2:EUR'", item, 1);
    let d = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(d["totals"]["invoice"]["currency"], "USD");
    assert!(
        mapped[0]
            .issues
            .iter()
            .any(|i| i.code == Code::MappingUnmapped && i.message.contains("EUR")),
        "{:#?}",
        mapped[0].issues
    );

    // A CUX that says the MOA's currency again says nothing new: nothing
    // of it is reported, at the declaration or the goods item.
    let mapped = with(
        "MOA+39:125000.50:USD'\nCUX+2:USD'",
        "MOA+123:50001.25:USD'\nCUX+2:USD'",
        2,
    );
    let d = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(d["totals"]["invoice"]["currency"], "USD");
    assert_eq!(d["goods"][0]["statistical_value"]["currency"], "USD");
    let cux: Vec<_> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.location.tag.as_deref() == Some("CUX"))
        .collect();
    assert!(cux.is_empty(), "{cux:#?}");
}

/// CUX holds two C504s, each saying by its 6347 what it is: the reference
/// currency may stand second, after the target currency.
#[test]
fn the_reference_currency_may_be_the_second_of_a_cux() {
    let mapped = first_cusdec_with(
        &[
            (
                "MOA+39:125000.50:USD'",
                "MOA+39:125000.50'\nCUX+3:EUR:4+2:USD:4+1.1'",
            ),
            ("MOA+123:50001.25:USD'", "MOA+123:50001.25'\nCUX++2:JPY:4'"),
        ],
        2,
    );
    let d = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(d["totals"]["invoice"]["currency"], "USD", "{d:#}");
    assert_eq!(d["goods"][0]["statistical_value"]["currency"], "JPY");
    // The target currency and the rate are said, not mapped: reported.
    assert!(
        mapped[0]
            .issues
            .iter()
            .any(|i| i.code == Code::MappingUnmapped && i.message.contains("EUR")),
        "{:#?}",
        mapped[0].issues
    );
    assert!(
        mapped[0].issues.iter().all(|i| !i.is_error()),
        "{:#?}",
        mapped[0].issues
    );
}

/// The first message of `cusdec-d96b-unoc.edi` alone, each `(from, to)`
/// replaced once (`from` must occur once) and its UNT count raised by
/// `added` segments, mapped.
fn first_cusdec_with(changes: &[(&str, &str)], added: usize) -> Vec<Mapped> {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/cusdec-d96b-unoc.edi")).unwrap();
    let mut first = text.split("UNH+2+").next().unwrap().to_owned();
    for (from, to) in changes {
        assert_eq!(first.matches(from).count(), 1, "{from}");
        first = first.replacen(from, to, 1);
    }
    let first = first.replacen("UNT+20+1'", &format!("UNT+{}+1'", 20 + added), 1);
    map(format!("{first}UNZ+1+20261124001'").as_bytes())
}

/// Syntax version 4 writes the occurrences of a repeating composite as
/// repetitions of one element (`COM+a:TE*b:FX`): an `each` list takes
/// every repetition (it read only the first, and reported the others as
/// unmapped).
#[test]
fn an_each_list_takes_every_repetition_of_syntax_4() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d05b-iata-guideline.edi"))
            .unwrap();
    assert!(text.starts_with("UNA:+.? '"));
    let com = "COM+703-555-1212:TE'";
    assert_eq!(text.matches(com).count(), 1);
    // The list with its reporter's COM replaced (repetition separator `*`
    // advised): the contacts mapped and the issues located at the COM.
    let with_com = |replacement: &str| {
        let changed = text
            .replacen("UNA:+.? '", "UNA:+.?*'", 1)
            .replacen(com, replacement, 1);
        let mapped = map(changed.as_bytes());
        let contacts = mapped[0].canonical.as_ref().unwrap()["reporter"]["contacts"].clone();
        let at_com: Vec<_> = mapped[0]
            .issues
            .iter()
            .filter(|i| i.location.tag.as_deref() == Some("COM"))
            .cloned()
            .collect();
        (contacts, at_com)
    };
    let (contacts, unread) = with_com("COM+703-555-1212:TE*703-555-4545:FX*ops@example.org:EM'");
    assert_eq!(
        contacts,
        serde_json::json!([
            {"number": "703-555-1212", "channel": "TE"},
            {"number": "703-555-4545", "channel": "FX"},
            {"number": "ops@example.org", "channel": "EM"}
        ])
    );
    // Nothing of the COM is left unread.
    assert!(unread.is_empty(), "{unread:#?}");
    // A repetition with one component empty gives what it has.
    let (contacts, _) = with_com("COM+703-555-1212:TE*703-555-4545:FX*:EM'");
    assert_eq!(
        contacts,
        serde_json::json!([
            {"number": "703-555-1212", "channel": "TE"},
            {"number": "703-555-4545", "channel": "FX"},
            {"channel": "EM"}
        ])
    );
}

/// A travel document's dates: its expiry (2005 36) as likely past as
/// future, a two-digit year the one nearest today (`560218` was 1956 by
/// the fixed pivot), and its issue date (182), which was MAP001, the
/// latest year not after today.
#[test]
fn a_travel_documents_expiry_is_near_and_its_issue_date_is_past() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d05b-iata-guideline.edi"))
            .unwrap();
    let doc = "DTM+36:150218'";
    assert_eq!(text.matches(doc).count(), 1);
    let text = text
        .replacen(doc, "DTM+36:560218'DTM+182:460219'", 1)
        .replacen("UNT+22+", "UNT+23+", 1);
    let mapped = map(text.as_bytes());
    let traveller = &mapped[0].canonical.as_ref().unwrap()["travellers"][0];
    let document = &traveller["travel_document"];
    assert_eq!(document["expires"]["iso"], "2056-02-18", "{traveller}");
    assert_eq!(document["issued"]["iso"], "1946-02-19", "{traveller}");
    assert!(
        mapped[0]
            .issues
            .iter()
            .all(|i| i.location.tag.as_deref() != Some("DTM")),
        "{:#?}",
        mapped[0].issues
    );
}

/// A traveller's documents (each SG5) are listed in message order, and the
/// travel document is the first that is not a visa (DOC C002 1001 V, IATA
/// code list 3055 111): a visa listed before the passport does not take
/// its place or lend it its dates.
#[test]
fn a_visa_before_the_passport_is_listed_but_not_the_travel_document() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d05b-iata-guideline.edi"))
            .unwrap();
    let passport = "DOC+P:110:111+123456789'";
    assert_eq!(text.matches(passport).count(), 1);
    let text = text
        .replacen(
            passport,
            &format!("DOC+V:110:111+VISA4711'DTM+36:270101'LOC+91+KOR'{passport}"),
            1,
        )
        .replacen("UNT+22+", "UNT+25+", 1);
    let mapped = map(text.as_bytes());
    let traveller = &mapped[0].canonical.as_ref().unwrap()["travellers"][0];
    let document = &traveller["travel_document"];
    assert_eq!(document["code"], "P", "{traveller}");
    assert_eq!(document["reference"], "123456789", "{traveller}");
    assert_eq!(document["issuer"], "USA", "{traveller}");
    let documents = traveller["documents"].as_array().unwrap();
    let listed: Vec<(&str, &str)> = documents
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap(),
                d["reference"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("V", "VISA4711"), ("P", "123456789")]);
    assert_eq!(documents[0]["expires"]["iso"], "2027-01-01");
    assert_eq!(documents[0]["issuer"], "KOR");
    assert!(
        document
            .get("expires")
            .is_none_or(|e| e["iso"] != "2027-01-01"),
        "{traveller}"
    );
    // Every value of both documents was read.
    assert!(
        mapped[0]
            .issues
            .iter()
            .all(|i| i.code != Code::MappingUnmapped),
        "{:#?}",
        mapped[0].issues
    );

    // A traveller with only a visa has no travel document, and the visa is
    // still listed.
    let only_visa = text
        .replacen(passport, "", 1)
        .replacen("DTM+36:150218'", "", 1);
    let only_visa = only_visa
        .replacen("LOC+91+USA'", "", 1)
        .replacen("UNT+25+", "UNT+22+", 1);
    let mapped = map(only_visa.as_bytes());
    let traveller = &mapped[0].canonical.as_ref().unwrap()["travellers"][0];
    assert!(traveller.get("travel_document").is_none(), "{traveller}");
    assert_eq!(traveller["documents"].as_array().unwrap().len(), 1);
}

/// A message with more bad values than the mapping records (1,000): the
/// first thousand issues are kept in order and one EDI106 error counts the
/// rest (it was one issue per value, stored with the declaration), so a damaged message of many values gives a bounded report that
/// still says it failed.
#[test]
fn a_message_of_many_bad_values_gets_a_bounded_report() {
    let mut body = vec![
        "UNH+1+CUSDEC:D:96B:UN".to_owned(),
        "BGM+929+LRN-MANY-BAD+9".into(),
        "NAD+DT+1234567890::ZZZ".into(),
        "UNS+D".into(),
    ];
    // Two amounts a goods item whose decimal mark is not the
    // interchange's (`,` where UNA says `.`): MAP002 each.
    for i in 1..=700 {
        body.push(format!("CST+{i}+901890"));
        body.push("MEA+AAE+G+KGM:1,5".into());
        body.push("MOA+123:1,25:USD".into());
    }
    body.push("UNS+S".into());
    body.push(format!("UNT+{}+1", body.len() + 1));
    let mut text =
        String::from("UNA:+.? 'UNB+UNOC:3+KRBROKER01:ZZZ+TRADEHUB:ZZZ+261124:1030+MANYBAD'");
    for s in body {
        text.push_str(&s);
        text.push('\'');
    }
    text.push_str("UNZ+1+MANYBAD'");
    let mapped = map(text.as_bytes());
    assert_eq!(mapped.len(), 1);
    let issues = &mapped[0].issues;
    // The cap's count, then what the mapping found of the whole (the
    // amounts it could not take leave the declaration incomplete).
    assert_eq!(issues.len(), 1002, "{:#?}", &issues[999..]);
    assert_eq!(issues[1001].code, Code::MappingIncomplete);
    let bad = issues[..1000]
        .iter()
        .filter(|i| i.code == Code::MappingValueInvalid)
        .count();
    assert_eq!(bad, 1000, "the first thousand are the bad values, in order");
    assert_eq!(
        issues[0].location.message_segment,
        Some(6),
        "{:?}",
        issues[0]
    );
    assert_eq!(issues[0].location.tag.as_deref(), Some("MEA"));
    let last = &issues[1000];
    assert_eq!(last.code, Code::TooManyIssues);
    assert_eq!(last.severity, Severity::Error, "errors were left out");
    assert_eq!(last.location.message.as_deref(), Some("1"));
    assert!(
        last.message
            .starts_with("400 further mapping issue(s) not recorded (400 error(s)"),
        "{}",
        last.message
    );
}

/// A traveller of the API guideline's list: every RFF is one of its
/// references, in order (only the first was read, and the others had no
/// place in the table); the seat is the SEA reference (a D.11A code, named
/// `SEA@D11A` in the mapping); the bag count is MEA CT's value and the
/// weight MEA WT's in kilograms, while a weight in pounds is reported, not
/// converted or dropped; the address gives street lines, city, county,
/// postcode and country as sent.
#[test]
fn a_paxlst_traveller_has_every_reference_the_seat_bags_and_address() {
    let bytes =
        std::fs::read(root().join("fixtures/edifact/ok/paxlst-d02b-iata-references.edi")).unwrap();
    let mapped = map(&bytes);
    let list = mapped[0].canonical.as_ref().unwrap();
    let jane = &list["travellers"][0];
    assert_eq!(
        jane["references"],
        serde_json::json!([
            {"code": "AVF", "value": "ABC123"},
            {"code": "ABO", "value": "BA0117001"},
            {"code": "SEA", "value": "14C"},
            {"code": "CR", "value": "BA12345678"}
        ])
    );
    assert_eq!(jane["reservation"], "ABC123");
    assert_eq!(jane["seat"], "14C");
    assert_eq!(jane["baggage_pieces"], 2);
    assert_eq!(jane["baggage_weight_kg"], "31.5");
    assert_eq!(
        jane["address"],
        serde_json::json!({
            "street": "235 WESTERN ROAD SUITE 203",
            "city": "SLEAFORD",
            "region_name": "LINCS",
            "postcode": "PE22 4T5",
            "country": "GBR"
        })
    );
    assert_eq!(
        jane["contacts"],
        serde_json::json!([{"number": "44 7700 900123", "channel": "TE"}])
    );
    // The reporter's telephone and fax, two COM element positions as the
    // guide writes them: both are contacts.
    assert_eq!(
        list["reporter"]["contacts"],
        serde_json::json!([
            {"number": "0044 20 7946 0000", "channel": "TE"},
            {"number": "0044 20 7946 0001", "channel": "FX"}
        ])
    );
    let john = &list["travellers"][1];
    assert_eq!(john["seat"], "14D");
    // GEI 4 174 (a D.11A code): the carrier did not verify the data; FTX
    // BAG: runs of bag tags, the first number and how many follow.
    assert_eq!(john["verified"], false);
    assert!(jane.get("verified").is_none(), "{jane}");
    assert_eq!(
        john["bag_tags"],
        serde_json::json!([
            {"first": "BA123456", "count": 2},
            {"first": "BA200001"}
        ])
    );
    // 40 LBR at the international pound's exact 0.45359237 kg.
    assert_eq!(john["baggage_weight_kg"], "18.1436948");
    // Nothing is left over.
    let unmapped: Vec<(String, u32)> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.code == Code::MappingUnmapped)
        .map(|i| {
            (
                i.location.tag.clone().unwrap_or_default(),
                i.location.message_segment.unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(unmapped, [], "{:#?}", mapped[0].issues);
    // A code of a later release the mapping file names must be one: a
    // mistyped one, or one of the release itself, names its line.
    let d02b = Directories::global().release("D02B").unwrap().unwrap();
    let text = std::fs::read_to_string(root().join("mappings/edifact/D02B/PAXLST.toml")).unwrap();
    assert!(text.contains("SEA@D11A"));
    for (wrong, says) in [
        ("SEX@D11A", "\"SEX\" is not a code of 1153 in D11A either"),
        (
            "AVF@D11A",
            "is a code of 1153 (Reference code qualifier) in D02B: write it without @D11A",
        ),
        ("SEA@D01B", "names a release that is not later than D02B"),
        (
            "SEX@D29B",
            "D29B is not available, and \"SEX\" is not a code of 1153 in any later release",
        ),
        (
            "~SEA@D11A",
            "either another agency's (~) or a later release's (@)",
        ),
    ] {
        let err = EdifactMapping::compile("p.toml", &text.replace("SEA@D11A", wrong), &d02b, 4)
            .unwrap_err();
        assert!(err.message.contains(says), "{wrong}: {err}");
        assert_eq!(
            err.line,
            text.lines().position(|l| l.contains("SEA@D11A")).unwrap() + 1,
            "{err}"
        );
    }
    // A release that is not available, where a later one that is has the
    // code: the code stands (the file need not name the very release a
    // deployment's directories hold).
    EdifactMapping::compile("p.toml", &text.replace("SEA@D11A", "SEA@D29B"), &d02b, 4).unwrap();
}

/// An integer larger than its canonical field holds (a bag count of 70000
/// for a u16, a CNT total beyond u32) is refused where it stands (MAP002,
/// as a value that is no whole number is), and the rest of the list is
/// mapped: before, the typed object failed whole (MAP004) and every
/// traveller was lost.
#[test]
fn an_integer_too_large_for_its_field_is_refused_alone() {
    let text =
        std::fs::read_to_string(root().join("fixtures/edifact/ok/paxlst-d02b-iata-references.edi"))
            .unwrap();
    let big = text.replacen("MEA+CT++:2'", "MEA+CT++:70000'", 1).replacen(
        "CNT+42:2'",
        "CNT+42:99999999999'",
        1,
    );
    let mapped = map(big.as_bytes());
    let list = mapped[0].canonical.as_ref().unwrap();
    assert_eq!(list["travellers"].as_array().unwrap().len(), 2);
    assert!(list["travellers"][0].get("baggage_pieces").is_none());
    assert!(list.get("passenger_count").is_none());
    let refused: Vec<(String, String)> = mapped[0]
        .issues
        .iter()
        .filter(|i| i.is_error())
        .map(|i| {
            (
                i.code.as_str().to_owned(),
                i.location.tag.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        [
            ("MAP002".to_owned(), "CNT".to_owned()),
            ("MAP002".to_owned(), "MEA".to_owned())
        ],
        "{:#?}",
        mapped[0].issues
    );
    assert!(
        mapped[0].issues[1].message.contains("up to 65535"),
        "{}",
        mapped[0].issues[1].message
    );
}

/// A goods item's net mass is the goods without any packing (WCO 128, TDED
/// 6048): MEA 6313 AAF net net weight, else N actual net weight, whatever
/// order they come in. AAL, net weight with the packing of a retail sale,
/// is another mass: reported as unmapped, not taken as the net mass (it
/// was, and the first of the three in the message won).
#[test]
fn net_mass_is_the_net_net_weight() {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/edifact/ok/cusdec-d96b-medical-import.edi"),
    )
    .unwrap();
    let with = |meas: &[&str]| {
        let edited = text.replacen(
            "MEA+AAE+G+KGM:1001.5'",
            &format!("MEA+AAE+G+KGM:1001.5'{}", meas.join("")),
            1,
        );
        let edited = edited.replacen("UNT+20+1'", &format!("UNT+{}+1'", 20 + meas.len()), 1);
        let mapped = map(edited.as_bytes());
        let m = &mapped[0];
        let net = m.canonical.as_ref().unwrap()["goods"][0]["net_mass_kg"].clone();
        let unmapped: Vec<String> = m
            .issues
            .iter()
            .filter(|i| i.code == Code::MappingUnmapped)
            .map(|i| i.message.clone())
            .collect();
        (net, unmapped)
    };
    let (net, unmapped) = with(&["MEA+AAE+AAL+KGM:900'", "MEA+AAE+AAF+KGM:800'"]);
    assert_eq!(net, "800");
    assert!(
        unmapped
            .iter()
            .any(|m| m.contains("\"AAL\"") || m.contains("\"900\"")),
        "{unmapped:?}"
    );
    let (net, _) = with(&["MEA+AAE+AAF+KGM:800'", "MEA+AAE+N+KGM:850'"]);
    assert_eq!(net, "800");
    let (net, unmapped) = with(&["MEA+AAE+N+KGM:850'"]);
    assert_eq!(net, "850");
    assert!(unmapped.is_empty(), "{unmapped:?}");
    let (net, unmapped) = with(&["MEA+AAE+AAL+KGM:900'"]);
    assert_eq!(net, serde_json::Value::Null);
    assert!(!unmapped.is_empty());
}
