//! Service segments — the envelope (UNB, UNG, UNE, UNZ) and those inside
//! messages (UNH, UNT, UNS, UGH, UGT) — as ISO
//! 9735 defines them (part 2 for syntax version 4, the 1988 edition and its
//! amendment for versions 1 to 3). They are not part of any UNTDID directory,
//! so they are written here from the standard; the machine-readable service
//! directories referenced in the project's notes (staedi's v3/v4 schemas)
//! agree with every status and representation below.

use super::{
    Component, ElementDef, ElementKind, Format, FormatClass, MessageDef, Node, SegmentDef, Status,
};

const M: Status = Status::Mandatory;
const C: Status = Status::Conditional;

fn f(class: FormatClass, variable: bool, max: u16) -> Format {
    Format {
        class,
        min: if variable { 0 } else { max },
        max,
    }
}

fn an(max: u16) -> Format {
    f(FormatClass::AlphaNumeric, true, max)
}

fn n(max: u16) -> Format {
    f(FormatClass::Numeric, true, max)
}

fn simple(id: &str, name: &str, status: Status, format: Format) -> ElementDef {
    ElementDef {
        id: id.into(),
        name: name.into(),
        status,
        max: 1,
        kind: ElementKind::Simple(format),
        coded: false,
    }
}

fn composite(
    id: &str,
    name: &str,
    status: Status,
    parts: &[(&str, &str, Status, Format)],
) -> ElementDef {
    ElementDef {
        id: id.into(),
        name: name.into(),
        status,
        max: 1,
        kind: ElementKind::Composite(
            parts
                .iter()
                .map(|&(id, name, status, format)| Component {
                    id: id.into(),
                    name: name.into(),
                    status,
                    format,
                    coded: false,
                })
                .collect(),
        ),
        coded: false,
    }
}

