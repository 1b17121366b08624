//! The agencies catalogue: the shipped config/agencies.toml loads and keeps
//! its promises, and each kind of bad entry is reported with its code, the
//! agency it is in and its line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;

use tradehub::agency::{AgencyCatalogue, CatalogueError};

const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/agencies.toml");

/// The number after `# <key>:` in the header comment of the shipped file.
fn header_count(text: &str, key: &str) -> usize {
    let prefix = format!("# {key}:");
    let line = text
        .lines()
        .take_while(|line| line.starts_with('#') || line.trim().is_empty())
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("header has no `{prefix}` line"));
    line[prefix.len()..].trim().parse().unwrap()
}

#[test]
fn shipped_catalogue_loads_with_169_agencies() {
    let catalogue = AgencyCatalogue::load(SHIPPED).unwrap();
    assert_eq!(catalogue.len(), 169);
    assert_eq!(catalogue.iter().count(), 169);
    let codes: HashSet<&str> = catalogue.iter().map(|a| a.code.as_str()).collect();
    assert_eq!(codes.len(), 169, "codes are unique");
}

#[test]
fn shipped_queues_are_agency_dot_code() {
    let catalogue = AgencyCatalogue::load(SHIPPED).unwrap();
    let queues: Vec<&str> = catalogue.queues().collect();
    assert_eq!(queues.len(), 169);
    for agency in &catalogue {
        assert_eq!(agency.queue, format!("agency.{}", agency.code));
        assert_eq!(agency.routing_key(), format!("permit.{}", agency.code));
        assert!(queues.contains(&agency.queue.as_str()));
        assert_eq!(catalogue.get(&agency.code), Some(agency));
    }
    assert!(catalogue.get("NO_SUCH").is_none());
}

#[test]
fn shipped_documented_count_matches_header() {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let catalogue = AgencyCatalogue::from_toml_str(&text).unwrap();
    let documented = header_count(&text, "documented");
    let examples = header_count(&text, "examples");
    assert_eq!(catalogue.documented(), documented);
    assert_eq!(documented + examples, 169);
    assert_eq!(catalogue.iter().filter(|a| a.example).count(), examples);
}

#[test]
fn shipped_entries_are_honest() {
    let catalogue = AgencyCatalogue::load(SHIPPED).unwrap();
    for agency in &catalogue {
        // Contacts are placeholders at RFC 2606 `.example` domains.
        assert!(
            agency.contact.ends_with(".example"),
            "{}: contact {}",
            agency.code,
            agency.contact
        );
        assert!(
            !agency.source.trim().is_empty(),
            "{}: no source",
            agency.code
        );
        if agency.example {
            // Placeholders are never chosen by HS chapter and say what they are.
            assert!(agency.hs_chapters.is_empty(), "{}", agency.code);
            assert_eq!(agency.source, "example", "{}", agency.code);
            assert!(agency.name.contains("(example "), "{}", agency.code);
        } else {
            assert_ne!(agency.source, "example", "{}", agency.code);
        }
    }
    assert!(AgencyCatalogue::problems(&std::fs::read_to_string(SHIPPED).unwrap()).is_empty());
}

/// A catalogue of two good entries; `{second}` replaces the second entry.
fn catalogue_with(second: &str) -> String {
    format!(
        r#"# test catalogue
[[agency]]
code = "FIRST"
name = "First agency"
queue = "agency.FIRST"
contact = "permits@first.example"
confirms = ["something"]
hs_chapters = ["01", "97"]
source = "test"

{second}"#
    )
}

const SECOND_OK: &str = r#"[[agency]]
code = "SECOND_2"
name = "Second agency"
name_ko = "둘째"
queue = "agency.SECOND_2"
contact = "permits@second.example"
confirms = ["something else"]
laws = ["Some Act"]
source = "test"
example = true
"#;

fn first_error(second: &str) -> CatalogueError {
    AgencyCatalogue::from_toml_str(&catalogue_with(second)).unwrap_err()
}

#[test]
fn good_catalogue_loads() {
    let catalogue = AgencyCatalogue::from_toml_str(&catalogue_with(SECOND_OK)).unwrap();
    assert_eq!(catalogue.len(), 2);
    assert_eq!(catalogue.documented(), 1);
    let second = catalogue.get("SECOND_2").unwrap();
    assert_eq!(second.name_ko.as_deref(), Some("둘째"));
    assert!(second.hs_chapters.is_empty());
    assert_eq!(
        catalogue.queues().collect::<Vec<_>>(),
        ["agency.FIRST", "agency.SECOND_2"]
    );
}

#[test]
fn duplicate_code_is_reported_on_the_second_entry() {
    let err = first_error(&SECOND_OK.replace("SECOND_2", "FIRST"));
    assert!(
        matches!(&err, CatalogueError::DuplicateCode { code, line: 11, first_line: 2 } if code == "FIRST"),
        "{err:?}"
    );
    assert_eq!(err.code(), "AGY003");
    assert_eq!(err.agency(), Some("FIRST"));
    assert_eq!(err.line(), Some(11));
    assert!(err.to_string().contains("FIRST"));
}

#[test]
fn bad_queue_is_reported() {
    let err =
        first_error(&SECOND_OK.replace("queue = \"agency.SECOND_2\"", "queue = \"agency.SECOND\""));
    assert!(
        matches!(&err, CatalogueError::BadQueue { code, queue, line: 15 } if code == "SECOND_2" && queue == "agency.SECOND"),
        "{err:?}"
    );
    assert_eq!(err.code(), "AGY005");
    assert_eq!(err.agency(), Some("SECOND_2"));
    assert!(err.to_string().contains("SECOND_2"));
}

