//! Business rules on canonical declarations, and the consistency checks of
//! passenger lists and cargo reports: what a well-formed message can still
//! get wrong. Each rule has a stable code (RULnnn, docs/codes.md) and
//! locates its finding by the JSON pointer of the canonical field
//! (`/goods/2/hs_code`), which the response writers turn into segment or
//! element pointers.
//!
//! Rules that need other declarations (an amendment's reference to an
//! existing LRN/MRN, duplicate LRNs from one declarant) are the hub's, which
//! has the store; they use the same codes.

use rust_decimal::Decimal;
use serde::Deserialize;

use crate::diag::{Code, Issue, Location};
use crate::model::{
    Amount, CargoReport, Declaration, DeclarationFunction, DeclarationKind, Moment, PassengerList,
};
use crate::timestamp::Timestamp;

/// Settings of the rules.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// The time the declaration is checked at (dates after it are future).
    pub now: Timestamp,
    /// Relative tolerance of totals against the sum of the items (0.01 = 1%).
    pub tolerance: Decimal,
}

impl RuleSettings {
    /// The defaults at `now`: 1% tolerance.
    pub fn at(now: Timestamp) -> Self {
        RuleSettings {
            now,
            tolerance: Decimal::new(1, 2),
        }
    }
}

/// Where a finding is: the JSON pointer of the canonical field (moved to
/// the message position by `mapping::locate`).
fn at_field(pointer: String) -> Location {
    Location {
        path: Some(pointer),
        ..Location::default()
    }
}

/// The packages of an item that its total counts: those of the outermost
/// packaging level it gives (7075: 3 outer, then 2 intermediate, then 1
/// inner), with those of no level or of no hierarchy (4) counted beside
/// the outer ones. Cartons holding pieces are the cartons, not both.
pub(crate) fn outermost(packages: &[crate::model::Packages]) -> Vec<&crate::model::Packages> {
    let rank = |p: &crate::model::Packages| match p.level.as_deref() {
        Some("1") => 1,
        Some("2") => 2,
        _ => 3,
    };
    let top = packages.iter().map(rank).max().unwrap_or(3);
    packages.iter().filter(|p| rank(p) == top).collect()
}

fn finding(code: Code, pointer: String, message: String) -> Issue {
    Issue::error(code, at_field(pointer), message)
}

/// The findings of a canonical object of type `target` (the rules of a
/// declaration, the consistency checks of a passenger list or a cargo
/// report; other types have none, and neither has an object that is not
/// of its type), located at the message values they are about through the
/// mapping's `provenance` (`mapping::locate`).
pub fn check_canonical(
    target: &str,
    canonical: &serde_json::Value,
    provenance: &std::collections::BTreeMap<String, Location>,
    settings: &RuleSettings,
) -> Vec<Issue> {
    check_canonical_as(target, canonical, provenance, settings, false)
}

/// [`check_canonical`] of a declaration an amendment of changes only was
/// applied to (`hub::amend`): judged whole, although it lists the changes.
pub fn check_whole_mapped(mapped: &crate::mapping::Mapped, settings: &RuleSettings) -> Vec<Issue> {
    check_mapped_as(mapped, settings, true)
}

fn check_mapped_as(
    mapped: &crate::mapping::Mapped,
    settings: &RuleSettings,
    whole: bool,
) -> Vec<Issue> {
    match (&mapped.canonical, &mapped.partial) {
        (Some(canonical), _) => check_canonical_as(
            &mapped.target,
            canonical,
            &mapped.provenance,
            settings,
            whole,
        ),
        // An incomplete object (its gaps reported as MAP004): the rules
        // read what is left, so that the sender learns of every error at
        // once.
        (None, Some(partial)) => {
            check_partial_as(&mapped.target, partial, &mapped.provenance, settings, whole)
        }
        (None, None) => Vec::new(),
    }
}

/// The findings of what is left of an incomplete object of type `target`
/// (see [`crate::mapping::gaps`]): what the rules say of it, but for what
/// they say at or below a part left out (a value left out reads as one not
/// given) and the totals (RUL003: their sums miss what was left out).
pub fn check_partial(
    target: &str,
    partial: &crate::mapping::Partial,
    provenance: &std::collections::BTreeMap<String, Location>,
    settings: &RuleSettings,
) -> Vec<Issue> {
    check_partial_as(target, partial, provenance, settings, false)
}