/// The definition of a service segment that may stand inside a message,
/// for a syntax version (1 to 4).
pub fn segment(tag: &str, syntax_version: u8) -> Option<SegmentDef> {
    let v4 = syntax_version >= 4;
    let elements = match tag {
        "UNH" => {
            let mut s009 = vec![
                ("0065", "Message type", M, an(6)),
                ("0052", "Message version number", M, an(3)),
                ("0054", "Message release number", M, an(3)),
                (
                    "0051",
                    "Controlling agency, coded",
                    M,
                    an(if v4 { 3 } else { 2 }),
                ),
                ("0057", "Association assigned code", C, an(6)),
            ];
            if v4 {
                s009.push(("0110", "Code list directory version number", C, an(6)));
                s009.push(("0113", "Message type sub-function identification", C, an(6)));
            }
            let mut elements = vec![
                simple("0062", "Message reference number", M, an(14)),
                composite("S009", "MESSAGE IDENTIFIER", M, &s009),
                simple("0068", "Common access reference", C, an(35)),
                composite(
                    "S010",
                    "STATUS OF THE TRANSFER",
                    C,
                    &[
                        ("0070", "Sequence of transfers", M, n(2)),
                        (
                            "0073",
                            "First and last transfer",
                            C,
                            f(FormatClass::Alpha, false, 1),
                        ),
                    ],
                ),
            ];
            if v4 {
                for (id, name, first, first_name, second, second_name) in [
                    (
                        "S016",
                        "MESSAGE SUBSET IDENTIFICATION",
                        "0115",
                        "Message subset identification",
                        "0116",
                        "Message subset version number",
                    ),
                    (
                        "S017",
                        "MESSAGE IMPLEMENTATION GUIDELINE IDENTIFICATION",
                        "0121",
                        "Message implementation guideline identification",
                        "0122",
                        "Message implementation guideline version number",
                    ),
                    (
                        "S018",
                        "SCENARIO IDENTIFICATION",
                        "0127",
                        "Scenario identification",
                        "0128",
                        "Scenario version number",
                    ),
                ] {
                    elements.push(composite(
                        id,
                        name,
                        C,
                        &[
                            (first, first_name, M, an(14)),
                            (second, second_name, C, an(3)),
                            ("0051", "Controlling agency, coded", C, an(3)),
                            ("0118", "Message subset release number", C, an(3)),
                        ],
                    ));
                }
            }
            elements
        }
        "UNB" => {
            let mut s001 = vec![
                (
                    "0001",
                    "Syntax identifier",
                    M,
                    f(FormatClass::Alpha, false, 4),
                ),
                (
                    "0002",
                    "Syntax version number",
                    M,
                    if v4 {
                        an(1)
                    } else {
                        f(FormatClass::Numeric, false, 1)
                    },
                ),
            ];
            let mut s002 = sender_parts(v4);
            let mut s003 = recipient_parts(v4);
            if v4 {
                s001.push((
                    "0080",
                    "Service code list directory version number",
                    C,
                    an(6),
                ));
                s001.push(("0133", "Character encoding, coded", C, an(3)));
                s002.push((
                    "0042",
                    "Interchange sender internal sub-identification",
                    C,
                    an(35),
                ));
                s003.push((
                    "0046",
                    "Interchange recipient internal sub-identification",
                    C,
                    an(35),
                ));
            }
            vec![
                composite("S001", "SYNTAX IDENTIFIER", M, &s001),
                composite("S002", "INTERCHANGE SENDER", M, &s002),
                composite("S003", "INTERCHANGE RECIPIENT", M, &s003),
                s004(v4, M),
                simple("0020", "Interchange control reference", M, an(14)),
                composite(
                    "S005",
                    "RECIPIENT REFERENCE/PASSWORD DETAILS",
                    C,
                    &[
                        ("0022", "Recipient reference/password", M, an(14)),
                        (
                            "0025",
                            "Recipient reference/password qualifier",
                            C,
                            f(FormatClass::AlphaNumeric, false, 2),
                        ),
                    ],
                ),
                simple("0026", "Application reference", C, an(14)),
                simple(
                    "0029",
                    "Processing priority code",
                    C,
                    f(FormatClass::Alpha, false, 1),
                ),
                simple(
                    "0031",
                    "Acknowledgement request",
                    C,
                    f(FormatClass::Numeric, false, 1),
                ),
                simple("0032", "Interchange agreement identifier", C, an(35)),
                simple(
                    "0035",
                    "Test indicator",
                    C,
                    f(FormatClass::Numeric, false, 1),
                ),
            ]
        }
        "UNG" => {
            // Version 4 made everything but the group reference conditional.
            let s = |status: Status| if v4 { C } else { status };
            vec![
                simple("0038", "Message group identification", s(M), an(6)),
                s006(s(M)),
                s007(s(M)),
                s004(v4, s(M)),
                simple("0048", "Group reference number", M, an(14)),
                simple(
                    "0051",
                    "Controlling agency, coded",
                    s(M),
                    an(if v4 { 3 } else { 2 }),
                ),
                composite(
                    "S008",
                    "MESSAGE VERSION",
                    s(M),
                    &[
                        ("0052", "Message version number", M, an(3)),
                        ("0054", "Message release number", M, an(3)),
                        ("0057", "Association assigned code", C, an(6)),
                    ],
                ),
                simple("0058", "Application password", C, an(14)),
            ]
        }
        "UNE" => vec![
            simple("0060", "Group control count", M, n(6)),
            simple("0048", "Group reference number", M, an(14)),
        ],
        "UNZ" => vec![
            simple("0036", "Interchange control count", M, n(6)),
            simple("0020", "Interchange control reference", M, an(14)),
        ],
        "UCI" | "UCM" | "UCF" => {
            let s011 = s011(v4);
            let mut elements = match tag {
                "UCI" => vec![
                    simple("0020", "Interchange control reference", M, an(14)),
                    composite("S002", "INTERCHANGE SENDER", M, &sender_parts(v4)),
                    composite("S003", "INTERCHANGE RECIPIENT", M, &recipient_parts(v4)),
                ],
                "UCM" => {
                    let s009 = segment("UNH", syntax_version)
                        .and_then(|unh| unh.elements.into_iter().nth(1))
                        .map(|mut e| {
                            e.status = if v4 { C } else { M };
                            e
                        });
                    let mut v = vec![simple(
                        "0062",
                        "Message reference number",
                        if v4 { C } else { M },
                        an(14),
                    )];
                    v.extend(s009);
                    v
                }
                _ => {
                    let s = |status: Status| if v4 { C } else { status };
                    vec![
                        simple("0048", "Group reference number", M, an(14)),
                        s006(s(M)),
                        s007(s(M)),
                    ]
                }
            };
            elements.push(simple("0083", "Action, coded", M, an(3)));
            elements.push(simple("0085", "Syntax error, coded", C, an(3)));
            elements.push(simple(
                if v4 { "0135" } else { "0013" },
                "Service segment tag, coded",
                C,
                an(3),
            ));
            elements.push(s011);
            if v4 {
                if tag == "UCM" {
                    elements.push(simple("0800", "Package reference number", C, an(35)));
                    elements.push(composite(
                        "S020",
                        "REFERENCE IDENTIFICATION",
                        C,
                        &[
                            ("0813", "Reference qualifier", M, an(3)),
                            ("0802", "Reference identification number", M, an(35)),
                        ],
                    ));
                }
                elements.push(simple("0534", "Security reference number", C, an(14)));
                elements.push(simple("0138", "Security segment position", C, n(6)));
            }
            elements
        }
        "UCS" => vec![
            simple("0096", "Segment position in message body", M, n(6)),
            simple("0085", "Syntax error, coded", C, an(3)),
        ],
        "UCD" => {
            let mut s011 = s011(v4);
            s011.status = M;
            vec![simple("0085", "Syntax error, coded", M, an(3)), s011]
        }
        "UNT" => vec![
            simple(
                "0074",
                "Number of segments in a message",
                M,
                n(if v4 { 10 } else { 6 }),
            ),
            simple("0062", "Message reference number", M, an(14)),
        ],
        "UGH" | "UGT" => vec![simple(
            "0087",
            "Anti-collision segment group identification",
            M,
            an(4),
        )],
        "UNS" => vec![simple(
            "0081",
            "Section identification",
            M,
            f(FormatClass::Alpha, false, 1),
        )],
        _ => return None,
    };
    Some(SegmentDef {
        tag: tag.into(),
        name: match tag {
            "UNH" => "MESSAGE HEADER",
            "UNT" => "MESSAGE TRAILER",
            "UNB" => "INTERCHANGE HEADER",
            "UCI" => "INTERCHANGE RESPONSE",
            "UCM" => "MESSAGE/PACKAGE RESPONSE",
            "UCS" => "SEGMENT ERROR INDICATION",
            "UCD" => "DATA ELEMENT ERROR INDICATION",
            "UCF" => "GROUP RESPONSE",
            "UNG" => "GROUP HEADER",
            "UNE" => "GROUP TRAILER",
            "UNZ" => "INTERCHANGE TRAILER",
            "UGH" => "ANTI-COLLISION SEGMENT GROUP HEADER",
            "UGT" => "ANTI-COLLISION SEGMENT GROUP TRAILER",
            _ => "SECTION CONTROL",
        }
        .into(),
        elements,
    })
}

