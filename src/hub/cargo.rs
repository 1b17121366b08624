//! Cargo references: the identifiers under which a mapped message can be
//! tracked (`GET /v1/cargo/{ref}`) — a declaration's LRN, containers,
//! voyage and transport or previous documents; a cargo report's own
//! number, bills of lading, containers and voyage. Pure: canonical JSON in, pairs out.

use std::collections::HashSet;

use serde_json::Value;

/// Kinds of reference, as stored in `cargo_refs.kind`.
pub mod kind {
    pub const LRN: &str = "lrn";
    pub const BILL_OF_LADING: &str = "bill_of_lading";
    pub const CONTAINER: &str = "container";
    pub const VOYAGE: &str = "voyage";
    pub const TRANSPORT_DOCUMENT: &str = "transport_document";
    /// A cargo report's own number (its manifest number, BGM 1004).
    pub const MANIFEST: &str = "manifest";
}

/// The references a mapped message carries, as `(kind, reference)` pairs in
/// the order they first appear, without duplicates or blank values.
/// `target` is the canonical type (`declaration`, `cargo_report`, …);
/// other targets carry none. Values that do not have the canonical shape
/// are skipped, never an error.
pub fn cargo_references(target: &str, canonical: &Value) -> Vec<(String, String)> {
    let mut refs = References::default();
    match target {
        "declaration" => {
            refs.add(kind::LRN, canonical.get("lrn"));
            let transport = canonical.get("transport");
            refs.add_all(kind::CONTAINER, transport.and_then(|t| t.get("containers")));
            refs.add(kind::VOYAGE, transport.and_then(|t| t.get("voyage")));
            let goods_documents = items(canonical.get("goods"))
                .flat_map(|g| items(g.get("documents")))
                .collect::<Vec<_>>();
            for doc in items(canonical.get("documents")).chain(goods_documents) {
                if doc
                    .get("code")
                    .and_then(Value::as_str)
                    .is_some_and(is_transport_document)
                {
                    refs.add(kind::TRANSPORT_DOCUMENT, doc.get("reference"));
                }
            }
            for doc in items(canonical.get("previous_documents")) {
                refs.add(kind::TRANSPORT_DOCUMENT, doc.get("reference"));
            }
        }
        "cargo_report" => {
            refs.add(kind::MANIFEST, canonical.get("reference"));
            refs.add(kind::VOYAGE, canonical.get("voyage"));
            let transport = canonical.get("transport");
            refs.add(kind::VOYAGE, transport.and_then(|t| t.get("voyage")));
            refs.add_all(kind::CONTAINER, transport.and_then(|t| t.get("containers")));
            for equipment in items(canonical.get("equipment")) {
                refs.add(kind::CONTAINER, equipment.get("id"));
            }
            for consignment in items(canonical.get("consignments")) {
                refs.add(kind::BILL_OF_LADING, consignment.get("transport_document"));
                // The master bill a house bill travels under: a declaration
                // may cite either.
                refs.add(kind::BILL_OF_LADING, consignment.get("master_bill"));
                refs.add_all(kind::CONTAINER, consignment.get("containers"));
            }
        }
        _ => {}
    }
    refs.0
}

/// UN/EDIFACT 1001 codes 700–799 are transport documents (705 bill of
/// lading, 740 air waybill, 730 road consignment note, …); administrations
/// that prefix the code with a letter (`N705`) are understood too.
fn is_transport_document(code: &str) -> bool {
    let code = code.trim();
    let digits = code.strip_prefix('N').unwrap_or(code);
    digits.len() == 3 && digits.starts_with('7') && digits.bytes().all(|b| b.is_ascii_digit())
}

