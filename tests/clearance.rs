//! The clearance workflow on the real stores (embedded SQLite and the
//! machine's PostgreSQL): a CUSDEC is mapped, checked, given a lane and
//! routed; agencies answer; the declaration moves through the states of
//! DESIGN.md §4 with an event for every step and a response to the sender.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use tradehub::agency::AgencyCatalogue;
use tradehub::edifact::Limits;
use tradehub::hub::clearance::{Clearance, state};
use tradehub::hub::permits::{DecisionError, DecisionOutcome};
use tradehub::hub::{Intake, Submission};
use tradehub::model::{PermitDecision, PermitOutcome};
use tradehub::risk::RiskProfile;
use tradehub::routing::Routing;
use tradehub::store::{Partner, Store, StoredDeclaration, Table};
use tradehub::timestamp::Timestamp;

const SENDER: &str = "KRBROKER01";

fn cusdec(reference: &str, lrn: &str, function: &str, hs: &[&str]) -> Vec<u8> {
    common::cusdec(SENDER, reference, lrn, function, hs)
}

/// An EDIFACT answer with the lines of its free texts (FTX C108, cut at
/// 70 characters, each space kept) joined again, and `?:` read as `:`.
/// The error group a CUSRES gives for the first goods item of `sent`
/// (one message): ERP at its CST, by position in the message (UNH 1).
fn erp_at_first_item(sent: &[u8]) -> String {
    let text = String::from_utf8_lossy(sent);
    let segments: Vec<&str> = text.split('\'').map(str::trim).collect();
    let unh = segments.iter().position(|s| s.starts_with("UNH+")).unwrap();
    let cst = segments.iter().position(|s| s.starts_with("CST+")).unwrap();
    format!("ERP++CST:{}:5'", cst - unh + 1)
}

fn ftx_text(body: &str) -> String {
    body.replace("?:", "\u{1}")
        .replace(':', "")
        .replace('\u{1}', ":")
}

fn repo(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn clearance(risk: &str, timeout_secs: i64) -> Clearance {
    let catalogue = AgencyCatalogue::load(repo("config/agencies.toml")).unwrap();
    Clearance {
        routing: Routing::load(&repo("config/routing.toml"), &catalogue).unwrap(),
        risk: RiskProfile::from_toml_str("risk", risk).unwrap(),
        permit_timeout_secs: timeout_secs,
        ..Clearance::default()
    }
}

struct Hub {
    intake: Intake,
    broker: Partner,
    mfds: Partner,
    apqa: Partner,
    officer: Partner,
}

async fn hub(url: &str, clearance: Clearance) -> Hub {
    let store = Store::open(url).await.unwrap();
    for (id, agency) in [
        (SENDER, None),
        ("mfds-desk", Some("MFDS")),
        ("apqa-desk", Some("APQA")),
        ("officer", Some("CUSTOMS")),
    ] {
        store
            .add_partner(id, id, &format!("hash-{id}"), Timestamp::now())
            .await
            .unwrap();
        store.set_partner_agency(id, agency).await.unwrap();
    }
    let get = |id: &'static str| {
        let store = store.clone();
        async move { store.partner(id).await.unwrap().unwrap() }
    };
    Hub {
        broker: get(SENDER).await,
        mfds: get("mfds-desk").await,
        apqa: get("apqa-desk").await,
        officer: get("officer").await,
        intake: Intake::new(store, Limits::default()).with_clearance(clearance),
    }
}

async fn submit(hub: &Hub, bytes: Vec<u8>) -> Vec<StoredDeclaration> {
    let id = match hub.intake.submit(&hub.broker, bytes).await.unwrap() {
        Submission::Stored(r) => {
            assert_eq!(r.interchange.status, "validated", "{:?}", r.issues);
            r.interchange.id
        }
        other => panic!("not stored: {other:?}"),
    };
    hub.intake.store().declarations_of(&id).await.unwrap()
}

/// A decision with its reason; a conditional grant states it as its
/// conditions too (one without them is refused).
fn decision(permit: &str, outcome: PermitOutcome, reason: &str) -> PermitDecision {
    PermitDecision {
        permit_id: permit.into(),
        outcome,
        reasons: vec![reason.into()],
        conditions: (outcome == PermitOutcome::Conditional).then(|| reason.into()),
        decided_at: None,
    }
}