type Part = (&'static str, &'static str, Status, Format);

/// S002 INTERCHANGE SENDER as UNB and UCI share it (UNB adds 0042 in
/// version 4).
fn sender_parts(v4: bool) -> Vec<Part> {
    vec![
        ("0004", "Interchange sender identification", M, an(35)),
        ("0007", "Identification code qualifier", C, an(4)),
        (
            "0008",
            "Interchange sender internal identification",
            C,
            an(if v4 { 35 } else { 14 }),
        ),
    ]
}

/// S003 INTERCHANGE RECIPIENT as UNB and UCI share it (UNB adds 0046 in
/// version 4).
fn recipient_parts(v4: bool) -> Vec<Part> {
    vec![
        ("0010", "Interchange recipient identification", M, an(35)),
        ("0007", "Identification code qualifier", C, an(4)),
        (
            "0014",
            "Interchange recipient internal identification",
            C,
            an(if v4 { 35 } else { 14 }),
        ),
    ]
}

/// S004 DATE AND TIME OF PREPARATION (UNB, UNG): CCYYMMDD from version 4.
fn s004(v4: bool, status: Status) -> ElementDef {
    composite(
        "S004",
        "DATE AND TIME OF PREPARATION",
        status,
        &[
            (
                "0017",
                "Date",
                M,
                f(FormatClass::Numeric, false, if v4 { 8 } else { 6 }),
            ),
            ("0019", "Time", M, f(FormatClass::Numeric, false, 4)),
        ],
    )
}