fn items(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

/// Pairs in first-seen order; the set keeps large manifests linear.
#[derive(Debug, Default)]
struct References(Vec<(String, String)>, HashSet<(String, String)>);

impl References {
    fn add(&mut self, kind: &str, value: Option<&Value>) {
        let Some(value) = value.and_then(Value::as_str).map(str::trim) else {
            return;
        };
        let pair = (kind.to_owned(), value.to_owned());
        if !value.is_empty() && self.1.insert(pair.clone()) {
            self.0.push(pair);
        }
    }

    fn add_all(&mut self, kind: &str, values: Option<&Value>) {
        for value in items(values) {
            self.add(kind, Some(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mapped messages of a golden file in fixtures/mapping.
    fn golden(name: &str) -> Vec<Value> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/mapping")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str::<Vec<Value>>(&text).unwrap()
    }

    fn references_of(message: &Value) -> Vec<(String, String)> {
        cargo_references(message["target"].as_str().unwrap(), &message["canonical"])
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_sea_manifest_carries_voyage_containers_and_bills_of_lading() {
        let messages = golden("cuscar-d96b-sea-manifest.json");
        assert_eq!(messages.len(), 1);
        // HDMU1234565 appears in the transport and in the first
        // consignment: once in the result.
        assert_eq!(
            references_of(&messages[0]),
            pairs(&[
                ("manifest", "MNF2026112001"),
                ("voyage", "0045E"),
                ("container", "HDMU1234565"),
                ("container", "HDMU7654321"),
                ("bill_of_lading", "HDMUSHAB1234567"),
                ("bill_of_lading", "HDMUSHAB1234568"),
            ])
        );
    }

    #[test]
    fn an_edinet_manifest_carries_containers_per_consignment() {
        // The first two bills travel under the master bill MSCUXP080935
        // (their CNI): it is a reference of the report too, once.
        let messages = golden("cuscar-d96b-edinet.json");
        assert_eq!(
            references_of(&messages[0]),
            pairs(&[
                ("manifest", "201701191AB652"),
                ("voyage", "AB652A"),
                ("bill_of_lading", "MSCUDB592345"),
                ("bill_of_lading", "MSCUXP080935"),
                ("container", "FCIU5956299"),
                ("container", "TCLU5546482"),
                ("bill_of_lading", "MSCUDF421004"),
                ("container", "TGCU0235724"),
                ("bill_of_lading", "MSCUEK569969"),
                ("container", "FCIU2469131"),
            ])
        );
    }

    #[test]
    fn a_declaration_carries_its_lrn_voyage_and_previous_documents() {
        let messages = golden("cusdec-d96b-unoc.json");
        assert_eq!(
            references_of(&messages[0]),
            pairs(&[("lrn", "LRN2026001"), ("voyage", "V2611")])
        );
        assert_eq!(
            references_of(&messages[1]),
            pairs(&[("lrn", "LRN2026002"), ("voyage", "V2611")])
        );
        let messages = golden("cusdec-v4-repetition.json");
        assert_eq!(
            references_of(&messages[0]),
            pairs(&[
                ("lrn", "LRN2026001"),
                ("voyage", "V2611"),
                ("transport_document", "DOC1"),
            ])
        );
    }

    #[test]
    fn a_declaration_carries_containers_and_transport_documents_only() {
        let mut message = golden("cusdec-d96b-unoc.json").remove(0);
        let canonical = &mut message["canonical"];
        canonical["transport"]["containers"] =
            serde_json::json!(["HDMU1234565", " ", "HDMU1234565"]);
        canonical["documents"] = serde_json::json!([
            {"code": "705", "reference": "HDMUSHAB1234567"},
            {"code": "380", "reference": "INV-1"},
            {"code": "N740", "reference": "180-12345675"},
        ]);
        canonical["goods"][0]["documents"] = serde_json::json!([
            {"code": "705", "reference": "HDMUSHAB1234567"},
            {"code": "714", "reference": "HBL-9"},
        ]);
        assert_eq!(
            references_of(&message),
            pairs(&[
                ("lrn", "LRN2026001"),
                ("container", "HDMU1234565"),
                ("voyage", "V2611"),
                ("transport_document", "HDMUSHAB1234567"),
                ("transport_document", "180-12345675"),
                ("transport_document", "HBL-9"),
            ])
        );
    }

    #[test]
    fn other_targets_and_odd_shapes_carry_nothing() {
        let messages = golden("paxlst-d02b-gtas-test1.json");
        assert_eq!(references_of(&messages[0]), vec![]);
        assert_eq!(cargo_references("declaration", &Value::Null), vec![]);
        let odd = serde_json::json!({"lrn": 7, "transport": {"containers": "C1"}, "documents": {}});
        assert_eq!(cargo_references("declaration", &odd), vec![]);
        assert_eq!(cargo_references("", &odd), vec![]);
    }
}