async fn kinds(hub: &Hub, declaration: &str) -> Vec<String> {
    hub.intake
        .store()
        .declaration_events(declaration)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

/// The declaration `id` as stored now.
async fn stored(hub: &Hub, id: &str) -> StoredDeclaration {
    hub.intake.store().declaration(id).await.unwrap().unwrap()
}

async fn issue_codes(hub: &Hub, d: &StoredDeclaration) -> Vec<String> {
    let stored = stored(hub, &d.id).await;
    let issues: Vec<serde_json::Value> = serde_json::from_str(&stored.issues_json).unwrap();
    issues
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The whole workflow on one store.
async fn workflow(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();

    // Machine parts: no agency confirms them, green lane → cleared at once.
    let d = submit(&hub, cusdec("IC001", "LRN-A", "9", &["847989"])).await;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, state::CLEARED);
    assert_eq!(d[0].lane.as_deref(), Some("green"));
    assert_eq!(
        kinds(&hub, &d[0].id).await,
        [
            "received",
            "validated",
            "accepted",
            "lane_assigned",
            "cleared"
        ]
    );
    let responses = store.responses_of(&d[0].id).await.unwrap();
    assert_eq!(responses.len(), 1);
    assert_eq!(responses[0].status, state::CLEARED);
    // Accepted: customs gave it an MRN, which the answer quotes (RFF+ABT)
    // and its canonical form carries.
    let mrn = d[0]
        .mrn
        .clone()
        .expect("an accepted declaration has an MRN");
    assert!(tradehub::hub::mrn::is_valid(&mrn), "{mrn}");
    assert!(mrn[2..4] == *"KR", "{mrn}");
    assert!(
        responses[0].body.contains(&format!("RFF+ABT:{mrn}'")),
        "{}",
        responses[0].body
    );
    let canonical: serde_json::Value =
        serde_json::from_str(d[0].canonical_json.as_deref().unwrap()).unwrap();
    assert_eq!(canonical["mrn"], mrn.as_str());

    // Beef (0201): MFDS and APQA must confirm; both requests are in the
    // outbox for their agency queues, written with the declaration.
    let before = store.count(Table::Outbox).await.unwrap();
    let d = submit(&hub, cusdec("IC002", "LRN-B", "9", &["020130", "847989"])).await;
    let beef = &d[0];
    assert_eq!(beef.status, state::AWAITING_PERMITS);
    let permits = store.permits_of(&beef.id).await.unwrap();
    let agencies: Vec<&str> = permits.iter().map(|p| p.agency.as_str()).collect();
    assert_eq!(agencies, ["APQA", "MFDS"]);
    assert!(permits.iter().all(|p| p.status == "pending"));
    let pending = store.pending_outbox(1000).await.unwrap();
    for p in &permits {
        let row = pending
            .iter()
            .find(|m| m.message.message_id == p.id)
            .unwrap_or_else(|| panic!("no outbox row for permit {}", p.id));
        assert_eq!(row.message.exchange, "tradehub.permits");
        assert_eq!(row.message.routing_key, format!("permit.{}", p.agency));
        let request: serde_json::Value = serde_json::from_slice(&row.message.payload).unwrap();
        assert_eq!(request["declaration"]["lrn"], "LRN-B");
        assert_eq!(
            request["declaration"]["mrn"],
            beef.mrn.as_deref().unwrap(),
            "agencies are told the MRN"
        );
        assert_eq!(
            request["goods"],
            serde_json::json!([1]),
            "only the beef item"
        );
    }
    // interchange event + 2 permits + response + declaration event
    assert_eq!(store.count(Table::Outbox).await.unwrap(), before + 5);
    assert_eq!(store.agency_inbox("MFDS", 10, None).await.unwrap().len(), 1);

    // Only MFDS's account may answer MFDS's permit.
    let mfds_permit = permits.iter().find(|p| p.agency == "MFDS").unwrap();
    let apqa_permit = permits.iter().find(|p| p.agency == "APQA").unwrap();
    let wrong = hub
        .intake
        .decide(
            &hub.apqa,
            &decision(&mfds_permit.id, PermitOutcome::Granted, "ok"),
        )
        .await;
    assert!(
        matches!(wrong, Err(DecisionError::WrongAgency { .. })),
        "{wrong:?}"
    );
    let unknown = hub
        .intake
        .decide(
            &hub.mfds,
            &decision("no-such-permit", PermitOutcome::Granted, "ok"),
        )
        .await;
    assert!(matches!(unknown, Err(DecisionError::NotFound(_))));

    // One grant: still waiting for the other.
    let first = hub
        .intake
        .decide(
            &hub.mfds,
            &decision(&mfds_permit.id, PermitOutcome::Granted, "safe"),
        )
        .await
        .unwrap();
    let DecisionOutcome::Recorded(after) = first else {
        panic!("{first:?}")
    };
    assert_eq!(after.status, state::AWAITING_PERMITS);
    assert!(
        store
            .agency_inbox("MFDS", 10, None)
            .await
            .unwrap()
            .is_empty()
    );
    // MFDS answers the granted permit again.
    let answer_again = async |outcome, reason: &'static str| {
        hub.intake
            .decide(&hub.mfds, &decision(&mfds_permit.id, outcome, reason))
            .await
    };
    // Another answer changes nothing.
    let again = answer_again(PermitOutcome::Refused, "late").await.unwrap();
    assert_eq!(again, DecisionOutcome::AlreadyDecided("granted".into()));
    // The very answer recorded, sent again (a resend after a lost reply),
    // is taken as the first was: nothing changes, the declaration is told.
    let resent = answer_again(PermitOutcome::Granted, "safe").await.unwrap();
    let DecisionOutcome::Repeated(now) = resent else {
        panic!("{resent:?}")
    };
    assert_eq!(now.status, state::AWAITING_PERMITS);
    // The same outcome with other reasons is another answer.
    let other = answer_again(PermitOutcome::Granted, "safe enough")
        .await
        .unwrap();
    assert_eq!(other, DecisionOutcome::AlreadyDecided("granted".into()));
    // The second grant clears it.
    let second = hub
        .intake
        .decide(
            &hub.apqa,
            &decision(&apqa_permit.id, PermitOutcome::Conditional, "keep chilled"),
        )
        .await
        .unwrap();
    let DecisionOutcome::Recorded(after) = second else {
        panic!("{second:?}")
    };
    assert_eq!(after.status, state::CLEARED);
    // The answer after the agencies' decisions quotes the MRN given at
    // acceptance.
    let cleared = store.responses_of(&beef.id).await.unwrap().pop().unwrap();
    assert_eq!(cleared.status, state::CLEARED);
    let beef_mrn = beef.mrn.clone().unwrap();
    assert!(
        cleared.body.contains(&format!("RFF+ABT:{beef_mrn}'")),
        "{}",
        cleared.body
    );
    // APQA gave its permit with conditions: cleared on them, conditionally
    // accepted (4343 CA, 7365 66) with the conditions in FTX+AAX; not
    // "goods released" (7365 4) before an officer releases them.
    // Addressed as the broker addressed the hub: id and qualifier (ZZZ).
    assert!(
        cleared.body.contains("+TRADEHUB:ZZZ+KRBROKER01:ZZZ+"),
        "{}",
        cleared.body
    );
    for part in [
        "BGM+961+LRN-B+29+CA'",
        "FTX+AAX+++APQA?: keep chilled'",
        "GIS+66'",
    ] {
        assert!(cleared.body.contains(part), "{part} in {}", cleared.body);
    }
    assert!(!cleared.body.contains("GIS+4'"), "{}", cleared.body);
    assert_eq!(after.mrn.as_deref(), Some(beef_mrn.as_str()));
    let trail = kinds(&hub, &beef.id).await;
    assert_eq!(
        &trail[4..],
        [
            "awaiting_permits",
            "permit_granted",
            "permit_conditional",
            "permits_granted",
            "cleared"
        ]
    );
    // The milestone says that one was given on conditions (it read "all
    // 2 permit(s) granted").
    let events = store.declaration_events(&beef.id).await.unwrap();
    let milestone = events.iter().find(|e| e.kind == "permits_granted").unwrap();
    assert_eq!(
        milestone.detail,
        "all 2 permit(s) granted, 1 of them on conditions"
    );
    let statuses: Vec<String> = store
        .responses_of(&beef.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, ["awaiting_permits", "cleared"]);
    // Released after its permits: the third answer to the sender.
    let (released, changed) = hub
        .intake
        .release(&hub.officer, &beef.id, "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((released.status.as_str(), changed), (state::RELEASED, true));
    assert_eq!(answer_numbers(&hub, &beef.id).await, ["00", "01", "02"]);
    // Released on the same conditions.
    let answer = store.responses_of(&beef.id).await.unwrap().pop().unwrap();
    for part in ["+29+CA'", "FTX+AAX+++APQA?: keep chilled'", "GIS+4'"] {
        assert!(answer.body.contains(part), "{part} in {}", answer.body);
    }

    // A refusal holds the declaration and tells the sender why.
    let d = submit(&hub, cusdec("IC003", "LRN-C", "9", &["020130"])).await;
    for p in store.permits_of(&d[0].id).await.unwrap() {
        let (who, outcome) = if p.agency == "MFDS" {
            (&hub.mfds, PermitOutcome::Refused)
        } else {
            (&hub.apqa, PermitOutcome::Granted)
        };
        hub.intake
            .decide(who, &decision(&p.id, outcome, "residue above limit"))
            .await
            .unwrap();
    }
    let held = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert_eq!(held.status, state::HELD);
    // The trail: MFDS's answer (an event of its permit), then the
    // milestone, named apart, then the hold.
    let trail = kinds(&hub, &held.id).await;
    let from = trail.iter().position(|k| k == "permit_refused");
    assert_eq!(
        from.map(|i| &trail[i..]),
        Some(&["permit_refused", "permits_refused", "held"].map(String::from)[..]),
        "{trail:?}"
    );
    let last = store.responses_of(&held.id).await.unwrap().pop().unwrap();
    assert_eq!(last.status, state::HELD);
    // A CUSRES (D.96B): 1225 23 on hold, GIS 6 documents to be produced
    // (the permit), and the refusal as an error group with the agency's
    // reason.
    assert_eq!(last.kind, "cusres");
    for part in ["BGM+963+LRN-C+23'", "GIS+6'", "ERC+HUB301::ZZZ'"] {
        assert!(last.body.contains(part), "{part} in {}", last.body);
    }
    // Which goods the permit was for.
    assert!(
        ftx_text(&last.body).contains("refused by MFDS for goods item 1: residue"),
        "{}",
        last.body
    );
    assert!(last.body.contains("residue"), "{}", last.body);
    // Its error group points at that goods item (its CST), not at the
    // message as a whole.
    let erp = erp_at_first_item(&cusdec("IC003", "LRN-C", "9", &["020130"]));
    assert!(last.body.contains(&erp), "{erp} in {}", last.body);
    // Goods without their permit are not released.
    let refused = hub
        .intake
        .release(&hub.officer, &held.id, "")
        .await
        .unwrap();
    let (still, changed) = refused.unwrap();
    assert_eq!((still.status.as_str(), changed), (state::HELD, false));

    // The same LRN again as an original is a duplicate (RUL009) …
    let d = submit(&hub, cusdec("IC004", "LRN-C", "9", &["847989"])).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL009"]);
    // … answered with an APERAK pointing at the LRN in BGM (segment 2 of
    // the message, element 2).
    let aperak = store.responses_of(&d[0].id).await.unwrap().pop().unwrap();
    assert_eq!(aperak.kind, "aperak");
    assert!(aperak.body.contains("APERAK:D:96B:UN"), "{}", aperak.body);
    assert!(aperak.body.contains("ERC+RUL009::ZZZ'"), "{}", aperak.body);
    assert!(aperak.body.contains("RFF+ACW:1:2'"), "{}", aperak.body);
    // … an amendment of it replaces it (held → amended) …
    let d = submit(&hub, cusdec("IC005", "LRN-C", "5", &["847989"])).await;
    assert_eq!(
        d[0].status,
        state::CLEARED,
        "{:?}",
        issue_codes(&hub, &d[0]).await
    );
    let old = store.declaration(&held.id).await.unwrap().unwrap();
    assert_eq!(old.status, state::AMENDED);
    assert!(old.mrn.is_some());
    assert_eq!(d[0].mrn, old.mrn, "an amendment keeps the MRN");
    // … and a cancellation must name a live declaration (RUL008).
    let d = submit(&hub, cusdec("IC006", "LRN-NEVER", "1", &["847989"])).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    // The cleared amendment can no longer be cancelled either.
    let d = submit(&hub, cusdec("IC007", "LRN-C", "1", &["847989"])).await;
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);

    // Cancelling a declaration awaiting permits withdraws its permits.
    let d = submit(&hub, cusdec("IC008", "LRN-D", "9", &["020130"])).await;
    let waiting = d[0].id.clone();
    let c = submit(&hub, cusdec("IC009", "LRN-D", "1", &["020130"])).await;
    assert_eq!(c[0].status, state::ACCEPTED);
    let cancelled = store.declaration(&waiting).await.unwrap().unwrap();
    assert_eq!(cancelled.status, state::CANCELLED);
    // The cancellation has no MRN of its own; its answer quotes the
    // cancelled declaration's.
    assert_eq!(c[0].mrn, None);
    let answer = store.responses_of(&c[0].id).await.unwrap().pop().unwrap();
    let cancelled_mrn = cancelled.mrn.clone().unwrap();
    assert!(
        answer.body.contains(&format!("RFF+ABT:{cancelled_mrn}'")),
        "{}",
        answer.body
    );
    let permits = store.permits_of(&waiting).await.unwrap();
    assert!(!permits.is_empty());
    assert!(
        permits.iter().all(|p| p.status == "withdrawn"),
        "{permits:?}"
    );
    // Each withdrawal is on the trail, before the cancellation itself.
    let trail = kinds(&hub, &waiting).await;
    let withdrawn = trail.iter().filter(|k| *k == "permit_withdrawn").count();
    assert_eq!(withdrawn, permits.len(), "{trail:?}");
    assert_eq!(
        trail.last().map(String::as_str),
        Some(state::CANCELLED),
        "{trail:?}"
    );
    // Subscribers hear that the declaration was cancelled (its own event,
    // naming the cancellation), and each agency that its request is
    // withdrawn, on its permit queue.
    let outbox = store.pending_outbox(10_000).await.unwrap();
    let event = outbox
        .iter()
        .find(|m| {
            m.message.routing_key == "declaration.cancelled"
                && String::from_utf8_lossy(&m.message.payload).contains(&waiting)
        })
        .unwrap_or_else(|| panic!("no cancellation event for {waiting}"));
    let event: serde_json::Value = serde_json::from_slice(&event.message.payload).unwrap();
    assert_eq!(event["declaration"]["id"], waiting.as_str());
    assert_eq!(event["declaration"]["replaced_by"], c[0].id.as_str());
    for p in &permits {
        let notice = outbox
            .iter()
            .find(|m| m.message.message_id == format!("{}/withdrawn", p.id))
            .unwrap_or_else(|| panic!("no withdrawal notice for {}", p.id));
        assert_eq!(notice.message.exchange, "tradehub.permits");
        assert_eq!(notice.message.routing_key, format!("permit.{}", p.agency));
        let body: serde_json::Value = serde_json::from_slice(&notice.message.payload).unwrap();
        assert_eq!(body["type"], "permit.withdrawn");
        assert_eq!(body["declaration_id"], waiting.as_str());
    }
    // The cancellation now holds the LRN: an amendment, another
    // cancellation or a new original of it are refused, saying so.
    for (reference, function, code) in [
        ("IC010", "5", "RUL008"),
        ("IC011", "1", "RUL008"),
        ("IC012", "9", "RUL009"),
    ] {
        let d = submit(&hub, cusdec(reference, "LRN-D", function, &["020130"])).await;
        assert_eq!(d[0].status, state::REJECTED);
        assert_eq!(issue_codes(&hub, &d[0]).await, [code]);
        let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
        assert!(
            stored.issues_json.contains("cancellation ") && stored.issues_json.contains(&c[0].id),
            "{function}: {}",
            stored.issues_json
        );
    }

    // An officer orders cleared goods examined: held, its lane red, the
    // sender answered; the order again changes nothing; an amendment
    // stays under examination (it never gets a lower lane).
    let d = submit(&hub, cusdec("IC013", "LRN-H", "9", &["847989"])).await;
    assert_eq!(d[0].status, state::CLEARED);
    let (held, changed) = hub
        .intake
        .hold(&hub.officer, &d[0].id, "tip-off")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (held.status.as_str(), held.lane.as_deref(), changed),
        (state::HELD, Some("red"), true)
    );
    let again = hub.intake.hold(&hub.officer, &d[0].id, "tip-off").await;
    assert_eq!(again.unwrap().map(|(_, changed)| changed), Some(false));
    assert_eq!(answer_numbers(&hub, &d[0].id).await, ["00", "01"]);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.lane.as_deref()),
        (state::HELD, Some("red"))
    );
    let trail = kinds(&hub, &d[0].id).await;
    assert_eq!(
        trail.iter().filter(|k| *k == "examination_ordered").count(),
        1,
        "{trail:?}"
    );
    let a = submit(&hub, cusdec("IC014", "LRN-H", "5", &["847989"])).await;
    assert_eq!(
        (a[0].status.as_str(), a[0].lane.as_deref()),
        (state::HELD, Some("red"))
    );
    // Gone goods are not held: a released declaration stays released.
    let (released, _) = hub
        .intake
        .release(&hub.officer, &a[0].id, "examined")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(released.status, state::RELEASED);
    let late = hub.intake.hold(&hub.officer, &a[0].id, "late").await;
    assert_eq!(
        late.unwrap().map(|(d, changed)| (d.status, changed)),
        Some((state::RELEASED.to_owned(), false))
    );
    store.close().await;
}