#[test]
fn bad_code_shapes_are_reported() {
    for bad in ["X", "lower", "WAY_TOO_LONG_1", "DASH-ED", "ÄGY"] {
        let second = SECOND_OK.replace("SECOND_2", bad);
        let err = first_error(&second);
        assert!(
            matches!(&err, CatalogueError::BadCode { code, line: 12 } if code == bad),
            "{bad}: {err:?}"
        );
        assert_eq!(err.code(), "AGY004");
        assert_eq!(err.agency(), Some(bad));
        assert!(err.to_string().contains(bad));
    }
}

#[test]
fn bad_hs_chapters_are_reported() {
    for bad in ["00", "98", "1", "001", "0A", " 1", "٠١"] {
        let second = SECOND_OK.replace(
            "laws = [\"Some Act\"]",
            &format!("hs_chapters = [\"02\", \"{bad}\"]"),
        );
        let err = first_error(&second);
        assert!(
            matches!(&err, CatalogueError::BadHsChapter { code, chapter, line: 18 } if code == "SECOND_2" && chapter == bad),
            "{bad}: {err:?}"
        );
        assert_eq!(err.code(), "AGY008");
        assert_eq!(err.agency(), Some("SECOND_2"));
    }
}

#[test]
fn empty_confirms_is_reported() {
    for empty in ["[]", "[\"  \"]"] {
        let second = SECOND_OK.replace("[\"something else\"]", empty);
        let err = first_error(&second);
        assert!(
            matches!(&err, CatalogueError::EmptyConfirms { code, line: 17 } if code == "SECOND_2"),
            "{empty}: {err:?}"
        );
        assert_eq!(err.code(), "AGY007");
        assert!(err.to_string().contains("SECOND_2"));
    }
}

#[test]
fn empty_name_is_reported() {
    let err = first_error(&SECOND_OK.replace("\"Second agency\"", "\" \""));
    assert!(
        matches!(&err, CatalogueError::EmptyName { code, line: 13 } if code == "SECOND_2"),
        "{err:?}"
    );
    assert_eq!(err.code(), "AGY006");
}

#[test]
fn every_problem_is_listed_not_only_the_first() {
    let second = SECOND_OK
        .replace("queue = \"agency.SECOND_2\"", "queue = \"wrong\"")
        .replace("[\"something else\"]", "[]");
    let third = SECOND_OK.replace("SECOND_2", "FIRST");
    let text = catalogue_with(&format!("{second}\n{third}"));
    let codes: Vec<(&str, Option<String>)> = AgencyCatalogue::problems(&text)
        .iter()
        .map(|p| (p.code(), p.agency().map(str::to_owned)))
        .collect();
    assert_eq!(
        codes,
        [
            ("AGY005", Some("SECOND_2".to_owned())),
            ("AGY007", Some("SECOND_2".to_owned())),
            ("AGY003", Some("FIRST".to_owned())),
        ]
    );
}

#[test]
fn syntax_and_shape_errors_carry_a_line() {
    let err = AgencyCatalogue::from_toml_str("[[agency]]\ncode = \"A\n").unwrap_err();
    assert_eq!(err.code(), "AGY002");
    assert_eq!(err.line(), Some(2));

    // A field the catalogue does not know is a mistake, not silently ignored.
    let err = first_error(&SECOND_OK.replace("example = true", "exampel = true"));
    assert_eq!(err.code(), "AGY002");
    assert!(err.to_string().contains("exampel"), "{err}");
    assert!(err.line().is_some());

    // A missing mandatory field.
    let err = first_error(&SECOND_OK.replace("source = \"test\"\n", ""));
    assert_eq!(err.code(), "AGY002");
    assert!(err.to_string().contains("source"), "{err}");
}

#[test]
fn missing_file_is_an_io_error() {
    let err = AgencyCatalogue::load("no/such/agencies.toml").unwrap_err();
    assert_eq!(err.code(), "AGY001");
    assert_eq!(err.agency(), None);
    assert_eq!(err.line(), None);
}

/// A broken catalogue stops the commands that read it with the file, its
/// AGY code, the line and the reason.
#[test]
fn commands_name_the_file_and_code_of_a_broken_catalogue() {
    let dir = std::env::temp_dir().join(format!("tradehub-agy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("agencies.toml");
    std::fs::write(
        &bad,
        catalogue_with(&SECOND_OK.replace("\"SECOND_2\"", "\"x-1\"")),
    )
    .unwrap();
    let input = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact/ok/cusdec-d96b-unoc.edi");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .arg("route")
        .arg(&input)
        .arg("--agencies")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: AGY004 ", bad.display())) && stderr.contains("line"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `CUSTOMS` is the customs officers' role: as an agency code it would
/// make every desk account created for that agency an officer (every
/// declaration seen, goods released), so the catalogue refuses it.
#[test]
fn the_officers_role_is_not_an_agency_code() {
    let second = SECOND_OK.replace("SECOND_2", "CUSTOMS");
    let err = first_error(&second);
    assert!(
        matches!(&err, CatalogueError::ReservedCode { code, line: 12 } if code == "CUSTOMS"),
        "{err:?}"
    );
    assert_eq!(err.code(), "AGY009");
    assert_eq!(err.agency(), Some("CUSTOMS"));
    assert!(err.to_string().contains("officers' role"), "{err}");
}
