//! Risk lanes: which level of customs control a declaration gets before
//! clearance. The rules of config/risk.toml (HS ranges, origin countries,
//! declaration kinds and functions, item values, a random sample share)
//! raise a declaration from green (cleared on the data) to yellow
//! (documentary check) or red (physical examination); the highest lane of
//! the matching rules wins and every matching rule is given as a reason.
//!
//! Passenger and crew lists are screened the same way, traveller by
//! traveller (`[[traveller_rule]]`: role, nationality, travel document
//! issuer and expiry, where the journey starts, a watch list of names and
//! birth dates, a random sample): each traveller a rule matches is
//! selected for control on arrival with its lane and reasons, and the list
//! takes the highest lane. What is found is for customs only; the carrier
//! that sent the list is not told (see docs/OPERATIONS.md).

use std::path::Path;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::model::{Declaration, DeclarationFunction, DeclarationKind, PassengerList, Traveller};
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
    #[serde(default)]
    traveller_rule: Vec<RawTravellerRule>,
}

/// A rule on one traveller of a passenger or crew list; every condition
/// given must hold.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTravellerRule {
    id: Spanned<String>,
    lane: Lane,
    reason: String,
    /// `crew`, `passenger`.
    #[serde(default)]
    roles: Vec<Role>,
    /// ISO 3166-1 alpha-2 or alpha-3 codes (lists give either).
    #[serde(default)]
    nationalities: Vec<Spanned<String>>,
    /// Countries that issued the travel document, as `nationalities`.
    #[serde(default)]
    document_issuers: Vec<Spanned<String>>,
    /// The travel document expires before the day of arrival.
    #[serde(default)]
    document_expired: bool,
    /// No travel document given.
    #[serde(default)]
    no_travel_document: bool,
    /// Where the traveller's journey starts: the list's first departure,
    /// any leg's, or the traveller's place of embarkation (airport codes
    /// or UN/LOCODEs as lists give them).
    #[serde(default)]
    departures: Vec<Spanned<String>>,
    /// Names with birth dates: a traveller of that surname born that day.
    #[serde(default)]
    watch: Vec<Spanned<RawWatched>>,
    #[serde(default)]
    sample_percent: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Role {
    Crew,
    Passenger,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatched {
    surname: String,
    /// `YYYY-MM-DD`.
    birth_date: String,
}

#[derive(Debug, Clone)]
struct TravellerRule {
    id: String,
    lane: Lane,
    reason: String,
    roles: Vec<Role>,
    /// Alpha-2, in capitals.
    nationalities: Vec<String>,
    document_issuers: Vec<String>,
    document_expired: bool,
    no_travel_document: bool,
    departures: Vec<String>,
    /// Surname in capitals with single spaces, and the birth date.
    watch: Vec<(String, String)>,
    sample_percent: Option<u8>,
}

/// A country as an ISO 3166-1 alpha-2 code, from alpha-2 or alpha-3 in
/// any case; `None` when it is neither.
fn country_alpha2(code: &str) -> Option<String> {
    let code = code.trim().to_ascii_uppercase();
    match code.len() {
        2 => isocountry::CountryCode::for_alpha2(&code)
            .ok()
            .map(|c| c.alpha2().to_owned()),
        3 => isocountry::CountryCode::for_alpha3(&code)
            .ok()
            .map(|c| c.alpha2().to_owned()),
        _ => None,
    }
}

/// Whether `text` is a day that exists, written `YYYY-MM-DD`.
fn is_iso_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let shape = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                *b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    let number = |at: std::ops::Range<usize>| -> u32 {
        text.get(at).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    if !shape {
        return false;
    }
    crate::model::is_day(number(0..4), number(5..7), number(8..10))
}

/// A name as names are compared: capitals, words split on spaces and
/// hyphens joined by single spaces.
fn name_key(name: &str) -> String {
    name.split(|c: char| c.is_whitespace() || c == '-')
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect::<Vec<_>>()
        .join(" ")
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
    traveller_rules: Vec<TravellerRule>,
}

/// What screening a passenger or crew list found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Screening {
    /// The highest lane of its travellers (green when none is selected).
    pub lane: Lane,
    /// The travellers selected, in list order.
    pub selected: Vec<Selected>,
}

