//! Risk lanes: which level of customs control a declaration gets before
//! clearance. The rules of config/risk.toml (HS ranges, origin countries,
//! declaration kinds and functions, item values, a random sample share)
//! raise a declaration from green (cleared on the data) to yellow
//! (documentary check) or red (physical examination); the highest lane of
//! the matching rules wins and every matching rule is given as a reason.

use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::model::{Declaration, DeclarationFunction, DeclarationKind};
use crate::routing::HsRange;

/// The control level of a declaration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Lane {
    /// Cleared on the declared data once permits are granted.
    #[default]
    Green,
    /// Documentary check: cleared once permits are granted, documents kept
    /// for post-clearance audit.
    Yellow,
    /// Physical examination: held after the permits until an officer
    /// releases the goods.
    Red,
}

impl Lane {
    /// The lane named `name` (as [`as_str`](Self::as_str) writes it).
    pub fn parse(name: &str) -> Option<Lane> {
        match name {
            "green" => Some(Lane::Green),
            "yellow" => Some(Lane::Yellow),
            "red" => Some(Lane::Red),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Green => "green",
            Lane::Yellow => "yellow",
            Lane::Red => "red",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    lane: Lane,
    reason: String,
    #[serde(default)]
    kinds: Vec<DeclarationKind>,
    #[serde(default)]
    functions: Vec<DeclarationFunction>,
    #[serde(default)]
    hs: Vec<Spanned<String>>,
    #[serde(default)]
    origins: Vec<Spanned<String>>,
    /// An item whose customs value is at least this much: per currency
    /// (`{ KRW = 100000000, USD = 75000 }`; an item in a currency not
    /// listed is not judged by its value), or one amount for every currency.
    #[serde(default)]
    min_item_value: Option<Spanned<MinValue>>,
    /// Share of otherwise matching declarations selected at random, in
    /// percent (0–100); the draw depends only on the id the declaration is
    /// assessed by (the hub gives its MRN, which its amendments keep), so
    /// it is the same on every instance, every retry and every amendment.
    #[serde(default)]
    sample_percent: Option<u8>,
}

#[derive(Debug, Clone)]
struct Rule {
    id: String,
    lane: Lane,
    reason: String,
    kinds: Vec<DeclarationKind>,
    functions: Vec<DeclarationFunction>,
    hs: Vec<HsRange>,
    origins: Vec<String>,
    min_item_value: Option<MinValue>,
    sample_percent: Option<u8>,
}

/// A risk rule's value threshold.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum MinValue {
    /// Per ISO 4217 currency.
    PerCurrency(std::collections::BTreeMap<String, Decimal>),
    /// The same amount whatever the currency.
    Any(Decimal),
}

impl MinValue {
    /// True when the rule judges amounts in this currency.
    fn judges(&self, amount: &crate::model::Amount) -> bool {
        match self {
            MinValue::Any(_) => true,
            MinValue::PerCurrency(mins) => mins
                .keys()
                .any(|currency| currency.eq_ignore_ascii_case(amount.currency.trim())),
        }
    }

    fn reached(&self, amount: &crate::model::Amount) -> bool {
        match self {
            MinValue::Any(min) => amount.value >= *min,
            MinValue::PerCurrency(mins) => mins
                .iter()
                .find(|(currency, _)| currency.eq_ignore_ascii_case(amount.currency.trim()))
                .is_some_and(|(_, min)| amount.value >= *min),
        }
    }
}

/// The risk rules.
#[derive(Debug, Clone, Default)]
pub struct RiskProfile {
    rules: Vec<Rule>,
}

/// Why the risk rules cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RiskError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The lane of one declaration and the rules that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub lane: Lane,
    /// `rule id: reason` of each matching rule.
    pub reasons: Vec<String>,
}

