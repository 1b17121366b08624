//! Every message of every vendored UNTDID release is read from the official
//! zips, and the counts agree with each directory's own index.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;

use tradehub::schema::{Directories, ElementKind, FormatClass, Node, Status};

fn vendored() -> Arc<Directories> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid");
    Arc::new(Directories::new(&[dir]))
}

/// Batch messages per release: the number of `XXXXXX_D.nnx` files, which
/// equals the directory's own index (EDMDI1/TRMDI1) less deleted entries.
const EXPECTED: &[(&str, usize)] = &[
    ("D95B", 115),
    ("D96A", 125),
    ("D96B", 136),
    ("D97B", 151),
    ("D00B", 191),
    ("D01B", 194),
    ("D02B", 194),
    ("D03B", 192),
    ("D04B", 192),
    ("D05B", 193),
    ("D11A", 194),
    ("D21B", 195),
];

#[test]
fn every_message_of_every_release_loads() {
    let dirs = vendored();
    let names: Vec<&str> = dirs.available().collect();
    assert_eq!(names.len(), EXPECTED.len(), "{names:?}");
    for &(name, count) in EXPECTED {
        let release = dirs
            .release(name)
            .unwrap()
            .unwrap_or_else(|| panic!("{name} missing"));
        let types: Vec<String> = release.message_types().map(str::to_owned).collect();
        assert_eq!(types.len(), count, "{name}: message files");
        let mut index = release.index().to_vec();
        index.sort();
        index.dedup();
        assert_eq!(index, types, "{name}: index and message files differ");
        assert!(
            release.segment_count() > 100,
            "{name}: {} segments",
            release.segment_count()
        );
        assert!(
            release.code_list_count() > 150,
            "{name}: {} code lists",
            release.code_list_count()
        );
        for kind in &types {
            let def = release
                .message(kind)
                .unwrap_or_else(|e| panic!("{name} {kind}: {e}"))
                .unwrap();
            assert_eq!(
                def.nodes.first().map(Node::trigger),
                Some("UNH"),
                "{name} {kind}"
            );
            assert_eq!(
                def.nodes.last().map(Node::trigger),
                Some("UNT"),
                "{name} {kind}"
            );
            // Every segment of the table is defined in the segment directory
            // (service segments UNH, UNT, UNS by ISO 9735).
            fn check(nodes: &[Node], f: &mut dyn FnMut(&str)) {
                for n in nodes {
                    match n {
                        Node::Segment { tag, .. } => f(tag),
                        Node::Group {
                            children,
                            status: _,
                            ..
                        } => {
                            assert_eq!(children.first().map(Node::status), Some(Status::Mandatory));
                            check(children, f)
                        }
                    }
                }
            }
            check(&def.nodes, &mut |tag| {
                assert!(
                    tag.starts_with("UN")
                        || tag.starts_with("UG")
                        || release.segment(tag).is_some(),
                    "{name} {kind}: segment {tag} not in the segment directory"
                );
            });
        }
    }
}

/// Spot checks against the directory text of D.96B CUSDEC (TRMD
/// CUSDEC_D.96B section 4.3.1; TRSD BGM; UNCL 1001).
#[test]
fn cusdec_d96b_reads_as_published() {
    let dirs = vendored();
    let release = dirs.release("D96B").unwrap().unwrap();
    let def = release.message("CUSDEC").unwrap().unwrap();
    // 0010 UNH .. 0110 FTX at the top, then SG1 (C 99) with RFF M 1.
    let tags: Vec<&str> = def.nodes.iter().take(11).map(Node::trigger).collect();
    assert_eq!(
        tags,
        [
            "UNH", "BGM", "CST", "LOC", "DTM", "GIS", "FII", "MEA", "EQD", "SEL", "FTX"
        ]
    );
    match &def.nodes[11] {
        Node::Group {
            number,
            status,
            max,
            children,
        } => {
            assert_eq!((*number, *status, *max), (1, Status::Conditional, 99));
            assert_eq!(
                children[0],
                Node::Segment {
                    tag: "RFF".into(),
                    status: Status::Mandatory,
                    max: 1
                }
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        def.group_count(),
        50,
        "CUSDEC D.96B has segment groups 1 to 50"
    );
    let bgm = release.segment("BGM").unwrap();
    assert_eq!(bgm.elements.len(), 4);
    assert_eq!(bgm.elements[0].id, "C002");
    match &bgm.elements[0].kind {
        ElementKind::Composite(c) => {
            assert_eq!(c.len(), 4);
            assert_eq!(c[0].id, "1001");
            assert_eq!(
                (c[0].format.class, c[0].format.max),
                (FormatClass::AlphaNumeric, 3)
            );
        }
        other => panic!("{other:?}"),
    }
    let codes = release.codes("1001").unwrap();
    for code in ["1", "830", "929", "998"] {
        assert!(codes.codes.contains(code), "1001 lacks {code}");
    }
    assert!(!codes.codes.contains("Certificate"));
    // 3055 agency codes are a code list; 1004 (document number) is not.
    assert!(release.codes("3055").unwrap().codes.contains("9"));
    assert!(release.codes("1004").is_none());
}

#[test]
fn an_unavailable_release_is_none_not_an_error() {
    assert!(vendored().release("D99Z").unwrap().is_none());
}
