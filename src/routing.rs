//! Which agencies must confirm a declaration: the rules of
//! config/routing.toml (HS chapter/heading/subheading ranges, declaration
//! kind, procedure, origin, dispatch and destination country, declared
//! documents) evaluated on a canonical declaration, giving one permit
//! request per agency and rule with the goods items it covers. A declaration
//! no rule matches needs no permit.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::agency::AgencyCatalogue;
use crate::model::{Declaration, DeclarationKind};

/// One HS range: codes whose first `len` digits lie between `from` and
/// `to` (`0301-0308`, or a single prefix `85`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HsRange {
    from: String,
    to: String,
}

impl HsRange {
    pub(crate) fn parse(text: &str) -> Result<HsRange, String> {
        let (from, to) = text.split_once('-').unwrap_or((text, text));
        let (from, to) = (from.trim(), to.trim());
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(from) || !digits(to) {
            return Err(format!(
                "HS range {text:?} is not digits (e.g. 85, 0301-0308)"
            ));
        }
        if from.len() != to.len() || ![2, 4, 6, 8, 10].contains(&from.len()) {
            return Err(format!(
                "HS range {text:?}: both ends need the same length of 2, 4, 6, 8 or 10 digits"
            ));
        }
        if from > to {
            return Err(format!("HS range {text:?} runs backwards"));
        }
        Ok(HsRange {
            from: from.to_owned(),
            to: to.to_owned(),
        })
    }

    /// Whether the range may hold `hs`. A code shorter than the range (a
    /// 6-digit subheading against a rule on 10-digit national lines) is
    /// compared on the digits it has: it may be one of the range's codes,
    /// so the rule applies, rather than letting a less precise declaration
    /// skip a confirmation. Below the 6 digits of the HS itself a code is
    /// too coarse to say (a chapter is not one of a heading's codes).
    pub(crate) fn contains(&self, hs: &str) -> bool {
        let hs: String = hs.chars().filter(char::is_ascii_digit).collect();
        if hs.len() < self.from.len() && hs.len() < 6 {
            return false;
        }
        let n = hs.len().min(self.from.len());
        match (hs.get(..n), self.from.get(..n), self.to.get(..n)) {
            (Some(code), Some(from), Some(to)) if n > 0 => code >= from && code <= to,
            _ => false,
        }
    }
}

/// A routing rule as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    agency: Spanned<String>,
    law: String,
    /// What the agency confirms under this rule.
    confirms: String,
    #[serde(default)]
    kinds: Vec<DeclarationKind>,
    #[serde(default)]
    hs: Vec<Spanned<String>>,
    #[serde(default)]
    procedures: Vec<String>,
    #[serde(default)]
    origins: Vec<String>,
    #[serde(default)]
    dispatch: Vec<String>,
    #[serde(default)]
    destinations: Vec<String>,
    /// The rule applies when any of these document codes is declared (on
    /// the declaration or the goods item).
    #[serde(default)]
    documents: Vec<String>,
    /// The rule applies to declarations lodged at these customs offices
    /// (prefix match on the declaration's office: a regional agency office
    /// for the ports it serves).
    #[serde(default)]
    offices: Vec<Spanned<String>>,
    /// The rule applies to goods items that claim one of these duty
    /// regimes or tariff preferences (`DutyTax::preference`, e.g. an
    /// in-quota rate).
    #[serde(default)]
    preferences: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// A checked routing rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub agency: String,
    pub law: String,
    pub confirms: String,
    kinds: Vec<DeclarationKind>,
    hs: Vec<HsRange>,
    procedures: Vec<String>,
    origins: Vec<String>,
    dispatch: Vec<String>,
    destinations: Vec<String>,
    documents: Vec<String>,
    offices: Vec<String>,
    preferences: Vec<String>,
}

/// The routing rules, checked against the agency catalogue.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    rules: Vec<Rule>,
}

/// Why routing rules cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RoutingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// A permit the declaration needs: one agency, one rule, the goods items
/// it covers (empty: the declaration as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PermitPlan {
    pub agency: String,
    pub rule: String,
    pub law: String,
    pub confirms: String,
    pub goods: Vec<u16>,
}

impl Routing {
    /// Reads and checks `path`; every agency must be in `agencies`.
    pub fn load(path: &Path, agencies: &AgencyCatalogue) -> Result<Routing, RoutingError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RoutingError {
            file: name.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        Routing::from_toml_str(&name, &text, agencies)
    }

