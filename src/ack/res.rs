//! The WCO RES answer to a WCO declaration's validation: 03 rejected with one
//! `Error` per issue (its code as `ValidationCode`, the message and location
//! as `Description`, the element path as a `Pointer` chain), or 02 received
//! when the declaration passed. Acceptance with an MRN (01) is the hub's, after
//! its business checks; this module only answers the format validation.

use crate::diag::Issue;
use crate::timestamp::Timestamp;
use crate::xml::XmlReport;
use crate::xml::response::{
    DeclarationRef, ResponseError, ResponseFunction, WcoResponse, pointers_for_path,
};

/// The longest `Description` the response schema allows (an..512).
const DESCRIPTION_MAX: usize = 512;
/// Most `Error` elements written; a final one says how many were left out.
const ERRORS_MAX: usize = 99;

/// The response to a validated declaration, issued at `issued` with the
/// response's own id `response_id` (an..35).
pub fn for_report(report: &XmlReport, issued: Timestamp, response_id: &str) -> WcoResponse {
    // The errors to list: the recorded ones (the XML011 note of those not
    // recorded is replaced by this answer's own count).
    let errors: Vec<&Issue> = report
        .issues
        .iter()
        .filter(|i| i.is_error() && i.code != crate::diag::Code::XmlTooManyIssues)
        .collect();
    let total = report.error_count();
    let function = if report.valid {
        ResponseFunction::Received
    } else {
        ResponseFunction::Rejected
    };
    let mut response = WcoResponse::new(function, response_id, issued);
    response.declaration = DeclarationRef {
        // A declaration's own reference; another document's (a response
        // sent back) is no LRN of the sender's.
        lrn: report
            .summary
            .functional_reference_id
            .as_deref()
            .filter(|_| report.summary.kind == crate::xml::DocumentKind::Declaration)
            .and_then(lrn_for_res),
        rejected: (!report.valid).then_some(issued),
        ..DeclarationRef::default()
    };
    push_errors(&mut response.errors, &errors, total, "XML011");
    response
}

/// Appends an `Error` for each of `errors`, at most [`ERRORS_MAX`], then
/// one of code `more` saying how many of `total` were not listed (the
/// rest of `errors`, and those counted but not recorded).
pub(crate) fn push_errors(
    out: &mut Vec<ResponseError>,
    errors: &[&Issue],
    total: usize,
    more: &str,
) {
    for issue in errors.iter().take(ERRORS_MAX) {
        out.push(error_for(issue));
    }
    let listed = errors.len().min(ERRORS_MAX);
    let total = total.max(errors.len());
    if total > listed {
        out.push(ResponseError {
            validation_code: more.into(),
            description: Some(format!("{} further errors are not listed", total - listed)),
            pointers: Vec::new(),
        });
    }
}

pub(crate) fn error_for(issue: &Issue) -> ResponseError {
    let (pointers, _unmapped) = issue
        .location
        .path
        .as_deref()
        .map(|path| match foreign_element(&issue.message) {
            // Paths name elements by local name: a foreign element named
            // like a WCO one would be pointed at as that data element.
            Some(local) => pointers_for_path(path_above(path, local)),
            None => pointers_for_path(path),
        })
        .unwrap_or_default();
    let mut description = String::new();
    // A warning (told with an accepting answer) says so first.
    if !issue.is_error() {
        description.push_str("(warning) ");
    }
    if let Some(line) = issue.location.line {
        description.push_str(&format!("line {line}"));
        if let Some(column) = issue.location.column {
            description.push_str(&format!(" column {column}"));
        }
        description.push_str(": ");
    }
    if let Some(path) = &issue.location.path {
        description.push_str(path);
        description.push_str(": ");
    }
    description.push_str(&issue.message);
    ResponseError {
        validation_code: issue.code.as_str().to_owned(),
        // A message may quote bytes of a broken document that XML cannot
        // carry.
        description: Some(text_for_res(&description, DESCRIPTION_MAX)),
        pointers,
    }
}

/// The WCO namespaces whose elements the pointers name (the declaration,
/// the response and their metadata wrapper), without their version.
const WCO_NAMESPACES: [&str; 6] = [
    "urn:wco:datamodel:WCO:DEC-DMS:",
    "urn:wco:datamodel:WCO:RES-DMS:",
    "urn:wco:datamodel:WCO:DocumentMetaData-DMS:",
    "urn:wco:datamodel:WCO:MetaData_DS-DMS:",
    "urn:wco:datamodel:WCO:Declaration_DS:DMS:",
    "urn:wco:datamodel:WCO:Response_DS:DMS:",
];