impl RiskProfile {
    pub fn load(path: &Path) -> Result<RiskProfile, RiskError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RiskError {
            file: name.clone(),
            line: 0,
            message: e.to_string(),
        })?;
        RiskProfile::from_toml_str(&name, &text)
    }

    pub fn from_toml_str(name: &str, text: &str) -> Result<RiskProfile, RiskError> {
        let error = |offset: usize, message: String| RiskError {
            file: name.to_owned(),
            line: crate::mapping::line_of(text, offset),
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
            if r.sample_percent.is_some_and(|p| p > 100) {
                return Err(error(
                    r.id.span().start,
                    format!("rule {:?}: sample_percent is above 100", r.id.get_ref()),
                ));
            }
            let mut hs = Vec::new();
            for range in &r.hs {
                hs.push(HsRange::parse(range.get_ref()).map_err(|m| error(range.span().start, m))?);
            }
            // A code that is not ISO would never match: refused here, not
            // left to pass every declaration by.
            let mut origins = Vec::new();
            for origin in &r.origins {
                let code = origin.get_ref().trim().to_ascii_uppercase();
                if isocountry::CountryCode::for_alpha2(&code).is_err() {
                    return Err(error(
                        origin.span().start,
                        format!(
                            "rule {:?}: origin {:?} is not an ISO 3166-1 alpha-2 country code",
                            r.id.get_ref(),
                            origin.get_ref()
                        ),
                    ));
                }
                origins.push(code);
            }
            // Currency keys are held trimmed and in capitals, as amounts'
            // currencies are compared.
            let mut min_item_value = None;
            if let Some(min) = &r.min_item_value {
                let value = match min.get_ref() {
                    MinValue::Any(v) => MinValue::Any(*v),
                    MinValue::PerCurrency(mins) => {
                        let mut normal = std::collections::BTreeMap::new();
                        for (currency, amount) in mins {
                            let code = currency.trim().to_ascii_uppercase();
                            if iso_currency::Currency::from_code(&code).is_none() {
                                return Err(error(
                                    min.span().start,
                                    format!(
                                        "rule {:?}: min_item_value currency {currency:?} is not an ISO 4217 code",
                                        r.id.get_ref()
                                    ),
                                ));
                            }
                            normal.insert(code, *amount);
                        }
                        MinValue::PerCurrency(normal)
                    }
                };
                min_item_value = Some(value);
            }
            rules.push(Rule {
                id: r.id.into_inner(),
                lane: r.lane,
                reason: r.reason,
                kinds: r.kinds,
                functions: r.functions,
                hs,
                origins,
                min_item_value,
                sample_percent: r.sample_percent,
            });
        }
        Ok(RiskProfile { rules })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The lane of `declaration`, stored under `id` (the id seeds the
    /// random sample).
    pub fn assess(&self, id: &str, declaration: &Declaration) -> Assessment {
        let mut out = Assessment {
            lane: Lane::Green,
            reasons: Vec::new(),
        };
        for rule in &self.rules {
            if !rule.kinds.is_empty() && !declaration.kind.is_some_and(|k| rule.kinds.contains(&k))
            {
                continue;
            }
            if !rule.functions.is_empty() && !rule.functions.contains(&declaration.function) {
                continue;
            }
            let goods_conditions =
                !rule.hs.is_empty() || !rule.origins.is_empty() || rule.min_item_value.is_some();
            let item_matches = declaration.goods.iter().any(|item| {
                let hs_ok = rule.hs.is_empty()
                    || item
                        .hs_code
                        .as_deref()
                        .is_some_and(|hs| rule.hs.iter().any(|r| r.contains(hs)));
                let origin_ok = rule.origins.is_empty()
                    || item
                        .origin
                        .as_deref()
                        .is_some_and(|o| rule.origins.iter().any(|c| c.eq_ignore_ascii_case(o)));
                let value_ok = rule.min_item_value.as_ref().is_none_or(|min| {
                    // The declared value: the customs value, else the
                    // price it is worked out from (HMRC's declarations
                    // give only the price), the first of the two in a
                    // currency the rule judges.
                    [item.customs_value.as_ref(), item.item_price.as_ref()]
                        .into_iter()
                        .flatten()
                        .find(|v| min.judges(v))
                        .is_some_and(|v| min.reached(v))
                });
                hs_ok && origin_ok && value_ok
            });
            if goods_conditions && !item_matches {
                continue;
            }
            if let Some(percent) = rule.sample_percent
                && draw(id, &rule.id) >= u32::from(percent)
            {
                continue;
            }
            out.lane = out.lane.max(rule.lane);
            out.reasons.push(format!("{}: {}", rule.id, rule.reason));
        }
        out
    }
}

/// A number in 0..100 from the declaration id and rule id.
fn draw(id: &str, rule: &str) -> u32 {
    let digest = Sha256::new()
        .chain_update(id.as_bytes())
        .chain_update([0])
        .chain_update(rule.as_bytes())
        .finalize();
    let mut first = [0u8; 4];
    for (slot, byte) in first.iter_mut().zip(digest.iter()) {
        *slot = *byte;
    }
    u32::from_be_bytes(first) % 100
}

#[cfg(test)]
mod tests {
    use super::*;

    fn declaration(hs: &str, origin: &str) -> Declaration {
        let json = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1",
            "goods": [{"sequence": 1, "hs_code": hs, "origin": origin}]
        });
        serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"))
    }

    /// A value threshold per currency judges each item in its own
    /// currency (1,000,000 KRW is about 700 USD, not a high value); an item
    /// in a currency the rule does not list is not judged by its value.
    #[test]
    fn value_thresholds_are_per_currency() {
        let profile = RiskProfile::from_toml_str(
            "t",
            r#"
[[rule]]
id = "high-value-item"
lane = "yellow"
reason = "high value"
min_item_value = { KRW = 100000000, USD = 75000 }
[[rule]]
id = "any"
lane = "red"
reason = "any currency"
min_item_value = 5000000000
"#,
        )
        .unwrap_or_default();
        assert_eq!(profile.len(), 2);
        let valued = |value: &str, currency: &str| {
            let json = serde_json::json!({
                "kind": "import", "function": "original", "lrn": "L1",
                "goods": [{"sequence": 1, "hs_code": "850100",
                           "customs_value": {"value": value, "currency": currency}}]
            });
            let d: Declaration =
                serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"));
            profile.assess("d1", &d).lane
        };
        assert_eq!(valued("1000000", "KRW"), Lane::Green);
        assert_eq!(valued("100000000", "KRW"), Lane::Yellow);
        assert_eq!(valued("75000", "usd"), Lane::Yellow);
        assert_eq!(valued("74999.99", "USD"), Lane::Green);
        assert_eq!(valued("100000000", "VND"), Lane::Green);
        // Keys are read trimmed and in any case, as the codes they meet.
        let spaced = RiskProfile::from_toml_str(
            "t",
            "[[rule]]\nid = \"s\"\nlane = \"red\"\nreason = \"r\"\nmin_item_value = { \" usd \" = 10 }\n",
        )
        .unwrap_or_default();
        let json = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1",
            "goods": [{"sequence": 1, "customs_value": {"value": "11", "currency": "USD"}}]
        });
        let d: Declaration = serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(spaced.assess("d1", &d).lane, Lane::Red);
        assert_eq!(valued("5000000000", "VND"), Lane::Red);
        // A customs value in a currency the rule does not list does not
        // hide an item price in one it does.
        let json = serde_json::json!({
            "kind": "import", "function": "original", "lrn": "L1",
            "goods": [{"sequence": 1, "hs_code": "850100",
                       "customs_value": {"value": "10", "currency": "VND"},
                       "item_price": {"value": "80000", "currency": "USD"}}]
        });
        let d: Declaration = serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(profile.assess("d1", &d).lane, Lane::Yellow);
    }

    #[test]
    fn highest_matching_lane_wins_with_every_reason() {
        let profile = RiskProfile::from_toml_str(
            "t",
            r#"
[[rule]]
id = "weapons"
lane = "red"
reason = "arms"
hs = ["93"]
[[rule]]
id = "origin"
lane = "yellow"
reason = "origin watch"
origins = ["ir"]
"#,
        )
        .unwrap_or_default();
        assert_eq!(profile.len(), 2);
        let a = profile.assess("d1", &declaration("930100", "IR"));
        assert_eq!(a.lane, Lane::Red);
        assert_eq!(a.reasons.len(), 2);
        let b = profile.assess("d1", &declaration("850100", "IR"));
        assert_eq!(b.lane, Lane::Yellow);
        let c = profile.assess("d1", &declaration("850100", "DE"));
        assert_eq!(c.lane, Lane::Green);
        assert!(c.reasons.is_empty());
    }

    #[test]
    fn sample_is_stable_and_near_its_share() {
        let profile = RiskProfile::from_toml_str(
            "t",
            "[[rule]]\nid = \"s\"\nlane = \"red\"\nreason = \"random\"\nsample_percent = 10\n",
        )
        .unwrap_or_default();
        let d = declaration("850100", "DE");
        let red = (0..2000)
            .filter(|i| profile.assess(&format!("id-{i}"), &d).lane == Lane::Red)
            .count();
        assert!((120..=280).contains(&red), "{red} of 2000 selected");
        let first = profile.assess("id-7", &d);
        assert_eq!(first, profile.assess("id-7", &d));
    }

    #[test]
    fn bad_rules_name_their_line() {
        let e = RiskProfile::from_toml_str(
            "risk.toml",
            "[[rule]]\nid = \"a\"\nlane = \"red\"\nreason = \"r\"\nhs = [\"9x\"]\n",
        )
        .err();
        assert_eq!(e.as_ref().map(|e| e.line), Some(5), "{e:?}");
        let e = RiskProfile::from_toml_str(
            "risk.toml",
            "[[rule]]\nid = \"a\"\nlane = \"purple\"\nreason = \"r\"\n",
        );
        assert!(e.is_err());
        // Codes that would never match are refused where they are written.
        for (condition, line, says) in [
            (
                "origins = [\"DE\",\n  \"KOR\"]",
                6,
                "\"KOR\" is not an ISO 3166-1",
            ),
            (
                "min_item_value = { EURO = 5 }",
                5,
                "\"EURO\" is not an ISO 4217",
            ),
        ] {
            let e = RiskProfile::from_toml_str(
                "risk.toml",
                &format!("[[rule]]\nid = \"a\"\nlane = \"red\"\nreason = \"r\"\n{condition}\n"),
            )
            .err();
            assert_eq!(e.as_ref().map(|e| e.line), Some(line), "{e:?}");
            assert!(e.is_some_and(|e| e.message.contains(says)));
        }
    }
}