/// Runs `test` on a fresh embedded store.
async fn on_sqlite(test: impl AsyncFnOnce(&str)) {
    let dir = std::env::temp_dir().join(format!("tradehub-clearance-{}", uuid::Uuid::now_v7()));
    test(&Store::embedded_url(&dir).unwrap()).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `test` on a fresh database of the machine's PostgreSQL.
async fn on_postgres(test: impl AsyncFnOnce(&str)) {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    test(&url).await;
    common::drop_pg_database(&name).await;
}

#[tokio::test]
async fn workflow_on_sqlite() {
    on_sqlite(workflow).await;
}

#[tokio::test]
async fn workflow_on_postgres() {
    on_postgres(workflow).await;
}

/// An embedded hub (in a new directory named after `name`) whose permits
/// are due in `timeout_secs`, and its declarations of a beef import
/// (`reference`, `lrn`) awaiting the permits of MFDS and APQA.
async fn awaiting_beef(
    name: &str,
    timeout_secs: i64,
    reference: &str,
    lrn: &str,
) -> (std::path::PathBuf, Hub, Vec<StoredDeclaration>) {
    let dir = std::env::temp_dir().join(format!("tradehub-{name}-{}", uuid::Uuid::now_v7()));
    let hub = hub(
        &Store::embedded_url(&dir).unwrap(),
        clearance("", timeout_secs),
    )
    .await;
    let d = submit(&hub, cusdec(reference, lrn, "9", &["020130"])).await;
    assert_eq!(d[0].status, state::AWAITING_PERMITS);
    (dir, hub, d)
}

/// Publishes what waits in the hub's outbox (in process).
async fn send_outbox(hub: &Hub) {
    let sent = tradehub::hub::outbox::drain(
        hub.intake.store(),
        &tradehub::hub::outbox::InProcess::new(1024),
    )
    .await
    .unwrap();
    assert!(sent > 0);
}

/// An agency's time runs from when its request is sent: a request that
/// waited in the outbox (broker away) longer than the answer time neither
/// expires while it waits nor as soon as it is sent. (Expiry went by the
/// time the permit was asked for: requests published after their due
/// time were expired before the agency could read them.)
#[tokio::test]
async fn a_permit_request_sent_late_gets_its_whole_answer_time() {
    let (dir, hub, d) = awaiting_beef("late", 2, "IC101", "LRN-LATE").await;
    // Past its due time, and later than the hub counts as on time.
    tokio::time::sleep(std::time::Duration::from_millis(11_200)).await;
    assert_eq!(
        hub.intake.expire_overdue(Timestamp::now()).await.unwrap(),
        0,
        "expired before its request was sent"
    );
    let sent = Timestamp::now();
    send_outbox(&hub).await;
    let permits = hub.intake.store().permits_of(&d[0].id).await.unwrap();
    assert_eq!(permits.len(), 2);
    for p in &permits {
        let due = Timestamp::parse(&p.due_at).unwrap();
        assert!(due.unix() >= sent.unix() + 2, "{p:?} sent at {sent}");
        assert_eq!(p.status, "pending");
    }
    assert_eq!(
        hub.intake.expire_overdue(Timestamp::now()).await.unwrap(),
        0,
        "expired as soon as it was sent"
    );
    // The trail says so, once per permit.
    let kinds = kinds(&hub, &d[0].id).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == tradehub::store::PERMIT_REQUEST_SENT_LATE)
            .count(),
        2,
        "{kinds:?}"
    );
    assert_eq!(
        hub.intake
            .expire_overdue(Timestamp::now().plus_secs(5))
            .await
            .unwrap(),
        2
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A broker that rejects every permit request (as one over its message
/// size limit): parked after one attempt.
struct RejectsPermits;

impl tradehub::hub::outbox::Publish for RejectsPermits {
    fn publish<'a>(
        &'a self,
        m: &'a tradehub::store::PendingMessage,
    ) -> tradehub::hub::outbox::Sent<'a> {
        Box::pin(async move {
            if m.message.exchange == "tradehub.permits" {
                Err(tradehub::hub::outbox::RelayError::Rejected(
                    "message too large".into(),
                ))
            } else {
                Ok(())
            }
        })
    }
}