    /// Parses and checks rules from text (`name` is used in errors).
    pub fn from_toml_str(
        name: &str,
        text: &str,
        agencies: &AgencyCatalogue,
    ) -> Result<Routing, RoutingError> {
        let line = |offset: usize| crate::mapping::line_of(text, offset);
        let error = |offset: usize, message: String| RoutingError {
            file: name.to_owned(),
            line: line(offset),
            message,
        };
        let raw: RawFile = toml::from_str(text)
            .map_err(|e| error(e.span().map_or(0, |s| s.start), e.message().to_owned()))?;
        let mut rules = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in raw.rule {
            if !seen.insert(r.id.get_ref().clone()) {
                return Err(error(
                    r.id.span().start,
                    format!("rule id {:?} is used twice", r.id.get_ref()),
                ));
            }
            if agencies.get(r.agency.get_ref()).is_none() {
                return Err(error(
                    r.agency.span().start,
                    format!(
                        "agency {:?} is not in the agency catalogue",
                        r.agency.get_ref()
                    ),
                ));
            }
            let mut hs = Vec::new();
            for range in &r.hs {
                hs.push(HsRange::parse(range.get_ref()).map_err(|m| error(range.span().start, m))?);
            }
            // A rule on the countries alone (exports to a sanctioned
            // destination) covers every item of the declarations it takes.
            if hs.is_empty()
                && r.documents.is_empty()
                && r.origins.is_empty()
                && r.procedures.is_empty()
                && r.dispatch.is_empty()
                && r.destinations.is_empty()
            {
                return Err(error(
                    r.id.span().start,
                    format!(
                        "rule {:?} has no condition on goods or countries (hs, documents, origins, procedures, dispatch or destinations) and would match every declaration",
                        r.id.get_ref()
                    ),
                ));
            }
            // Office and preference codes compare trimmed and in capitals;
            // a blank one is refused with its line.
            let codes = |list: &[Spanned<String>], blank: &str| {
                list.iter()
                    .map(|code| {
                        let text = code.get_ref().trim().to_ascii_uppercase();
                        if text.is_empty() {
                            Err(error(code.span().start, blank.to_owned()))
                        } else {
                            Ok(text)
                        }
                    })
                    .collect::<Result<Vec<String>, _>>()
            };
            let offices = codes(
                &r.offices,
                "an office code is empty; it would match every customs office",
            )?;
            let preferences = codes(
                &r.preferences,
                "a preference code is empty; no goods item would claim it",
            )?;
            rules.push(Rule {
                id: r.id.into_inner(),
                agency: r.agency.into_inner(),
                law: r.law,
                confirms: r.confirms,
                kinds: r.kinds,
                hs,
                procedures: r.procedures,
                origins: r.origins.iter().map(|c| c.to_ascii_uppercase()).collect(),
                dispatch: r.dispatch.iter().map(|c| c.to_ascii_uppercase()).collect(),
                destinations: r
                    .destinations
                    .iter()
                    .map(|c| c.to_ascii_uppercase())
                    .collect(),
                documents: r.documents,
                offices,
                preferences,
            });
        }
        Ok(Routing { rules })
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The permits a declaration needs, in rule order.
    pub fn route(&self, declaration: &Declaration) -> Vec<PermitPlan> {
        let declared: Vec<&str> = declaration
            .documents
            .iter()
            .filter_map(|d| d.code.as_deref())
            .collect();
        let mut plans = Vec::new();
        for rule in &self.rules {
            if !rule.kinds.is_empty() && !declaration.kind.is_some_and(|k| rule.kinds.contains(&k))
            {
                continue;
            }
            let country = |list: &[String], value: &Option<String>| {
                list.is_empty()
                    || value
                        .as_deref()
                        .is_some_and(|v| list.iter().any(|c| c.eq_ignore_ascii_case(v)))
            };
            if !country(&rule.dispatch, &declaration.dispatch_country)
                || !country(&rule.destinations, &declaration.destination_country)
            {
                continue;
            }
            if !rule.offices.is_empty()
                && !declaration.customs_office.as_deref().is_some_and(|office| {
                    let office = office.trim().to_ascii_uppercase();
                    rule.offices.iter().any(|o| office.starts_with(o.as_str()))
                })
            {
                continue;
            }
            let mut goods = Vec::new();
            for item in &declaration.goods {
                let hs_ok = rule.hs.is_empty()
                    || item
                        .hs_code
                        .as_deref()
                        .is_some_and(|hs| rule.hs.iter().any(|r| r.contains(hs)));
                let procedure_ok = rule.procedures.is_empty()
                    || item
                        .procedure
                        .as_deref()
                        .is_some_and(|p| rule.procedures.iter().any(|x| p.starts_with(x.as_str())));
                let origin_ok = country(&rule.origins, &item.origin);
                let documents_ok = rule.documents.is_empty()
                    || rule.documents.iter().any(|d| {
                        declared.contains(&d.as_str())
                            || item.documents.iter().any(|x| x.code.as_deref() == Some(d))
                    });
                let preference_ok = rule.preferences.is_empty()
                    || item.duties.iter().any(|duty| {
                        duty.preference.as_deref().is_some_and(|p| {
                            let p = p.trim();
                            rule.preferences.iter().any(|x| x.eq_ignore_ascii_case(p))
                        })
                    });
                if hs_ok && procedure_ok && origin_ok && documents_ok && preference_ok {
                    goods.push(item.sequence);
                }
            }
            if !goods.is_empty() {
                plans.push(PermitPlan {
                    agency: rule.agency.clone(),
                    rule: rule.id.clone(),
                    law: rule.law.clone(),
                    confirms: rule.confirms.clone(),
                    goods,
                });
            }
        }
        plans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hs_ranges() {
        let r = HsRange::parse("0301-0308").unwrap_or_else(|_| HsRange {
            from: "x".into(),
            to: "x".into(),
        });
        assert!(r.contains("030211"));
        assert!(r.contains("0308.90"));
        assert!(!r.contains("0309"));
        assert!(!r.contains("03"));
        let chapter = HsRange::parse("85").unwrap_or_else(|_| HsRange {
            from: "x".into(),
            to: "x".into(),
        });
        assert!(chapter.contains("8517620000"));
        // A rule on national 10-digit lines applies to a 6-digit
        // subheading that may be one of them, and not to another.
        let lines = HsRange::parse("8517621000-8517629999").unwrap_or_else(|_| HsRange {
            from: "x".into(),
            to: "x".into(),
        });
        assert!(lines.contains("851762"));
        assert!(lines.contains("85176210"));
        assert!(lines.contains("8517629000"));
        assert!(!lines.contains("851770"));
        assert!(!lines.contains("8517630000"));
        assert!(!lines.contains("8517"));
        assert!(HsRange::parse("85-8").is_err());
        assert!(HsRange::parse("0308-0301").is_err());
        assert!(HsRange::parse("12a").is_err());
        assert!(HsRange::parse("123").is_err());
    }
}