fn check_partial_as(
    target: &str,
    partial: &crate::mapping::Partial,
    provenance: &std::collections::BTreeMap<String, Location>,
    settings: &RuleSettings,
    whole: bool,
) -> Vec<Issue> {
    let mut findings = check_canonical_as(target, &partial.rest, provenance, settings, whole);
    findings.retain(|finding| {
        let pointer = finding
            .location
            .field
            .as_deref()
            .or(finding.location.path.as_deref())
            .unwrap_or_default();
        finding.code != Code::RuleTotals
            && !partial.left_out.iter().any(|gap| {
                pointer
                    .strip_prefix(gap.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    });
    findings
}

fn check_canonical_as(
    target: &str,
    canonical: &serde_json::Value,
    provenance: &std::collections::BTreeMap<String, Location>,
    settings: &RuleSettings,
    whole: bool,
) -> Vec<Issue> {
    let mut findings = match target {
        "declaration" => match Declaration::deserialize(canonical) {
            Ok(declaration) => check_as(&declaration, settings, whole),
            Err(_) => return Vec::new(),
        },
        "passenger_list" => match PassengerList::deserialize(canonical) {
            Ok(list) => check_passenger_list(&list),
            Err(_) => return Vec::new(),
        },
        "cargo_report" => match CargoReport::deserialize(canonical) {
            Ok(report) => check_cargo_report(&report),
            Err(_) => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    crate::mapping::locate(&mut findings, provenance);
    findings
}

/// A warning located at a canonical field (see [`finding`]).
fn warning(code: Code, pointer: String, message: String) -> Issue {
    Issue::warning(code, at_field(pointer), message)
}

/// RUL010: the totals a passenger list declares (passengers, crew) against
/// the travellers it lists. A warning: the list is still taken, and the
/// authority sees the difference.
pub fn check_passenger_list(list: &PassengerList) -> Vec<Issue> {
    let mut out = Vec::new();
    // One part of a list sent in parts lists only its share of the
    // travellers the whole list declares. A list in one part (the first
    // part and the final one: S010 `1:F`) lists them all.
    let whole = list
        .part
        .is_none_or(|part| part == 1 && list.part_status.as_deref() == Some("final"));
    if !whole {
        return out;
    }
    let crew = list.travellers.iter().filter(|t| t.crew).count();
    let passengers = list.travellers.len() - crew;
    for (declared, listed, what, pointer) in [
        (
            list.passenger_count,
            passengers,
            "passengers",
            "/passenger_count",
        ),
        (list.crew_count, crew, "crew members", "/crew_count"),
    ] {
        if let Some(declared) = declared
            && usize::try_from(declared).ok() != Some(listed)
        {
            out.push(warning(
                Code::RuleTravellerCount,
                pointer.into(),
                format!("the list declares {declared} {what} but lists {listed}"),
            ));
        }
    }
    out
}

/// RUL011: every container a consignment's goods are placed in is one of
/// the report's equipment (when the report lists its equipment at all). A
/// warning: the report is still taken.
pub fn check_cargo_report(report: &CargoReport) -> Vec<Issue> {
    let mut out = Vec::new();
    let listed: std::collections::BTreeSet<&str> = report
        .equipment
        .iter()
        .filter_map(|e| e.id.as_deref())
        .chain(
            report
                .transport
                .iter()
                .flat_map(|t| t.containers.iter().map(String::as_str)),
        )
        .collect();
    if listed.is_empty() {
        return out;
    }
    for (c, consignment) in report.consignments.iter().enumerate() {
        for (k, container) in consignment.containers.iter().enumerate() {
            if !listed.contains(container.as_str()) {
                out.push(warning(
                    Code::RuleEquipment,
                    format!("/consignments/{c}/containers/{k}"),
                    format!(
                        "bill {}: container {container} is not among the report's equipment",
                        consignment.transport_document
                    ),
                ));
            }
        }
    }
    out
}

/// [`check_canonical`] of a mapped message.
pub fn check_mapped(mapped: &crate::mapping::Mapped, settings: &RuleSettings) -> Vec<Issue> {
    check_mapped_as(mapped, settings, false)
}

/// Every rule finding for one declaration, in field order.
pub fn check(declaration: &Declaration, settings: &RuleSettings) -> Vec<Issue> {
    check_as(declaration, settings, false)
}

/// The rules; `whole`: the declaration is complete even if it lists changes
/// (an amendment applied to the declaration it amends).
fn check_as(declaration: &Declaration, settings: &RuleSettings, whole: bool) -> Vec<Issue> {
    let mut out = Vec::new();
    // An amendment that carries only its changes (pointers to what it
    // changes) is judged whole once the hub has applied it to the
    // declaration it amends: parties, numbering and totals are that
    // declaration's. Its values are checked here all the same.
    let partial = !whole && declaration.changes.iter().any(|c| !c.pointers.is_empty());
    if !partial {
        parties(declaration, &mut out);
    }
    for (i, item) in declaration.goods.iter().enumerate() {
        if let Some(hs) = &item.hs_code {
            if let Some(why) = hs_shape(hs) {
                out.push(finding(
                    Code::RuleHsCode,
                    format!("/goods/{i}/hs_code"),
                    format!("HS code {hs:?} of goods item {} {why}", item.sequence),
                ));
            }
        } else if declaration.function != DeclarationFunction::Cancellation {
            out.push(finding(
                Code::RuleHsCode,
                format!("/goods/{i}/hs_code"),
                format!("goods item {} has no HS code", item.sequence),
            ));
        }
        country(&item.origin, &format!("/goods/{i}/origin"), &mut out);
        for (field, amount) in [
            ("customs_value", &item.customs_value),
            ("item_price", &item.item_price),
            ("statistical_value", &item.statistical_value),
        ] {
            currency(amount, &format!("/goods/{i}/{field}/currency"), &mut out);
        }
        for (d, duty) in item.duties.iter().enumerate() {
            currency(
                &duty.amount,
                &format!("/goods/{i}/duties/{d}/amount/currency"),
                &mut out,
            );
        }
    }
    if !partial {
        sequence(declaration, &mut out);
    }
    country(&declaration.dispatch_country, "/dispatch_country", &mut out);
    country(
        &declaration.destination_country,
        "/destination_country",
        &mut out,
    );
    // Party addresses (NAD 3207, WCO Address/CountryCode) and the means of
    // transport's nationality (TDT C222 8453, RegistrationNationalityCode)
    // are ISO 3166-1 alpha-2 codes too.
    for (field, party) in [
        ("declarant", &declaration.declarant),
        ("submitter", &declaration.submitter),
        ("importer", &declaration.importer),
        ("exporter", &declaration.exporter),
        ("representative", &declaration.representative),
        ("seller", &declaration.seller),
        ("buyer", &declaration.buyer),
        ("consignee", &declaration.consignee),
        ("consignor", &declaration.consignor),
    ] {
        if let Some(address) = party.as_ref().and_then(|p| p.address.as_ref()) {
            country(
                &address.country,
                &format!("/{field}/address/country"),
                &mut out,
            );
        }
    }
    if let Some(transport) = &declaration.transport {
        country(&transport.nationality, "/transport/nationality", &mut out);
    }
    currency(
        &declaration.totals.invoice,
        "/totals/invoice/currency",
        &mut out,
    );
    currency(
        &declaration.totals.customs_value,
        "/totals/customs_value/currency",
        &mut out,
    );
    negatives(declaration, &mut out);
    if !partial {
        totals(declaration, settings, &mut out);
    }
    future(&declaration.issued, "/issued", settings, &mut out);
    // The documents it declares cannot have been issued later either (an
    // invoice or certificate dated next year); when they expire may well
    // be in the future.
    for (i, doc) in declaration.documents.iter().enumerate() {
        future(
            &doc.issued,
            &format!("/documents/{i}/issued"),
            settings,
            &mut out,
        );
    }
    for (i, doc) in declaration.previous_documents.iter().enumerate() {
        future(
            &doc.issued,
            &format!("/previous_documents/{i}/issued"),
            settings,
            &mut out,
        );
    }
    for (g, item) in declaration.goods.iter().enumerate() {
        for (i, doc) in item.documents.iter().enumerate() {
            future(
                &doc.issued,
                &format!("/goods/{g}/documents/{i}/issued"),
                settings,
                &mut out,
            );
        }
    }
    out
}

/// Amounts, masses and volumes are never negative: a negative customs
/// value or mass has no meaning in a declaration (and would let items
/// cancel each other out in the totals).
fn negatives(d: &Declaration, out: &mut Vec<Issue>) {
    let mut check = |value: Option<Decimal>, pointer: String| {
        if let Some(v) = value
            && v.is_sign_negative()
            && !v.is_zero()
        {
            out.push(finding(
                Code::RuleNegative,
                pointer,
                format!("{v} is negative"),
            ));
        }
    };
    let amount = |a: &Option<Amount>| a.as_ref().map(|a| a.value);
    check(amount(&d.totals.invoice), "/totals/invoice/value".into());
    check(
        amount(&d.totals.customs_value),
        "/totals/customs_value/value".into(),
    );
    check(d.totals.gross_mass_kg, "/totals/gross_mass_kg".into());
    for (i, g) in d.goods.iter().enumerate() {
        check(
            amount(&g.customs_value),
            format!("/goods/{i}/customs_value/value"),
        );
        check(
            amount(&g.item_price),
            format!("/goods/{i}/item_price/value"),
        );
        check(
            amount(&g.statistical_value),
            format!("/goods/{i}/statistical_value/value"),
        );
        check(g.gross_mass_kg, format!("/goods/{i}/gross_mass_kg"));
        check(g.net_mass_kg, format!("/goods/{i}/net_mass_kg"));
        check(g.gross_volume_m3, format!("/goods/{i}/gross_volume_m3"));
    }
}

/// What is wrong with the shape of an HS code, if anything: 6 to 10
/// digits, which a single dot or space may group (`8517.62`, `8517 62
/// 0000`), of a chapter the Harmonized System has (01 to 97, not 77,
/// which it reserves).
fn hs_shape(hs: &str) -> Option<&'static str> {
    let groups: Vec<&str> = hs.split(['.', ' ']).collect();
    if groups.iter().any(|g| g.is_empty()) {
        return Some("has dots or spaces that separate no digits");
    }
    let digits: String = groups.concat();
    if !(6..=10).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Some("is not 6 to 10 digits");
    }
    let chapter: u8 = digits.get(..2).and_then(|c| c.parse().ok()).unwrap_or(0);
    if !(1..=97).contains(&chapter) || chapter == 77 {
        return Some("is of no HS chapter (01 to 97, 77 reserved)");
    }
    None
}

fn parties(d: &Declaration, out: &mut Vec<Issue>) {
    // A cancellation names the declaration it cancels (by its MRN or LRN,
    // RUL008), whose parties they are; HMRC's cancellation request names
    // only its submitter.
    if d.function == DeclarationFunction::Cancellation {
        return;
    }
    if d.declarant.as_ref().and_then(|p| p.id.as_ref()).is_none() {
        out.push(finding(
            Code::RuleParty,
            "/declarant".into(),
            "the declarant (with an identifier) is required".into(),
        ));
    }
    let (needed, field) = match d.kind {
        Some(DeclarationKind::Import) => (&d.importer, "importer"),
        Some(DeclarationKind::Export) => (&d.exporter, "exporter"),
        Some(DeclarationKind::Transit) | None => return,
    };
    if d.function == DeclarationFunction::Original
        && needed
            .as_ref()
            .and_then(|p| p.id.as_ref().or(p.name.as_ref()))
            .is_none()
    {
        out.push(finding(
            Code::RuleParty,
            format!("/{field}"),
            format!(
                "an {} declaration needs the {field}",
                match d.kind {
                    Some(DeclarationKind::Import) => "import",
                    _ => "export",
                }
            ),
        ));
    }
}

fn sequence(d: &Declaration, out: &mut Vec<Issue>) {
    if d.goods.len() > 999 {
        out.push(finding(
            Code::RuleItems,
            "/goods".into(),
            format!("{} goods items; at most 999", d.goods.len()),
        ));
    }
    for (i, item) in d.goods.iter().enumerate() {
        if usize::from(item.sequence) != i + 1 {
            out.push(finding(
                Code::RuleItems,
                format!("/goods/{i}/sequence"),
                format!(
                    "goods item {} is numbered {}; items are numbered 1, 2, 3 … in order",
                    i + 1,
                    item.sequence
                ),
            ));
            break;
        }
    }
}

fn country(value: &Option<String>, pointer: &str, out: &mut Vec<Issue>) {
    if let Some(code) = value
        && isocountry::CountryCode::for_alpha2(code).is_err()
    {
        out.push(finding(
            Code::RuleCountry,
            pointer.to_owned(),
            format!("{code:?} is not an ISO 3166-1 alpha-2 country code"),
        ));
    }
}

fn currency(amount: &Option<Amount>, pointer: &str, out: &mut Vec<Issue>) {
    let Some(amount) = amount else { return };
    if let Some(message) = currency_problem(&amount.currency) {
        out.push(finding(Code::RuleCurrency, pointer.to_owned(), message));
    }
}

/// Why `code` is no currency goods are valued in (RUL004); `None` when it is.
fn currency_problem(code: &str) -> Option<String> {
    let message = match iso_currency::Currency::from_code(code) {
        // Withdrawn after the crate's list was made (ISO 4217 amendment
        // 176: the Caribbean guilder replaced the Netherlands Antillean
        // guilder in 2025).
        None if code == "ANG" => {
            format!("{code:?} is withdrawn from ISO 4217 (replaced by XCG)")
        }
        None => format!("{code:?} is not an ISO 4217 currency code"),
        // VES stays in ISO 4217's list beside VED; the data marks it
        // replaced.
        Some(c) if code != "VES" && c.is_superseded().is_some() => format!(
            "{code:?} is withdrawn from ISO 4217 (replaced by {})",
            c.is_superseded().map(|n| n.code()).unwrap_or_default()
        ),
        // Precious metals, units of account and the codes for testing and
        // for "no currency": not what goods are paid or valued in.
        Some(c) if c.is_special() => {
            format!(
                "{code:?} is an ISO 4217 code for no national currency ({})",
                c.name()
            )
        }
        // Fund codes (ISO 4217's "fund" entries: indexed units such as
        // CLF, settlement variants such as USN): bookkeeping units, not a
        // currency goods are invoiced or valued in.
        Some(c) if c.is_fund() => format!(
            "{code:?} is an ISO 4217 fund code ({}), not a currency goods are valued in",
            c.name()
        ),
        Some(_) => return None,
    };
    Some(message)
}

/// Totals equal the sum of the items, within the tolerance.
fn totals(d: &Declaration, settings: &RuleSettings, out: &mut Vec<Issue>) {
    // Amounts may be as large as a decimal holds (28 digits), so sums and
    // differences are checked: one that does not fit is a finding, never an
    // overflow.
    // The tolerance is a share of the larger of the two, so that it is the
    // same whichever side is the larger (300 against 303 and 303 against
    // 300 agree or differ alike).
    let close = |total: Decimal, sum: Decimal| {
        let allowed = total.abs().max(sum.abs()).checked_mul(settings.tolerance);
        match (total.checked_sub(sum), allowed) {
            (Some(difference), Some(allowed)) => difference.abs() <= allowed,
            _ => false,
        }
    };
    let sum_of = |values: &mut dyn Iterator<Item = Decimal>| {
        let mut sum = Decimal::ZERO;
        for v in values {
            sum = sum.checked_add(v)?;
        }
        Some(sum)
    };
    let too_large = |pointer: &str, what: &str, out: &mut Vec<Issue>| {
        out.push(finding(
            Code::RuleTotals,
            pointer.to_owned(),
            format!("the sum of the items' {what} is too large to compute (over 28 digits)"),
        ));
    };
    if let Some(total) = &d.totals.customs_value {
        let values: Vec<&Amount> = d
            .goods
            .iter()
            .filter_map(|g| g.customs_value.as_ref())
            .collect();
        let same_currency = values.iter().all(|a| a.currency == total.currency);
        // Items valued in another currency than the total cannot be added
        // up against it without the exchange rate, which the declaration
        // does not carry: said, as a warning, rather than passed in silence.
        // (An item whose currency is no ISO 4217 code has its RUL004.)
        let known = values
            .iter()
            .all(|a| currency_problem(&a.currency).is_none());
        if !same_currency && known {
            let others: Vec<String> = d
                .goods
                .iter()
                .filter(|g| {
                    g.customs_value
                        .as_ref()
                        .is_some_and(|a| a.currency != total.currency)
                })
                .map(|g| g.sequence.to_string())
                .collect();
            out.push(warning(
                Code::RuleTotals,
                "/totals/customs_value/currency".into(),
                format!(
                    "total customs value {} {} is not compared with the items: item(s) {} give their value in another currency, and the declaration gives no exchange rate",
                    total.value,
                    total.currency,
                    others.join(", ")
                ),
            ));
        }
        if values.len() < d.goods.len() && same_currency {
            // Some items give no value: their sum cannot be held against
            // the total, but the ones given must not already exceed it.
            if let Some(sum) = sum_of(&mut values.iter().map(|a| a.value))
                && values.iter().all(|a| !a.value.is_sign_negative())
                && sum > total.value
                && !close(total.value, sum)
            {
                out.push(finding(
                    Code::RuleTotals,
                    "/totals/customs_value/value".into(),
                    format!(
                        "total customs value {} {} is less than the items that give a value already sum to, {sum}",
                        total.value, total.currency
                    ),
                ));
            }
        }
        if values.len() == d.goods.len() && !values.is_empty() {
            match sum_of(&mut values.iter().map(|a| a.value)) {
                None => too_large("/totals/customs_value/value", "customs values", out),
                Some(sum)
                    if values.iter().all(|a| a.currency == total.currency)
                        && !close(total.value, sum) =>
                {
                    out.push(finding(
                        Code::RuleTotals,
                        "/totals/customs_value/value".into(),
                        format!(
                            "total customs value {} {} differs from the sum of the items, {sum}",
                            total.value, total.currency
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(total) = d.totals.gross_mass_kg {
        let masses: Vec<Decimal> = d.goods.iter().filter_map(|g| g.gross_mass_kg).collect();
        // Some items give no mass: the ones given must not already weigh
        // more than the total.
        if masses.len() < d.goods.len()
            && masses.iter().all(|m| !m.is_sign_negative())
            && let Some(sum) = sum_of(&mut masses.iter().copied())
            && sum > total
            && !close(total, sum)
        {
            out.push(finding(
                Code::RuleTotals,
                "/totals/gross_mass_kg".into(),
                format!(
                    "total gross mass {total} kg is less than the items that give a mass already weigh, {sum} kg"
                ),
            ));
        }
        if masses.len() == d.goods.len() && !masses.is_empty() {
            match sum_of(&mut masses.iter().copied()) {
                None => too_large("/totals/gross_mass_kg", "gross masses", out),
                Some(sum) if !close(total, sum) => {
                    out.push(finding(
                    Code::RuleTotals,
                    "/totals/gross_mass_kg".into(),
                    format!(
                        "total gross mass {total} kg differs from the sum of the items, {sum} kg"
                    ),
                ));
                }
                Some(_) => {}
            }
        }
    }
    if let Some(total) = d.totals.packages {
        let counted: Vec<Vec<&crate::model::Packages>> =
            d.goods.iter().map(|g| outermost(&g.packages)).collect();
        let sum: u64 = counted
            .iter()
            .flatten()
            .filter_map(|p| p.count)
            .map(u64::from)
            .sum();
        // Compared only when every item gives its (outermost) packages
        // with a count.
        if counted
            .iter()
            .all(|p| !p.is_empty() && p.iter().all(|p| p.count.is_some()))
            && !d.goods.is_empty()
            && u64::from(total) != sum
        {
            out.push(finding(
                Code::RuleTotals,
                "/totals/packages".into(),
                format!("total packages {total} differ from the sum of the items, {sum}"),
            ));
        }
    }
    if let Some(items) = d.totals.items
        && usize::from(items) != d.goods.len()
    {
        out.push(finding(
            Code::RuleTotals,
            "/totals/items".into(),
            format!(
                "the declaration states {items} goods items but carries {}",
                d.goods.len()
            ),
        ));
    }
}

fn future(moment: &Option<Moment>, pointer: &str, settings: &RuleSettings, out: &mut Vec<Issue>) {
    let Some(moment) = moment else { return };
    // The earliest instant the moment can stand for (without a time zone,
    // its local time is read in UTC+14, the zone furthest ahead, since the
    // sender's is not known), against the time of checking and a few
    // minutes' allowance for clocks that differ.
    let Some(earliest) = moment.earliest_utc() else {
        return;
    };
    if earliest > settings.now.unix() + CLOCK_ALLOWANCE_SECS {
        out.push(finding(
            Code::RuleFutureDate,
            pointer.to_owned(),
            format!(
                "{} is after the time of checking ({})",
                moment.iso, settings.now
            ),
        ));
    }
}

/// How far ahead of the hub's clock a sender's may run before its dates
/// count as in the future.
const CLOCK_ALLOWANCE_SECS: i64 = 300;