/// One traveller a rule selected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Selected {
    /// 1-based position in the list.
    pub position: usize,
    /// Surname and given names as listed.
    pub name: String,
    pub lane: Lane,
    /// `rule id: reason` of each matching rule.
    pub reasons: Vec<String>,
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
        // Rule ids are unique across both kinds of rule; a sample is a
        // share in percent.
        let mut seen = std::collections::HashSet::new();
        let mut admit = |id: &Spanned<String>, sample_percent: Option<u8>| {
            if !seen.insert(id.get_ref().clone()) {
                return Err(error(
                    id.span().start,
                    format!("rule id {:?} is used twice", id.get_ref()),
                ));
            }
            if sample_percent.is_some_and(|p| p > 100) {
                return Err(error(
                    id.span().start,
                    format!("rule {:?}: sample_percent is above 100", id.get_ref()),
                ));
            }
            Ok(())
        };
        for r in raw.rule {
            admit(&r.id, r.sample_percent)?;
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
        let mut traveller_rules = Vec::new();
        for r in raw.traveller_rule {
            admit(&r.id, r.sample_percent)?;
            let name = r.id.get_ref().clone();
            let countries = |list: &[Spanned<String>], what: &str| {
                list.iter()
                    .map(|c| {
                        country_alpha2(c.get_ref()).ok_or_else(|| {
                            error(
                                c.span().start,
                                format!(
                                    "rule {name:?}: {what} {:?} is not an ISO 3166-1 alpha-2 or alpha-3 country code",
                                    c.get_ref()
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<String>, RiskError>>()
            };
            let conditions = !r.roles.is_empty()
                || !r.nationalities.is_empty()
                || !r.document_issuers.is_empty()
                || r.document_expired
                || r.no_travel_document
                || !r.departures.is_empty()
                || !r.watch.is_empty()
                || r.sample_percent.is_some();
            if !conditions {
                return Err(error(
                    r.id.span().start,
                    format!("rule {name:?} has no condition: it would select every traveller"),
                ));
            }
            if r.no_travel_document && (r.document_expired || !r.document_issuers.is_empty()) {
                return Err(error(
                    r.id.span().start,
                    format!(
                        "rule {name:?}: no_travel_document with a condition on the document can never match"
                    ),
                ));
            }
            let nationalities = countries(&r.nationalities, "nationality")?;
            let document_issuers = countries(&r.document_issuers, "document issuer")?;
            let mut departures = Vec::new();
            for d in &r.departures {
                let code = d.get_ref().trim().to_ascii_uppercase();
                if code.is_empty() {
                    return Err(error(
                        d.span().start,
                        format!("rule {name:?}: an empty departure"),
                    ));
                }
                departures.push(code);
            }
            let mut watch = Vec::new();
            for w in &r.watch {
                let entry = w.get_ref();
                let surname = name_key(&entry.surname);
                let date = entry.birth_date.trim();
                let is_date = is_iso_date(date);
                if surname.is_empty() || !is_date {
                    return Err(error(
                        w.span().start,
                        format!(
                            "rule {name:?}: a watched traveller needs a surname and a birth_date YYYY-MM-DD"
                        ),
                    ));
                }
                watch.push((surname, date.to_owned()));
            }
            traveller_rules.push(TravellerRule {
                id: r.id.into_inner(),
                lane: r.lane,
                reason: r.reason,
                roles: r.roles,
                nationalities,
                document_issuers,
                document_expired: r.document_expired,
                no_travel_document: r.no_travel_document,
                departures,
                watch,
                sample_percent: r.sample_percent,
            });
        }
        Ok(RiskProfile {
            rules,
            traveller_rules,
        })
    }

    /// Rules on travellers (`[[traveller_rule]]`).
    pub fn traveller_rules(&self) -> usize {
        self.traveller_rules.len()
    }

    /// Screens each traveller of `list`, stored under `id` (the id seeds
    /// the random sample, with the traveller's position).
    pub fn screen(&self, id: &str, list: &PassengerList) -> Screening {
        let mut out = Screening {
            lane: Lane::Green,
            selected: Vec::new(),
        };
        if self.traveller_rules.is_empty() {
            return out;
        }
        // The day of arrival: the list's, else its last leg's, else the
        // day of departure (documents are judged against the day the
        // traveller arrives).
        let arrival = list
            .arrival_time
            .as_ref()
            .or_else(|| list.legs.iter().rev().find_map(|l| l.arrival_time.as_ref()))
            .or(list.departure_time.as_ref())
            .and_then(|m| m.iso.get(..10))
            .map(str::to_owned);
        let mut starts: Vec<String> = list.departure.iter().cloned().collect();
        starts.extend(list.legs.iter().filter_map(|l| l.departure.clone()));
        for (n, traveller) in list.travellers.iter().enumerate() {
            let mut lane = Lane::Green;
            let mut reasons = Vec::new();
            for rule in &self.traveller_rules {
                if !rule.matches(traveller, arrival.as_deref(), &starts) {
                    continue;
                }
                if let Some(percent) = rule.sample_percent
                    && draw(&format!("{id}#{}", n + 1), &rule.id) >= u32::from(percent)
                {
                    continue;
                }
                lane = lane.max(rule.lane);
                reasons.push(format!("{}: {}", rule.id, rule.reason));
            }
            if !reasons.is_empty() {
                out.lane = out.lane.max(lane);
                let mut name = traveller.surname.clone();
                for given in &traveller.given_names {
                    name.push(' ');
                    name.push_str(given);
                }
                out.selected.push(Selected {
                    position: n + 1,
                    name,
                    lane,
                    reasons,
                });
            }
        }
        out
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

impl TravellerRule {
    /// Whether every condition of the rule holds for `t`, arriving on the
    /// day `arrival` (`YYYY-MM-DD`) of a journey starting at `starts`.
    fn matches(&self, t: &Traveller, arrival: Option<&str>, starts: &[String]) -> bool {
        let role = if t.crew { Role::Crew } else { Role::Passenger };
        if !self.roles.is_empty() && !self.roles.contains(&role) {
            return false;
        }
        let in_list = |list: &[String], code: Option<&str>| {
            list.is_empty()
                || code
                    .and_then(country_alpha2)
                    .is_some_and(|c| list.contains(&c))
        };
        if !in_list(&self.nationalities, t.nationality.as_deref()) {
            return false;
        }
        let document = t.travel_document.as_ref();
        if !in_list(
            &self.document_issuers,
            document.and_then(|d| d.issuer.as_deref()),
        ) {
            return false;
        }
        if self.no_travel_document && document.is_some() {
            return false;
        }
        if self.document_expired {
            // Expired: it ends before the day of arrival. A document
            // without an expiry, or a list without dates, is not judged.
            let expires = document
                .and_then(|d| d.expires.as_ref())
                .and_then(|m| m.iso.get(..10));
            let expired = matches!((expires, arrival), (Some(e), Some(a)) if e < a);
            if !expired {
                return false;
            }
        }
        if !self.departures.is_empty() {
            let embarked = t.embarkation.iter().chain(starts);
            if !embarked
                .into_iter()
                .any(|p| self.departures.contains(&p.trim().to_ascii_uppercase()))
            {
                return false;
            }
        }
        if !self.watch.is_empty() {
            let surname = name_key(&t.surname);
            let born = t.birth_date.as_ref().and_then(|m| m.iso.get(..10));
            if !self
                .watch
                .iter()
                .any(|(s, b)| *s == surname && born == Some(b.as_str()))
            {
                return false;
            }
        }
        true
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

    fn passenger_list(travellers: serde_json::Value) -> PassengerList {
        let json = serde_json::json!({
            "reference": "R1", "journey": "BA117", "departure": "LHR",
            "arrival": "ICN", "arrival_time": {"iso": "2026-11-29T11:20", "format": "201"},
            "legs": [
                {"departure": "LHR", "arrival": "DXB"},
                {"departure": "DXB", "arrival": "ICN"}
            ],
            "travellers": travellers
        });
        serde_json::from_value(json).unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn screen(rules: &str, list: &PassengerList) -> Vec<(usize, Lane, usize)> {
        let profile =
            RiskProfile::from_toml_str("t", rules).unwrap_or_else(|e| unreachable!("{e}"));
        profile
            .screen("list-1", list)
            .selected
            .iter()
            .map(|s| (s.position, s.lane, s.reasons.len()))
            .collect()
    }

    /// Each condition of a traveller rule, alone: nationality and issuer
    /// compared as countries whatever the alpha form, the document's expiry
    /// against the day of arrival, where the journey starts (any leg, or
    /// the traveller's own embarkation), the role, the watch list by
    /// surname and birth date.
    #[test]
    fn traveller_rules_judge_each_traveller() {
        let list = passenger_list(serde_json::json!([
            {"crew": false, "surname": "Kim", "given_names": ["Minji"], "nationality": "KOR",
             "birth_date": {"iso": "1990-01-02", "format": "101"},
             "travel_document": {"code": "P", "issuer": "KOR",
                                 "expires": {"iso": "2026-11-28", "format": "101"}}},
            {"crew": true, "surname": "O'Neil-Smith", "nationality": "GB",
             "birth_date": {"iso": "1979-03-02", "format": "101"},
             "travel_document": {"code": "P", "issuer": "GBR",
                                 "expires": {"iso": "2026-11-29", "format": "101"}}},
            {"crew": false, "surname": "Doe", "embarkation": "CDG"}
        ]));
        let rule = |body: &str| {
            format!("[[traveller_rule]]\nid = \"r\"\nlane = \"yellow\"\nreason = \"x\"\n{body}\n")
        };
        let one = |position| vec![(position, Lane::Yellow, 1)];
        assert_eq!(screen(&rule("nationalities = [\"KR\"]"), &list), one(1));
        assert_eq!(screen(&rule("nationalities = [\"gbr\"]"), &list), one(2));
        assert_eq!(screen(&rule("document_issuers = [\"GB\"]"), &list), one(2));
        // Expires the day before arrival: expired; on the day: not.
        assert_eq!(screen(&rule("document_expired = true"), &list), one(1));
        assert_eq!(screen(&rule("no_travel_document = true"), &list), one(3));
        assert_eq!(screen(&rule("roles = [\"crew\"]"), &list), one(2));
        assert_eq!(
            screen(&rule("roles = [\"passenger\"]"), &list),
            vec![(1, Lane::Yellow, 1), (3, Lane::Yellow, 1)]
        );
        // The second leg's departure counts for everyone; CDG only for
        // the traveller who embarked there.
        assert_eq!(screen(&rule("departures = [\"dxb\"]"), &list).len(), 3);
        assert_eq!(screen(&rule("departures = [\"CDG\"]"), &list), one(3));
        assert_eq!(
            screen(
                &rule("watch = [{ surname = \"o'neil smith\", birth_date = \"1979-03-02\" }]"),
                &list
            ),
            one(2)
        );
        assert_eq!(
            screen(
                &rule("watch = [{ surname = \"O'NEIL-SMITH\", birth_date = \"1979-03-03\" }]"),
                &list
            ),
            vec![]
        );
        // All conditions must hold.
        assert_eq!(
            screen(&rule("nationalities = [\"KR\"]\nroles = [\"crew\"]"), &list),
            vec![]
        );
        // The highest lane wins, every matching rule is a reason; the
        // list takes the highest of its travellers.
        let two = "[[traveller_rule]]\nid = \"a\"\nlane = \"yellow\"\nreason = \"x\"\nroles = [\"crew\"]\n\
                   [[traveller_rule]]\nid = \"b\"\nlane = \"red\"\nreason = \"y\"\nnationalities = [\"GB\"]\n";
        assert_eq!(screen(two, &list), vec![(2, Lane::Red, 2)]);
        let profile = RiskProfile::from_toml_str("t", two).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(profile.screen("list-1", &list).lane, Lane::Red);
        // Without traveller rules nobody is selected.
        assert_eq!(
            RiskProfile::default().screen("list-1", &list).lane,
            Lane::Green
        );
    }

    /// A random sample draws per traveller, the same every time.
    #[test]
    fn traveller_samples_are_stable() {
        let travellers: Vec<serde_json::Value> = (0..400)
            .map(|n| serde_json::json!({"crew": false, "surname": format!("P{n}")}))
            .collect();
        let list = passenger_list(serde_json::Value::Array(travellers));
        let rules = "[[traveller_rule]]\nid = \"s\"\nlane = \"yellow\"\nreason = \"x\"\nsample_percent = 10\n";
        let first = screen(rules, &list);
        assert_eq!(first, screen(rules, &list));
        assert!((20..=60).contains(&first.len()), "{}", first.len());
    }

    /// Traveller rules are refused with their line when they could never
    /// match or say something unclear.
    #[test]
    fn bad_traveller_rules_are_refused() {
        let refused = |body: &str| {
            let text = format!(
                "[[rule]]\nid = \"a\"\nlane = \"red\"\nreason = \"x\"\n\n[[traveller_rule]]\nid = \"t\"\nlane = \"red\"\nreason = \"x\"\n{body}\n"
            );
            match RiskProfile::from_toml_str("risk.toml", &text) {
                Err(e) => (e.line, e.message),
                Ok(_) => unreachable!("accepted: {body}"),
            }
        };
        assert_eq!(
            refused("nationalities = [\"XX\"]"),
            (10, "rule \"t\": nationality \"XX\" is not an ISO 3166-1 alpha-2 or alpha-3 country code".into())
        );
        assert_eq!(refused("document_issuers = [\"UK\"]").0, 10);
        assert_eq!(
            refused("watch = [{ surname = \"X\", birth_date = \"1979-02-30\" }]").1,
            "rule \"t\": a watched traveller needs a surname and a birth_date YYYY-MM-DD"
        );
        assert!(refused("roles = [\"pilot\"]").1.contains("unknown variant"));
        assert!(refused("sample_percent = 101").1.contains("above 100"));
        assert_eq!(
            refused("").1,
            "rule \"t\" has no condition: it would select every traveller"
        );
        assert!(
            refused("no_travel_document = true\ndocument_expired = true")
                .1
                .contains("can never match")
        );
        let duplicate = "[[rule]]\nid = \"a\"\nlane = \"red\"\nreason = \"x\"\n[[traveller_rule]]\nid = \"a\"\nlane = \"red\"\nreason = \"x\"\n";
        match RiskProfile::from_toml_str("risk.toml", duplicate) {
            Err(e) => assert_eq!(
                (e.line, e.message.as_str()),
                (6, "rule id \"a\" is used twice")
            ),
            Ok(_) => unreachable!("a duplicate id was accepted"),
        }
    }
}