/// S006 APPLICATION SENDER IDENTIFICATION (UNG, UCF).
fn s006(status: Status) -> ElementDef {
    composite(
        "S006",
        "APPLICATION SENDER IDENTIFICATION",
        status,
        &[
            ("0040", "Application sender identification", M, an(35)),
            ("0007", "Identification code qualifier", C, an(4)),
        ],
    )
}

/// S007 APPLICATION RECIPIENT IDENTIFICATION (UNG, UCF).
fn s007(status: Status) -> ElementDef {
    composite(
        "S007",
        "APPLICATION RECIPIENT IDENTIFICATION",
        status,
        &[
            ("0044", "Application recipient identification", M, an(35)),
            ("0007", "Identification code qualifier", C, an(4)),
        ],
    )
}

/// S011 DATA ELEMENT IDENTIFICATION (0136, the repetition, from version 4).
fn s011(v4: bool) -> ElementDef {
    let mut parts = vec![
        (
            "0098",
            "Erroneous data element position in segment",
            M,
            n(3),
        ),
        ("0104", "Erroneous component data element position", C, n(3)),
    ];
    if v4 {
        parts.push(("0136", "Erroneous data element occurrence", C, n(6)));
    }
    composite("S011", "DATA ELEMENT IDENTIFICATION", C, &parts)
}

/// The CONTRL message (syntax and service report), ISO 9735: UCI, then
/// either SG1 (UCM with SG2 of UCS and UCD) for messages outside groups or
/// SG3 (UCF with SG4 of UCM with SG5 of UCS and UCD) for groups; the
/// nesting as staedi's CONTRL schema has it, the repetition limits as the
/// ISO 9735-11 segment table (and the syntax 3 service directory) give
/// them, where that schema has 999 for every group.
pub fn contrl() -> MessageDef {
    let seg = |tag: &str, status: Status, max: u32| Node::Segment {
        tag: tag.into(),
        status,
        max,
    };
    // Groups 1, 3 and 4 (UCM, UCF) repeat 999999 times, 2 and 5 (UCS)
    // 999 times (ISO 9735-11 and the syntax 3 service directory).
    let group = |number: u16, max: u32, children: Vec<Node>| Node::Group {
        number,
        status: C,
        max,
        children,
    };
    let errors = |number: u16| group(number, 999, vec![seg("UCS", M, 1), seg("UCD", C, 99)]);
    MessageDef {
        kind: "CONTRL".into(),
        profile: None,
        relaxations: Vec::new(),
        nodes: vec![
            seg("UNH", M, 1),
            seg("UCI", M, 1),
            group(1, 999_999, vec![seg("UCM", M, 1), errors(2)]),
            group(
                3,
                999_999,
                vec![
                    seg("UCF", M, 1),
                    group(4, 999_999, vec![seg("UCM", M, 1), errors(5)]),
                ],
            ),
            seg("UNT", M, 1),
        ],
    }
}