/// A permit whose request was parked (the broker rejects it, and would
/// again) is not held back from expiring: the declaration is held and
/// answered instead of waiting for ever.
#[tokio::test]
async fn a_permit_whose_request_is_parked_expires_when_due() {
    let (dir, hub, d) = awaiting_beef("parked", 60, "IC102", "LRN-PARK").await;
    let once = tradehub::hub::outbox::RelaySettings {
        max_attempts: 1,
        ..Default::default()
    };
    tradehub::hub::outbox::drain_with(hub.intake.store(), &RejectsPermits, &once)
        .await
        .unwrap();
    let counts = hub.intake.store().outbox_counts().await.unwrap();
    assert_eq!(counts.parked, 2, "{counts:?}");
    let later = Timestamp::now().plus_secs(120);
    assert_eq!(hub.intake.expire_overdue(later).await.unwrap(), 2);
    let held = stored(&hub, &d[0].id).await;
    assert_eq!(held.status, state::HELD);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unanswered_permits_expire_and_hold_the_declaration() {
    let (dir, hub, d) = awaiting_beef("expiry", 60, "IC100", "LRN-E").await;
    // Not yet due: nothing happens.
    assert_eq!(
        hub.intake.expire_overdue(Timestamp::now()).await.unwrap(),
        0
    );
    // Requests still in the outbox have not been sent to the agencies:
    // they do not expire, however late it is.
    let much_later = Timestamp::now().plus_secs(3600);
    assert_eq!(hub.intake.expire_overdue(much_later).await.unwrap(), 0);
    send_outbox(&hub).await;
    let later = Timestamp::now().plus_secs(120);
    assert_eq!(hub.intake.expire_overdue(later).await.unwrap(), 2);
    let held = stored(&hub, &d[0].id).await;
    assert_eq!(held.status, state::HELD);
    let permits = hub.intake.store().permits_of(&held.id).await.unwrap();
    assert!(permits.iter().all(|p| p.status == "expired"));
    let last = hub
        .intake
        .store()
        .responses_of(&held.id)
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert!(last.body.contains("ERC+HUB302::ZZZ'"), "{}", last.body);
    assert!(
        ftx_text(&last.body).contains(" for goods item 1 was not answered by "),
        "{}",
        last.body
    );
    let erp = erp_at_first_item(&cusdec("IC100", "LRN-E", "9", &["020130"]));
    assert!(last.body.contains(&erp), "{erp} in {}", last.body);
    // The audit trail says the permits expired, not that an agency refused.
    let kinds = kinds(&hub, &held.id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "permit_expired").count(),
        2,
        "{kinds:?}"
    );
    assert!(
        !kinds
            .iter()
            .any(|k| k == "permit_refused" || k == "permits_refused"),
        "{kinds:?}"
    );
    // Each agency is told on its permit queue that its request expired.
    let outbox = hub.intake.store().pending_outbox(10_000).await.unwrap();
    for p in &permits {
        let notice = outbox
            .iter()
            .find(|m| m.message.message_id == format!("{}/expired", p.id))
            .unwrap_or_else(|| {
                let ids: Vec<&str> = outbox
                    .iter()
                    .map(|m| m.message.message_id.as_str())
                    .collect();
                panic!("no expiry notice for {}: {ids:?}", p.id)
            });
        assert_eq!(notice.message.routing_key, format!("permit.{}", p.agency));
        let body: serde_json::Value = serde_json::from_slice(&notice.message.payload).unwrap();
        assert_eq!(body["type"], "permit.expired");
        assert_eq!(body["declaration_id"], held.id.as_str());
    }
    // A late answer finds the permit closed.
    let late = hub
        .intake
        .decide(
            &hub.mfds,
            &decision(&permits[1].id, PermitOutcome::Granted, "late"),
        )
        .await
        .unwrap();
    assert_eq!(late, DecisionOutcome::AlreadyDecided("expired".into()));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn red_lane_holds_for_examination_until_an_officer_releases() {
    let dir = std::env::temp_dir().join(format!("tradehub-red-{}", uuid::Uuid::now_v7()));
    let risk = "[[rule]]\nid = \"machines\"\nlane = \"red\"\nreason = \"x-ray\"\nhs = [\"84\"]\n";
    let hub = hub(&Store::embedded_url(&dir).unwrap(), clearance(risk, 60)).await;
    let d = submit(&hub, cusdec("IC200", "LRN-F", "9", &["847989"])).await;
    assert_eq!(d[0].status, state::HELD);
    assert_eq!(d[0].lane.as_deref(), Some("red"));
    let events = hub
        .intake
        .store()
        .declaration_events(&d[0].id)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e.detail.contains("machines: x-ray")),
        "{events:?}"
    );
    // A broker is not an officer; the HTTP layer refuses it, and the
    // workflow itself only releases from a releasable state.
    let (released, changed) = hub
        .intake
        .release(&hub.officer, &d[0].id, "examined")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((released.status.as_str(), changed), (state::RELEASED, true));
    let (again, changed) = hub
        .intake
        .release(&hub.officer, &d[0].id, "")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.status.as_str(), changed), (state::RELEASED, false));
    let kinds = kinds(&hub, &d[0].id).await;
    assert_eq!(kinds.iter().filter(|k| *k == "released").count(), 1);
    // Held at intake (no permits), then released: the two CUSRES are the
    // sender's answers number 0 and 1, whatever the path.
    assert_eq!(answer_numbers(&hub, &d[0].id).await, ["00", "01"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// An amendment never lowers the lane of the declaration it replaces: a
/// declaration held for examination stays held when amended, even when the
/// rule that put it in the red lane does not match the amendment; and the
/// random draw is the MRN's, so an amendment draws what its original drew.
#[tokio::test]
async fn an_amendment_keeps_the_lane_it_replaces() {
    let dir = std::env::temp_dir().join(format!("tradehub-lane-{}", uuid::Uuid::now_v7()));
    let risk = "[[rule]]\nid = \"first-look\"\nlane = \"red\"\nreason = \"examine originals\"\nfunctions = [\"original\"]\n\n[[rule]]\nid = \"sample\"\nlane = \"yellow\"\nreason = \"random\"\nsample_percent = 50\n";
    let hub = hub(&Store::embedded_url(&dir).unwrap(), clearance(risk, 60)).await;
    let d = submit(&hub, cusdec("IC300", "LRN-R", "9", &["847989"])).await;
    assert_eq!(
        (d[0].status.as_str(), d[0].lane.as_deref()),
        (state::HELD, Some("red"))
    );
    let a = submit(&hub, cusdec("IC301", "LRN-R", "5", &["847989", "847990"])).await;
    assert_eq!(
        (
            a[0].status.as_str(),
            a[0].lane.as_deref(),
            a[0].mrn.as_ref()
        ),
        (state::HELD, Some("red"), d[0].mrn.as_ref())
    );
    let events = hub
        .intake
        .store()
        .declaration_events(&a[0].id)
        .await
        .unwrap();
    assert!(
        events.iter().any(|e| e
            .detail
            .contains(&format!("kept from declaration {}", d[0].id))),
        "{events:?}"
    );
    // Without the red rule, the sample's draw decides: the same for each
    // original and its amendment (it follows the MRN), and over twelve
    // originals both outcomes occur.
    let risk =
        "[[rule]]\nid = \"sample\"\nlane = \"yellow\"\nreason = \"random\"\nsample_percent = 50\n";
    let dir2 = std::env::temp_dir().join(format!("tradehub-lane-{}", uuid::Uuid::now_v7()));
    let hub = sampled(&dir2, clearance(risk, 60)).await;
    let mut lanes = Vec::new();
    for i in 0..12 {
        let lrn = format!("LRN-S{i}");
        // Beef: awaiting its permit, so still open to amendment.
        let o = submit(&hub, cusdec(&format!("IC4{i:02}"), &lrn, "9", &["020130"])).await;
        let a = submit(&hub, cusdec(&format!("IC5{i:02}"), &lrn, "5", &["020130"])).await;
        assert_eq!(a[0].status, state::AWAITING_PERMITS, "{lrn}");
        assert_eq!(a[0].lane, o[0].lane, "{lrn}");
        lanes.push(o[0].lane.clone());
    }
    assert!(lanes.contains(&Some("yellow".into())) && lanes.contains(&Some("green".into())));
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(dir2);
}

async fn sampled(dir: &std::path::Path, clearance: Clearance) -> Hub {
    hub(&Store::embedded_url(dir).unwrap(), clearance).await
}

/// The last two characters of each stored EDIFACT response's interchange
/// control reference (UNB 0020): the number of the answer to its sender.
async fn answer_numbers(hub: &Hub, declaration: &str) -> Vec<String> {
    hub.intake
        .store()
        .responses_of(declaration)
        .await
        .unwrap()
        .into_iter()
        .map(|r| {
            let parsed = tradehub::edifact::parse(r.body.as_bytes());
            let reference = parsed.interchange.control_reference;
            reference[reference.len() - 2..].to_owned()
        })
        .collect()
}

/// Waits (20 s at most) until a session of this database waits for a lock:
/// the submission a test staged a race for has reached the row it holds.
async fn wait_for_a_lock(watcher: &mut sqlx::PgConnection, who: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut *watcher)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{who} never waited");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Submits `bytes` (an amendment of declaration `original`) while a
/// transaction of the test holds that declaration's row, and, once the
/// submission waits for the row, makes `change` to it and commits: a race
/// staged on PostgreSQL. Returns the interchange the submission stored.
async fn amend_racing(
    hub: &Hub,
    url: &str,
    original: &str,
    change: &str,
    bytes: Vec<u8>,
) -> String {
    use sqlx::Connection;
    let mut racer = sqlx::PgConnection::connect(url).await.unwrap();
    let mut tx = racer.begin().await.unwrap();
    sqlx::query("SELECT id FROM declarations WHERE id = $1 FOR UPDATE")
        .bind(original)
        .execute(&mut *tx)
        .await
        .unwrap();
    let intake = hub.intake.clone();
    let broker = hub.broker.clone();
    let amendment = tokio::spawn(async move { intake.submit(&broker, bytes).await });
    // Wait until the amendment's transaction waits for the row.
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    wait_for_a_lock(&mut watcher, "the amendment").await;
    sqlx::query(&format!("UPDATE declarations SET {change} WHERE id = $1"))
        .bind(original)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    match amendment.await.unwrap().unwrap() {
        Submission::Stored(r) => r.interchange.id,
        other => panic!("not stored: {other:?}"),
    }
}

/// An amendment that races an agency decision: it read its declaration as
/// awaiting permits, but the decision cleared it before the amendment
/// committed. The amendment is worked out again from the new state (and
/// rejected with RUL008: a cleared declaration can no longer be amended)
/// instead of failing the submission. On PostgreSQL, where the race can be
/// staged: a transaction of the test holds the declaration's row while the
/// amendment waits for it, then clears it and commits.
#[tokio::test]
async fn an_amendment_racing_a_decision_is_worked_out_again() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let hub = hub(&url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let d = submit(&hub, cusdec("IC101", "LRN-R", "9", &["020130"])).await;
    assert_eq!(d[0].status, state::AWAITING_PERMITS);
    let original = d[0].id.clone();
    let amendment = cusdec("IC102", "LRN-R", "5", &["020130"]);
    let id = amend_racing(&hub, &url, &original, "status = 'cleared'", amendment).await;
    let d = store.declarations_of(&id).await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    let aperak = store.responses_of(&d[0].id).await.unwrap().pop().unwrap();
    assert!(aperak.body.contains("ERC+RUL008::ZZZ'"), "{}", aperak.body);
    let old = store.declaration(&original).await.unwrap().unwrap();
    assert_eq!(old.status, state::CLEARED);
    // Nothing of the first attempt was kept: one interchange each.
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 2);
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// An amendment that races an officer's hold: it read its declaration in
/// the green lane, but the hold put it in the red lane (awaiting permits,
/// only the lane changes) before the amendment committed. The amendment
/// is worked out again and keeps the red lane, as one sent after the hold
/// does; before, it took the lane it had read and left examination.
#[tokio::test]
async fn an_amendment_racing_a_hold_keeps_the_red_lane() {
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let hub = hub(&url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let d = submit(&hub, cusdec("IC111", "LRN-H", "9", &["020130"])).await;
    assert_eq!(
        (d[0].status.as_str(), d[0].lane.as_deref()),
        (state::AWAITING_PERMITS, Some("green"))
    );
    let amendment = cusdec("IC112", "LRN-H", "5", &["020130"]);
    let id = amend_racing(&hub, &url, &d[0].id, "lane = 'red'", amendment).await;
    let a = store.declarations_of(&id).await.unwrap();
    assert_eq!(
        (a[0].status.as_str(), a[0].lane.as_deref()),
        (state::AWAITING_PERMITS, Some("red"))
    );
    assert_eq!(status_of(&store, &d[0].id).await, state::AMENDED);
    assert_eq!(store.count(Table::Interchanges).await.unwrap(), 2);
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// Two originals with one LRN racing: the second found no live declaration
/// when it looked, but one went live before it committed. The index of live
/// LRNs makes its commit fail, and it is worked out again: RUL009, one
/// live declaration. Staged on PostgreSQL: the test's transaction makes an
/// earlier, rejected declaration live again and holds that until the
/// submission waits for it.
#[tokio::test]
async fn two_originals_with_one_lrn_leave_one_live_declaration() {
    use sqlx::Connection;
    let Some((url, name)) = common::pg_database().await else {
        return;
    };
    let hub = hub(&url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let d = submit(&hub, cusdec("IC201", "LRN-TWICE", "9", &["847989"])).await;
    let first = d[0].id.clone();
    let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE declarations SET status = 'rejected' WHERE id = $1")
        .bind(&first)
        .execute(&mut other)
        .await
        .unwrap();

    let mut tx = other.begin().await.unwrap();
    sqlx::query("UPDATE declarations SET status = 'cleared' WHERE id = $1")
        .bind(&first)
        .execute(&mut *tx)
        .await
        .unwrap();
    let intake = hub.intake.clone();
    let broker = hub.broker.clone();
    let second = tokio::spawn(async move {
        intake
            .submit(&broker, cusdec("IC202", "LRN-TWICE", "9", &["847989"]))
            .await
    });
    let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
    wait_for_a_lock(&mut watcher, "the second original").await;
    tx.commit().await.unwrap();

    let id = match second.await.unwrap().unwrap() {
        Submission::Stored(r) => r.interchange.id,
        other => panic!("not stored: {other:?}"),
    };
    let d = store.declarations_of(&id).await.unwrap();
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL009"]);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM declarations WHERE lrn = 'LRN-TWICE' \
         AND status NOT IN ('rejected', 'amended', 'cancelled')",
    )
    .fetch_one(&mut watcher)
    .await
    .unwrap();
    assert_eq!(live, 1);
    store.close().await;
    common::drop_pg_database(&name).await;
}

/// The hub traces each message's own fields as it maps (not every goods
/// item's values), and a message with a finding whole: a goods item's
/// finding is still located at its segment and element, and a finding the
/// hub adds later about the message's LRN at the BGM that gave it.
#[tokio::test]
async fn findings_are_located_at_their_segments() {
    on_sqlite(findings_located).await;
}

async fn findings_located(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let places = async |d: &StoredDeclaration| -> Vec<String> {
        stored_errors(&store, d)
            .await
            .iter()
            .map(|i| {
                let l = &i.location;
                format!(
                    "{} {} #{} e{} {}",
                    i.code.as_str(),
                    l.tag.as_deref().unwrap_or("-"),
                    l.message_segment.unwrap_or(0),
                    l.element.unwrap_or(0),
                    l.field.as_deref().unwrap_or("-")
                )
            })
            .collect()
    };
    // Item 2's HS code (CST, segment 12 of the message) is no HS code.
    let d = submit(&hub, cusdec("IC301", "LRN-LOC", "9", &["847989", "12AB"])).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(places(&d[0]).await, ["RUL002 CST #12 e2 /goods/1/hs_code"]);
    // An original whose LRN is live already: at the BGM (segment 2), its
    // element 2.
    let d = submit(&hub, cusdec("IC302", "LRN-TAKEN", "9", &["847989"])).await;
    assert_ne!(d[0].status, state::REJECTED);
    let d = submit(&hub, cusdec("IC303", "LRN-TAKEN", "9", &["847989"])).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(places(&d[0]).await, ["RUL009 BGM #2 e2 /lrn"]);
    store.close().await;
}

/// The errors of a stored declaration as `CODE path` (the element path of
/// a WCO message).
async fn error_places(store: &Store, d: &StoredDeclaration) -> Vec<String> {
    stored_errors(store, d)
        .await
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i.code.as_str(),
                i.location.path.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// The errors the hub stored with a declaration.
async fn stored_errors(store: &Store, d: &StoredDeclaration) -> Vec<tradehub::diag::Issue> {
    let stored = store.declaration(&d.id).await.unwrap().unwrap();
    let issues: Vec<tradehub::diag::Issue> = serde_json::from_str(&stored.issues_json).unwrap();
    issues.into_iter().filter(|i| i.is_error()).collect()
}

/// The canonical declaration of a stored one, as the hub keeps it.
async fn canonical(hub: &Hub, d: &StoredDeclaration) -> tradehub::model::Declaration {
    let stored = stored(hub, &d.id).await;
    serde_json::from_str(stored.canonical_json.as_deref().unwrap()).unwrap()
}

/// `declaration` as a WCO DEC (the shipped writer), submitted.
async fn submit_wco(
    hub: &Hub,
    declaration: &tradehub::model::Declaration,
) -> Vec<StoredDeclaration> {
    let written = tradehub::mapping::wco_out::write_declaration(declaration).unwrap();
    submit(hub, written.xml.into_bytes()).await
}

/// The stored status of a declaration.
async fn status_of(store: &Store, id: &str) -> String {
    store.declaration(id).await.unwrap().unwrap().status
}

/// `base` as another declaration: its function, LRN and quoted MRN.
fn variant(
    base: &tradehub::model::Declaration,
    function: tradehub::model::DeclarationFunction,
    lrn: &str,
    mrn: impl Into<String>,
) -> tradehub::model::Declaration {
    tradehub::model::Declaration {
        function,
        lrn: lrn.into(),
        mrn: Some(mrn.into()),
        ..base.clone()
    }
}

/// In the WCO Data Model an amendment or a cancellation names the
/// declaration by its MRN (Declaration/ID) and carries a reference of its
/// own (FunctionalReferenceID), as HMRC's CDS amendment sample does: the
/// hub finds the declaration by the MRN, whichever format it came in.
async fn references_by_mrn(url: &str) {
    use tradehub::model::DeclarationFunction;
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    // The declarant of the generated CUSDEC files its WCO XML through the
    // same partner account.
    store.add_trader_id(SENDER, "1234567890").await.unwrap();

    // An EDIFACT original awaiting a permit, with its MRN.
    let d = submit(&hub, cusdec("IW001", "LRN-W", "9", &["020130"])).await;
    assert_eq!(d[0].status, state::AWAITING_PERMITS);
    let original = d[0].clone();
    let mrn = original.mrn.clone().unwrap();
    let base = canonical(&hub, &original).await;

    // An amendment quoting an MRN no declaration of this sender has is
    // refused (RUL008), pointed at the MRN, and changes nothing.
    let wrong = variant(
        &base,
        DeclarationFunction::Amendment,
        "LRN-W-AME-1",
        "26KRNOSUCHMRN0000A",
    );
    let d = submit_wco(&hub, &wrong).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored.issues_json.contains("26KRNOSUCHMRN0000A")
            && stored.issues_json.contains("\"/mrn\""),
        "{}",
        stored.issues_json
    );
    let answer = store.responses_of(&d[0].id).await.unwrap().pop().unwrap();
    assert_eq!(answer.kind, "res");
    assert!(answer.body.contains("RUL008"), "{}", answer.body);
    // The WCO RES points at Declaration/ID (class 42A, data element D014).
    let pointer: String = answer
        .body
        .split("<res:Pointer>")
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert!(
        pointer.starts_with(
            "<res:DocumentSectionCode>42A</res:DocumentSectionCode><res:TagID>D014</res:TagID></res:Pointer>"
        ),
        "{}",
        answer.body
    );
    assert_eq!(
        status_of(&store, &original.id).await,
        state::AWAITING_PERMITS
    );

    // With the right MRN but another declarant: refused (RUL008) at the
    // declarant, the original unchanged. An amendment cannot move a
    // declaration to another declarant, whose LRNs it would then escape.
    let mut moving = variant(
        &base,
        DeclarationFunction::Amendment,
        "LRN-W-AME-3",
        mrn.clone(),
    );
    if let Some(declarant) = moving.declarant.as_mut() {
        declarant.id = Some("9999999999".into());
    }
    // (A declarant the partner files for as well.)
    store.add_trader_id(SENDER, "9999999999").await.unwrap();
    let d = submit_wco(&hub, &moving).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored.issues_json.contains("cannot change the declarant")
            && stored.issues_json.contains("\"/declarant/id\""),
        "{}",
        stored.issues_json
    );
    assert_eq!(
        status_of(&store, &original.id).await,
        state::AWAITING_PERMITS
    );

    // With the right MRN and a reference of its own, it amends the
    // original, whose MRN it keeps.
    let amendment = variant(
        &base,
        DeclarationFunction::Amendment,
        "LRN-W-AME-2",
        mrn.clone(),
    );
    let d = submit_wco(&hub, &amendment).await;
    assert_eq!(
        d[0].status,
        state::AWAITING_PERMITS,
        "{:?}",
        issue_codes(&hub, &d[0]).await
    );
    let amended = d[0].clone();
    assert_eq!(amended.mrn.as_deref(), Some(mrn.as_str()));
    assert_eq!(amended.lrn.as_deref(), Some("LRN-W-AME-2"));
    assert_eq!(status_of(&store, &original.id).await, state::AMENDED);

    // An amendment may not go live under the LRN of another live
    // declaration of the sender: refused (RUL009) at once, not retried.
    let other = submit(&hub, cusdec("IW002", "LRN-W-OTHER", "9", &["020130"])).await;
    assert_eq!(other[0].status, state::AWAITING_PERMITS);
    let taking = variant(
        &base,
        DeclarationFunction::Amendment,
        "LRN-W-OTHER",
        mrn.clone(),
    );
    let d = submit_wco(&hub, &taking).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL009"]);
    assert_eq!(
        status_of(&store, &amended.id).await,
        state::AWAITING_PERMITS
    );
    assert_eq!(
        status_of(&store, &other[0].id).await,
        state::AWAITING_PERMITS
    );

    // An original may not quote an MRN: customs issues it.
    let quoting = variant(
        &base,
        DeclarationFunction::Original,
        "LRN-W-NEW",
        mrn.clone(),
    );
    let d = submit_wco(&hub, &quoting).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);

    // A cancellation quoting the MRN cancels the declaration now holding
    // it (the amendment); its answer quotes the MRN.
    let cancel = variant(
        &base,
        DeclarationFunction::Cancellation,
        "LRN-W-CAN-1",
        mrn.clone(),
    );
    let d = submit_wco(&hub, &cancel).await;
    assert_eq!(
        d[0].status,
        state::ACCEPTED,
        "{:?}",
        issue_codes(&hub, &d[0]).await
    );
    assert_eq!(status_of(&store, &amended.id).await, state::CANCELLED);
    let answer = store.responses_of(&d[0].id).await.unwrap().pop().unwrap();
    assert!(answer.body.contains(&mrn), "{}", answer.body);
    // Nothing live holds the MRN any more.
    let again = variant(&base, DeclarationFunction::Cancellation, "LRN-W-CAN-2", mrn);
    let d = submit_wco(&hub, &again).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    store.close().await;
}

#[tokio::test]
async fn references_by_mrn_on_sqlite() {
    on_sqlite(references_by_mrn).await;
}

#[tokio::test]
async fn references_by_mrn_on_postgres() {
    on_postgres(references_by_mrn).await;
}

/// HMRC's cancellation request (its CANCEL.xsd, the corpus sample
/// TT_EX010a): FunctionCode 13 with TypeCode INV, the MRN of the
/// declaration to cancel as its ID, its own FunctionalReferenceID, the
/// submitter and the reason; no kind, no declarant, no goods. It cancels
/// the sender's live declaration holding the MRN, and the canonical form
/// keeps the reason.
async fn cancellation_requests(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    // The request's Submitter files through the same partner account.
    store.add_trader_id(SENDER, "GB150454489082").await.unwrap();
    let sample = std::fs::read_to_string(repo(
        "fixtures/wco/corpus/valid/hmrc__TT_EX010a__TT_EX010a_Cancellation.xml",
    ))
    .unwrap();
    let request = |mrn: &str, reference: &str| {
        sample
            .replace("24GBDIRIGZ7QLCPAA8", mrn)
            .replace("U.7867523JNCOL", reference)
            .into_bytes()
    };
    let errors = async |d: &StoredDeclaration| error_places(&store, d).await;

    // An EDIFACT original awaiting a permit, with its MRN.
    let d = submit(&hub, cusdec("IX001", "LRN-X", "9", &["020130"])).await;
    assert_eq!(d[0].status, state::AWAITING_PERMITS);
    let original = d[0].clone();
    let mrn = original.mrn.clone().unwrap();

    // The sample as published names an MRN this sender has not: refused,
    // at the MRN (Declaration/ID), and nothing changes.
    let d = submit(&hub, sample.clone().into_bytes()).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(errors(&d[0]).await, ["RUL008 /Declaration/ID"]);
    assert_eq!(
        status_of(&store, &original.id).await,
        state::AWAITING_PERMITS
    );

    // Naming the original's MRN, it cancels it: accepted, the original
    // cancelled with its pending permit withdrawn, the answer (WCO RES)
    // quoting the MRN.
    let d = submit(&hub, request(&mrn, "U.CANCEL-1")).await;
    assert_eq!(d[0].status, state::ACCEPTED, "{:?}", errors(&d[0]).await);
    assert_eq!(d[0].function.as_deref(), Some("cancellation"));
    assert_eq!(d[0].lrn.as_deref(), Some("U.CANCEL-1"));
    assert_eq!(status_of(&store, &original.id).await, state::CANCELLED);
    let permits = store.permits_of(&original.id).await.unwrap();
    assert!(!permits.is_empty());
    assert!(permits.iter().all(|p| p.status != "pending"), "{permits:?}");
    // Its kind is the cancelled declaration's.
    let request_form = canonical(&hub, &d[0]).await;
    assert_eq!(request_form.kind, canonical(&hub, &original).await.kind);
    assert_eq!(
        request_form.reason.as_deref(),
        Some("This is a duplicate, please can")
    );
    assert_eq!(request_form.changes.len(), 1);
    assert_eq!(request_form.changes[0].reason_code.as_deref(), Some("1"));
    let answer = store.responses_of(&d[0].id).await.unwrap().pop().unwrap();
    assert_eq!(answer.kind, "res");
    assert_eq!(answer.status, state::CANCELLED);
    assert!(answer.body.contains(&mrn), "{}", answer.body);

    // A second request for the same MRN finds nothing live to cancel.
    let d = submit(&hub, request(&mrn, "U.CANCEL-2")).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(errors(&d[0]).await, ["RUL008 /Declaration/ID"]);
    store.close().await;
}

#[tokio::test]
async fn cancellation_requests_on_sqlite() {
    on_sqlite(cancellation_requests).await;
}

#[tokio::test]
async fn cancellation_requests_on_postgres() {
    on_postgres(cancellation_requests).await;
}

/// HMRC's CDS amendment carries only its changes (the corpus sample
/// TT_Add_Item Step 2: the goods item count, 42A tag 228, and package
/// count, 42A tag 146, and goods item 3, 42A/67A/68A sequence 3), and no
/// kind (TypeCode COR): the hub applies it to the declaration holding the
/// MRN and judges the result whole.
async fn delta_amendments(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let sample = std::fs::read_to_string(repo(
        "fixtures/wco/corpus/valid/hmrc__TT_Add_Item_Scenario_v1__Step2_Amendment.xml",
    ))
    .unwrap();
    let errors = async |d: &StoredDeclaration| error_places(&store, d).await;

    // An EDIFACT original of two goods items awaiting a permit.
    let d = submit(&hub, cusdec("IY001", "LRN-Y", "9", &["020130", "847989"])).await;
    assert_eq!(d[0].status, state::AWAITING_PERMITS);
    let original = d[0].clone();
    let mrn = original.mrn.clone().unwrap();
    let amendment = |reference: &str| {
        sample
            .replace("23GB6W3GLSX9Z5JAR4", &mrn)
            .replace("CCDP-4108_AME_20230621-01", reference)
    };

    // Judged whole: an item count that is not the number of items once
    // item 3 is added is RUL003, located in the amendment; the original is
    // untouched.
    let miscounted = amendment("AME-1").replace(
        "<GoodsItemQuantity>3</GoodsItemQuantity>",
        "<GoodsItemQuantity>4</GoodsItemQuantity>",
    );
    let d = submit(&hub, miscounted.into_bytes()).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(
        errors(&d[0]).await,
        ["RUL003 /Declaration/GoodsItemQuantity"]
    );
    assert_eq!(
        status_of(&store, &original.id).await,
        state::AWAITING_PERMITS
    );

    // A value no change names, a pointer to nothing: refused (RUL008),
    // each located.
    let unnamed = amendment("AME-2").replace("<TagID>146</TagID>", "<TagID>228</TagID>");
    let d = submit(&hub, unnamed.into_bytes()).await;
    assert_eq!(
        errors(&d[0]).await,
        ["RUL008 /Declaration/TotalPackageQuantity"]
    );
    let nowhere = amendment("AME-3").replacen(
        "<DocumentSectionCode>67A</DocumentSectionCode>",
        "<DocumentSectionCode>02A</DocumentSectionCode>",
        1,
    );
    let d = submit(&hub, nowhere.into_bytes()).await;
    let found = errors(&d[0]).await;
    assert!(
        found
            .first()
            .is_some_and(|e| e.starts_with("RUL008 /Declaration/Amendment")),
        "{found:?}"
    );
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored
            .issues_json
            .contains("names no class or data element"),
        "{}",
        stored.issues_json
    );

    // What the declaration is cannot be changed by a change: a pointer to
    // its TypeCode (42A tag D013), or an amendment stating another kind.
    let with_change = |xml: String, tag: &str| {
        let extra = format!(
            "<Amendment><ChangeReasonCode>32</ChangeReasonCode><Pointer>\
             <SequenceNumeric>1</SequenceNumeric><DocumentSectionCode>42A</DocumentSectionCode>\
             <TagID>{tag}</TagID></Pointer></Amendment>"
        );
        let at = xml.rfind("</Amendment>").unwrap() + "</Amendment>".len();
        format!("{}{extra}{}", &xml[..at], &xml[at..])
    };
    let retyped = with_change(amendment("AME-5"), "D013");
    let d = submit(&hub, retyped.into_bytes()).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(errors(&d[0]).await, ["RUL008 /Declaration/Amendment[4]"]);
    let exported =
        amendment("AME-6").replace("<TypeCode>COR</TypeCode>", "<TypeCode>EXA</TypeCode>");
    let d = submit(&hub, exported.into_bytes()).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(errors(&d[0]).await, ["RUL008 /Declaration/TypeCode"]);
    assert_eq!(
        status_of(&store, &original.id).await,
        state::AWAITING_PERMITS
    );

    // As published, it amends the original: three goods items in order,
    // the original's kind and parties, the amendment's totals, references
    // and reason.
    // (With a change to an element the canonical model does not hold,
    // 42A tag 504 specific circumstances: reported, nothing else.)
    let d = submit(&hub, with_change(amendment("AME-4"), "504").into_bytes()).await;
    assert_ne!(d[0].status, state::REJECTED, "{:?}", errors(&d[0]).await);
    assert_eq!(status_of(&store, &original.id).await, state::AMENDED);
    assert_eq!(d[0].mrn.as_deref(), Some(mrn.as_str()));
    assert_eq!(d[0].lrn.as_deref(), Some("AME-4"));
    let amended = canonical(&hub, &d[0]).await;
    let base = canonical(&hub, &original).await;
    assert_eq!(amended.kind, base.kind);
    assert_eq!(amended.declarant, base.declarant);
    assert_eq!(amended.importer, base.importer);
    assert_eq!(amended.type_code, base.type_code);
    assert_eq!(amended.totals.items, Some(3));
    assert_eq!(amended.totals.packages, Some(80));
    assert_eq!(
        amended.goods.iter().map(|g| g.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(amended.goods[..2], base.goods[..]);
    assert_eq!(amended.goods[2].hs_code.as_deref(), Some("85102000"));
    assert_eq!(amended.changes.len(), 4);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored
            .issues_json
            .contains("is not held by the canonical model"),
        "{}",
        stored.issues_json
    );
    assert_eq!(
        amended.reason.as_deref(),
        Some("Amend GoodsItemQuantity DE 1/9 - Tag 228")
    );
    store.close().await;
}

#[tokio::test]
async fn delta_amendments_on_sqlite() {
    on_sqlite(delta_amendments).await;
}

#[tokio::test]
async fn delta_amendments_on_postgres() {
    on_postgres(delta_amendments).await;
}

/// A NUL in the interchange or message reference (outside every syntax
/// level's repertoire) is rejected with a CONTRL and recorded, on
/// PostgreSQL too, whose text cannot hold the character (it was a storage
/// failure, HUB501, with nothing recorded).
async fn nul_in_references(url: &str) {
    let hub = hub(url, clearance("", 60)).await;
    let bytes = String::from_utf8(common::cusdec(
        SENDER,
        "N0\u{0}1",
        "LRN-NUL",
        "9",
        &["847989"],
    ))
    .unwrap()
    .replace("UNH+1+", "UNH+1\u{0}+")
    .into_bytes();
    let outcome = hub.intake.submit(&hub.broker, bytes.clone()).await.unwrap();
    let Submission::Stored(r) = outcome else {
        panic!("not stored: {outcome:?}");
    };
    assert_eq!(r.interchange.status, "rejected");
    assert!(r.interchange.acknowledgement.contains("CONTRL"));
    assert!(
        r.issues.iter().any(|i| i.code.as_str() == "E0021"),
        "{:?}",
        r.issues
    );
    // Sent again: the same interchange, answered once stored.
    let again = hub.intake.submit(&hub.broker, bytes).await.unwrap();
    assert!(matches!(again, Submission::Duplicate(d) if d.interchange.id == r.interchange.id));
}

#[tokio::test]
async fn nul_in_references_on_sqlite() {
    on_sqlite(nul_in_references).await;
}

#[tokio::test]
async fn nul_in_references_on_postgres() {
    on_postgres(nul_in_references).await;
}

/// What `partner` submitted, as stored.
async fn submit_as(hub: &Hub, partner: &Partner, bytes: Vec<u8>) -> Vec<StoredDeclaration> {
    let id = match hub.intake.submit(partner, bytes).await.unwrap() {
        Submission::Stored(r) => r.interchange.id,
        other => panic!("not stored: {other:?}"),
    };
    hub.intake.store().declarations_of(&id).await.unwrap()
}

/// An LRN is unique per declarant (NAD+DT, WCO Declarant/ID), not per
/// sending partner: two partners registered for one declarant share its
/// LRNs, one partner filing for two declarants does not mix theirs, and a
/// partner that is not registered for a declarant it names can neither
/// take nor change that declarant's LRNs.
async fn lrns_per_declarant(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    const DECLARANT: &str = "1234567890";
    for id in ["KRBROKER02", "KRBROKER03"] {
        store
            .add_partner(id, id, &format!("hash-{id}"), Timestamp::now())
            .await
            .unwrap();
    }
    store.add_trader_id(SENDER, DECLARANT).await.unwrap();
    store.add_trader_id("KRBROKER02", DECLARANT).await.unwrap();
    let second = store.partner("KRBROKER02").await.unwrap().unwrap();
    let unregistered = store.partner("KRBROKER03").await.unwrap().unwrap();
    let filed = |sender: &str, reference: &str, declarant: &str, function: &str| {
        let text = String::from_utf8(common::cusdec(
            sender,
            reference,
            "LRN-SHARED",
            function,
            &["020130"],
        ))
        .unwrap();
        text.replace(
            &format!("NAD+DT+{DECLARANT}::ZZZ"),
            &format!("NAD+DT+{declarant}::ZZZ"),
        )
        .into_bytes()
    };

    let first = submit(&hub, filed(SENDER, "ID001", DECLARANT, "9")).await;
    assert_eq!(first[0].status, state::AWAITING_PERMITS);
    // The same declarant's LRN through another registered partner: a
    // duplicate.
    let d = submit_as(&hub, &second, filed("KRBROKER02", "ID002", DECLARANT, "9")).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL009"]);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored.issues_json.contains(&first[0].id),
        "{}",
        stored.issues_json
    );
    // A partner not registered for the declarant does not reach its LRNs.
    let d = submit_as(
        &hub,
        &unregistered,
        filed("KRBROKER03", "ID003", DECLARANT, "9"),
    )
    .await;
    assert_eq!(
        d[0].status,
        state::AWAITING_PERMITS,
        "{:?}",
        issue_codes(&hub, &d[0]).await
    );
    // One partner filing for another declarant: its own LRNs.
    let other = submit(&hub, filed(SENDER, "ID004", "5555555555", "9")).await;
    assert_eq!(
        other[0].status,
        state::AWAITING_PERMITS,
        "{:?}",
        issue_codes(&hub, &other[0]).await
    );
    // … which that declarant cannot use twice.
    let d = submit(&hub, filed(SENDER, "ID005", "5555555555", "9")).await;
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL009"]);

    // The other registered partner amends the declarant's declaration.
    let d = submit_as(&hub, &second, filed("KRBROKER02", "ID006", DECLARANT, "5")).await;
    assert_eq!(
        d[0].status,
        state::AWAITING_PERMITS,
        "{:?}",
        issue_codes(&hub, &d[0]).await
    );
    let replaced = store.declaration(&first[0].id).await.unwrap().unwrap();
    assert_eq!(replaced.status, state::AMENDED);
    assert_eq!(d[0].mrn, replaced.mrn, "an amendment keeps the MRN");
    // The unregistered partner's cancellation reaches only what it
    // declared itself; the registered declarant's amendment stays live.
    let d = submit_as(
        &hub,
        &unregistered,
        filed("KRBROKER03", "ID007", DECLARANT, "1"),
    )
    .await;
    assert_eq!(d[0].status, state::ACCEPTED);
    let amendment = store
        .declarations(Some(state::AWAITING_PERMITS), Some("KRBROKER02"), 10)
        .await
        .unwrap();
    assert_eq!(amendment.len(), 1, "{amendment:?}");
    let own = store
        .declarations(Some(state::CANCELLED), Some("KRBROKER03"), 10)
        .await
        .unwrap();
    assert_eq!(own.len(), 1, "{own:?}");
    // One live declaration per scope: the declarant's, the unregistered
    // partner's cancellation, the other declarant's.
    let live = store
        .declarations(None, None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| !["rejected", "amended", "cancelled"].contains(&d.status.as_str()))
        .count();
    assert_eq!(live, 3);
    // Paged one at a time, the list is the same, in the same order.
    let whole = store.declarations(None, None, 100).await.unwrap();
    let mut paged: Vec<tradehub::store::StoredDeclaration> = Vec::new();
    loop {
        let page = store
            .declarations_after(None, None, paged.last(), 1)
            .await
            .unwrap();
        let Some(next) = page.into_iter().next() else {
            break;
        };
        paged.push(next);
        assert!(paged.len() <= whole.len(), "{paged:?}");
    }
    assert_eq!(paged, whole);
    store.close().await;
}

#[tokio::test]
async fn lrns_per_declarant_on_sqlite() {
    on_sqlite(lrns_per_declarant).await;
}

#[tokio::test]
async fn lrns_per_declarant_on_postgres() {
    on_postgres(lrns_per_declarant).await;
}

/// The edges of LRN scopes: a partner that registers for a declarant it
/// filed for before still sees its earlier LRNs; partner and declarant
/// identifiers with `/` in them do not run together; and a message that
/// names no declarant, for an LRN the partner used for several, is refused
/// instead of changing one of them at random.
async fn lrn_scope_edges(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let with_declarant = |sender: &str, reference: &str, lrn: &str, function: &str, id: &str| {
        let text = String::from_utf8(common::cusdec(
            sender,
            reference,
            lrn,
            function,
            &["020130"],
        ))
        .unwrap();
        text.replace("NAD+DT+1234567890::ZZZ", &format!("NAD+DT+{id}::ZZZ"))
            .into_bytes()
    };

    // Filed before the partner was registered for the declarant, then
    // again after: a duplicate all the same.
    let before = submit(
        &hub,
        with_declarant(SENDER, "IE001", "LRN-R", "9", "1234567890"),
    )
    .await;
    assert_eq!(before[0].status, state::AWAITING_PERMITS);
    store.add_trader_id(SENDER, "1234567890").await.unwrap();
    let again = submit(
        &hub,
        with_declarant(SENDER, "IE002", "LRN-R", "9", "1234567890"),
    )
    .await;
    assert_eq!(issue_codes(&hub, &again[0]).await, ["RUL009"]);

    // Partner "KR/A" for declarant "X9" and partner "KR" for declarant
    // "A/X9" are different declarations.
    for id in ["KR/A", "KR"] {
        store
            .add_partner(id, id, &format!("hash-{id}"), Timestamp::now())
            .await
            .unwrap();
    }
    let slash = store.partner("KR/A").await.unwrap().unwrap();
    let plain = store.partner("KR").await.unwrap().unwrap();
    let theirs = submit_as(
        &hub,
        &slash,
        with_declarant("KR/A", "IE003", "LRN-S", "9", "X9"),
    )
    .await;
    assert_eq!(theirs[0].status, state::AWAITING_PERMITS);
    let mine = submit_as(
        &hub,
        &plain,
        with_declarant("KR", "IE004", "LRN-S", "9", "A/X9"),
    )
    .await;
    assert_eq!(
        mine[0].status,
        state::AWAITING_PERMITS,
        "{:?}",
        issue_codes(&hub, &mine[0]).await
    );
    let cancel = submit_as(
        &hub,
        &plain,
        with_declarant("KR", "IE005", "LRN-S", "1", "A/X9"),
    )
    .await;
    assert_eq!(cancel[0].status, state::ACCEPTED);
    let status = |id: String| {
        let store = store.clone();
        async move { store.declaration(&id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(mine[0].id.clone()).await, state::CANCELLED);
    assert_eq!(status(theirs[0].id.clone()).await, state::AWAITING_PERMITS);

    // One LRN for two declarants the partner is not registered for; a
    // cancellation naming neither is refused, and both stay.
    let one = submit(
        &hub,
        with_declarant(SENDER, "IE006", "LRN-T", "9", "1111111111"),
    )
    .await;
    let two = submit(
        &hub,
        with_declarant(SENDER, "IE007", "LRN-T", "9", "2222222222"),
    )
    .await;
    assert_eq!(two[0].status, state::AWAITING_PERMITS);
    let text = String::from_utf8(common::cusdec(SENDER, "IE008", "LRN-T", "1", &["020130"]))
        .unwrap()
        .replace("NAD+DT+1234567890::ZZZ'", "")
        .replace("UNT+13+1'", "UNT+12+1'");
    let d = submit(&hub, text.into_bytes()).await;
    assert_eq!(d[0].status, state::REJECTED);
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    let stored = store.declaration(&d[0].id).await.unwrap().unwrap();
    assert!(
        stored.issues_json.contains("several declarants"),
        "{}",
        stored.issues_json
    );
    assert_eq!(status(one[0].id.clone()).await, state::AWAITING_PERMITS);
    assert_eq!(status(two[0].id.clone()).await, state::AWAITING_PERMITS);
    store.close().await;
}

#[tokio::test]
async fn lrn_scope_edges_on_sqlite() {
    on_sqlite(lrn_scope_edges).await;
}

#[tokio::test]
async fn lrn_scope_edges_on_postgres() {
    on_postgres(lrn_scope_edges).await;
}

/// One interchange of several CUSDEC messages (as `common::cusdec` writes
/// one), numbered 1, 2, 3 … under one envelope.
fn interchange_of(sender: &str, reference: &str, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut body = String::new();
    for (i, m) in messages.iter().enumerate() {
        let text = String::from_utf8(m.clone()).unwrap();
        let start = text.find("UNH+").unwrap();
        let end = text.find("UNZ+").unwrap();
        let n = i + 1;
        let message = text[start..end]
            .replacen("UNH+1+", &format!("UNH+{n}+"), 1)
            .replace("+1'UNZ", &format!("+{n}'UNZ"));
        let (head, tail) = message.rsplit_once("UNT+").unwrap();
        let count = tail.split('+').next().unwrap();
        body.push_str(&format!("{head}UNT+{count}+{n}'"));
    }
    format!(
        "UNA:+.? 'UNB+UNOC:3+{sender}:ZZZ+TRADEHUB:ZZZ+261124:1030+{reference}'{body}UNZ+{}+{reference}'",
        messages.len()
    )
    .into_bytes()
}

/// Changes in one interchange see each other: an amendment replaces the
/// original for the messages after it, so a cancellation without a
/// declarant that follows finds the amendment alone. And a cancellation
/// naming a declarant whose LRN is held both in the declarant's scope
/// (another registered partner) and in the one the sender filed in before
/// it registered is refused, not applied to the other partner's.
async fn changes_in_one_interchange(url: &str) {
    let hub = hub(url, clearance("", 3600)).await;
    let store = hub.intake.store().clone();
    let no_declarant = |reference: &str, lrn: &str, function: &str| {
        String::from_utf8(common::cusdec(
            SENDER,
            reference,
            lrn,
            function,
            &["020130"],
        ))
        .unwrap()
        .replace("NAD+DT+1234567890::ZZZ'", "")
        .replace("UNT+13+1'", "UNT+12+1'")
        .into_bytes()
    };
    let all = interchange_of(
        SENDER,
        "IF001",
        &[
            common::cusdec(SENDER, "IF001", "LRN-F", "9", &["020130"]),
            common::cusdec(SENDER, "IF001", "LRN-F", "4", &["020130"]),
            no_declarant("IF001", "LRN-F", "1"),
        ],
    );
    let d = submit(&hub, all).await;
    let statuses: Vec<&str> = d.iter().map(|d| d.status.as_str()).collect();
    assert_eq!(
        statuses,
        [state::AMENDED, state::CANCELLED, state::ACCEPTED],
        "{:?}",
        {
            let mut codes = Vec::new();
            for x in &d {
                codes.push(issue_codes(&hub, x).await);
            }
            codes
        }
    );

    // Filed by the sender before it registered for the declarant, and by
    // a registered partner since: a cancellation naming the declarant
    // could mean either.
    store
        .add_partner("QBROKER", "QBROKER", "hash-q", Timestamp::now())
        .await
        .unwrap();
    store.add_trader_id("QBROKER", "1234567890").await.unwrap();
    let other = store.partner("QBROKER").await.unwrap().unwrap();
    let own = submit(
        &hub,
        common::cusdec(SENDER, "IF002", "LRN-E", "9", &["020130"]),
    )
    .await;
    let theirs = submit_as(
        &hub,
        &other,
        common::cusdec("QBROKER", "IF003", "LRN-E", "9", &["020130"]),
    )
    .await;
    assert_eq!(theirs[0].status, state::AWAITING_PERMITS);
    store.add_trader_id(SENDER, "1234567890").await.unwrap();
    let d = submit(
        &hub,
        common::cusdec(SENDER, "IF004", "LRN-E", "1", &["020130"]),
    )
    .await;
    assert_eq!(issue_codes(&hub, &d[0]).await, ["RUL008"]);
    for id in [&own[0].id, &theirs[0].id] {
        let still = store.declaration(id).await.unwrap().unwrap();
        assert_eq!(still.status, state::AWAITING_PERMITS);
    }
    store.close().await;
}

#[tokio::test]
async fn changes_in_one_interchange_on_sqlite() {
    on_sqlite(changes_in_one_interchange).await;
}

#[tokio::test]
async fn changes_in_one_interchange_on_postgres() {
    on_postgres(changes_in_one_interchange).await;
}

/// An interchange marked as a test (UNB 0035) is rejected with 0085 code
/// 25: nothing of it becomes a declaration or a permit request, and its
/// CONTRL says why, at UNB 0035.
#[tokio::test]
async fn a_test_interchange_is_rejected_with_code_25() {
    let dir = std::env::temp_dir().join(format!("tradehub-test-ind-{}", uuid::Uuid::now_v7()));
    let hub = hub(&Store::embedded_url(&dir).unwrap(), clearance("", 60)).await;
    let live = String::from_utf8(cusdec("IC700", "LRN-T", "9", &["020130"])).unwrap();
    let header = "+261124:1030+IC700'";
    assert_eq!(live.matches(header).count(), 1);
    let test = live.replacen(header, "+261124:1030+IC700++++++1'", 1);
    let receipt = match hub
        .intake
        .submit(&hub.broker, test.into_bytes())
        .await
        .unwrap()
    {
        Submission::Stored(r) => r,
        other => panic!("not stored: {other:?}"),
    };
    assert_eq!(receipt.interchange.status, "rejected");
    assert!(
        receipt
            .issues
            .iter()
            .any(|i| i.code == tradehub::diag::Code::TestIndicatorNotSupported),
        "{:?}",
        receipt.issues
    );
    let contrl = &receipt.interchange.acknowledgement;
    // S011 0098 counts the tag as 1: 0035, the eleventh element, is 12.
    assert!(contrl.contains("+4+25+UNB+12'"), "{contrl}");
    let declarations = hub
        .intake
        .store()
        .declarations_of(&receipt.interchange.id)
        .await
        .unwrap();
    assert!(declarations.is_empty());
    // A value that is no test code (`0`, written for "not a test") is
    // rejected as the invalid value it is (code 12 at 0035), not as a test.
    let zero = live
        .replacen(header, "+261124:1030+IC701++++++0'", 1)
        .replacen("UNZ+1+IC700'", "UNZ+1+IC701'", 1);
    let receipt = match hub
        .intake
        .submit(&hub.broker, zero.into_bytes())
        .await
        .unwrap()
    {
        Submission::Stored(r) => r,
        other => panic!("not stored: {other:?}"),
    };
    assert_eq!(receipt.interchange.status, "rejected");
    let codes: Vec<&str> = receipt.issues.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(codes, ["E0012"], "{:?}", receipt.issues);
    let contrl = &receipt.interchange.acknowledgement;
    assert!(contrl.contains("+4+12+UNB+12'"), "{contrl}");
    let _ = std::fs::remove_dir_all(dir);
}

/// An interchange addressed to one of the hub's other names
/// (`--recipient-id`) is answered from that name, its qualifier carried
/// back: the CONTRL and every later CUSRES alike, so the sender's
/// translator pairs them with the exchange it opened. One addressed to
/// the hub's own id is answered from that.
#[tokio::test]
async fn answers_come_from_the_name_the_sender_addressed() {
    let dir = std::env::temp_dir().join(format!("tradehub-alias-{}", uuid::Uuid::now_v7()));
    let clearance = Clearance {
        recipient_ids: vec!["KRCUSTOMS".into()],
        ..clearance("", 60)
    };
    let hub = hub(&Store::embedded_url(&dir).unwrap(), clearance).await;
    let sent = String::from_utf8(cusdec("IC900", "LRN-ALIAS", "9", &["847989"]))
        .unwrap()
        .replacen("+TRADEHUB:ZZZ+", "+KRCUSTOMS:ZZZ+", 1)
        .into_bytes();
    let Submission::Stored(receipt) = hub.intake.submit(&hub.broker, sent).await.unwrap() else {
        panic!("not stored")
    };
    let contrl = receipt.interchange.acknowledgement.clone();
    assert!(
        contrl.contains("UNB+UNOC:3+KRCUSTOMS:ZZZ+KRBROKER01:ZZZ+"),
        "{contrl}"
    );
    let stored = hub
        .intake
        .store()
        .declarations_of(&receipt.interchange.id)
        .await
        .unwrap();
    let answers = hub
        .intake
        .store()
        .responses_of(&stored[0].id)
        .await
        .unwrap();
    assert!(!answers.is_empty());
    for answer in &answers {
        assert!(
            answer
                .body
                .starts_with("UNA:+.? 'UNB+UNOC:3+KRCUSTOMS:ZZZ+KRBROKER01:ZZZ+"),
            "{}",
            answer.body
        );
    }
    // Addressed to the hub's id: answered from it.
    let d = submit(&hub, cusdec("IC901", "LRN-OWN", "9", &["847989"])).await;
    let answers = hub.intake.store().responses_of(&d[0].id).await.unwrap();
    assert!(
        answers[0]
            .body
            .contains("UNB+UNOC:3+TRADEHUB:ZZZ+KRBROKER01:ZZZ+"),
        "{}",
        answers[0].body
    );
    let _ = std::fs::remove_dir_all(dir);
}