/// The local name of the element a schema error is about when it is not
/// in a WCO namespace: in another (libxml2 names it `'{namespace}local'`)
/// or in none (`'local'`; every WCO element is qualified).
fn foreign_element(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Element '")?;
    let (name, _) = rest.split_once('\'')?;
    match name.strip_prefix('{') {
        Some(qualified) => {
            let (namespace, local) = qualified.split_once('}')?;
            (!WCO_NAMESPACES.iter().any(|ns| namespace.starts_with(ns))).then_some(local)
        }
        None => Some(name),
    }
}

/// `path` without its last element step when that step is `local` (an
/// attribute step after it goes too), so that the pointers stop at the
/// element the foreign one stands in; the whole path when that step is
/// the root (a declaration sent without its namespace is pointed at as
/// the declaration).
fn path_above<'p>(path: &'p str, local: &str) -> &'p str {
    let trimmed = match path.rsplit_once('/') {
        Some((above, last)) if last.starts_with('@') => above,
        _ => path,
    };
    match trimmed.rsplit_once('/') {
        Some((above, last))
            if !above.trim_start_matches('/').is_empty()
                && (last == local
                    || last.strip_prefix(local).is_some_and(|i| i.starts_with('['))) =>
        {
            above
        }
        _ => path,
    }
}

/// A character XML 1.0 can carry.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// An LRN as a RES can quote it (FunctionalReferenceID, an..35, not
/// blank): none when it holds a character XML cannot carry, since a
/// mangled LRN names no declaration of the sender.
pub(crate) fn lrn_for_res(lrn: &str) -> Option<String> {
    Some(clip(lrn.trim(), 35)).filter(|lrn| !lrn.is_empty() && lrn.chars().all(xml_char))
}

/// Free text for a RES, cut to `max` characters, a character XML cannot
/// carry replaced by U+FFFD (an error's description or an agency's
/// condition may quote anything).
pub(crate) fn text_for_res(text: &str, max: usize) -> String {
    let text: String = text
        .chars()
        .map(|c| if xml_char(c) { c } else { '\u{FFFD}' })
        .collect();
    clip(&text, max)
}

/// `text` cut to at most `max` characters.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => text.get(..at).unwrap_or(text).to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::{Code, Location};

    fn pointed(path: &str, message: &str) -> Vec<(String, Option<String>)> {
        let issue = Issue::error(
            Code::XmlSchemaInvalid,
            Location {
                path: Some(path.into()),
                ..Default::default()
            },
            message,
        );
        error_for(&issue)
            .pointers
            .into_iter()
            .map(|p| (p.document_section_code, p.tag_id))
            .collect()
    }

    #[test]
    fn a_foreign_element_is_not_pointed_at_as_the_wco_one_of_its_name() {
        let path = "/Declaration/TypeCode";
        // The declaration's own TypeCode: 42A with its tag.
        let own = pointed(
            path,
            "Element '{urn:wco:datamodel:WCO:DEC-DMS:2}TypeCode': [facet 'maxLength'] too long",
        );
        assert_eq!(own, [("42A".to_owned(), Some("D013".to_owned()))]);
        // One of another namespace: the declaration, no tag.
        let foreign = pointed(
            path,
            "Element '{urn:other}TypeCode': This element is not expected.",
        );
        assert_eq!(foreign, [("42A".to_owned(), None)]);
        // One in no namespace, or in a WCO namespace that is not one of
        // the declaration's: the same.
        for name in ["TypeCode", "{urn:wco:datamodel:WCO:Other}TypeCode"] {
            let foreign = pointed(
                path,
                &format!("Element '{name}': This element is not expected."),
            );
            assert_eq!(foreign, [("42A".to_owned(), None)], "{name}");
        }
        // A declaration without its namespace: pointed at as the
        // declaration, not at nothing.
        let root = pointed(
            "/Declaration",
            "Element 'Declaration': No matching global declaration available for the validation root.",
        );
        assert_eq!(root, [("42A".to_owned(), None)]);
        // Its attribute, and a repeated one.
        let foreign = pointed(
            "/Declaration/GoodsShipment/TypeCode[2]/@listID",
            "Element '{urn:other}TypeCode', attribute 'listID': not allowed.",
        );
        assert_eq!(foreign.last().map(|p| p.1.clone()), Some(None));
        assert_eq!(foreign.len(), 2, "{foreign:?}");
    }
}
