//! The hub as a user runs it: `tradehub serve` as a process on the embedded
//! store, `partner add`, `submit` and `status` against it, and a clean stop
//! on SIGTERM.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tradehub"))
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact")
        .join(rel)
}

#[test]
fn serve_submit_status_and_stop() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let data = dir.join("data");

    let out = bin()
        .args([
            "partner",
            "add",
            "KRBROKER01",
            "--name",
            "Hanbit Customs Brokers",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(token.starts_with("th_") && token.len() == 67, "{stdout}");
    // The same id twice is refused.
    let again = bin()
        .args(["partner", "add", "KRBROKER01", "--name", "X", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    // An id that cannot be a UNB sender or part of a queue name is refused.
    for bad in ["", "TWO WORDS", &"X".repeat(36)] {
        let out = bin()
            .args(["partner", "add", bad, "--name", "X", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    // As JSON, for scripts: the partner and its token; trader ids too.
    let json_of = |args: &[&str]| -> serde_json::Value {
        let out = bin()
            .args(args)
            .args(["--format", "json", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let added = json_of(&["partner", "add", "SCRIPTED", "--name", "X"]);
    assert_eq!(added["partner"], "SCRIPTED");
    assert!(added["token"].as_str().unwrap().starts_with("th_"));
    let traders = json_of(&["partner", "traders", "SCRIPTED", "GB123"]);
    assert_eq!(traders["trader_ids"], serde_json::json!(["GB123"]));

    let (server, addr, log) = common::spawn_serve(&data);
    let url = format!("http://{addr}");

    // An import that needs KMDIA's permit: taken, its declaration waiting.
    let medical = fixture("ok/cusdec-d96b-medical-import.edi");
    let out = bin()
        .args(["submit"])
        .arg(&medical)
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(": validated (1 message(s), 0 error(s))"),
        "{text}"
    );
    assert!(
        text.contains(": awaiting_permits (LRN LRNMED2026001, MRN "),
        "{text}"
    );

    // An export without its exporter: the interchange is valid, but its
    // declarations are rejected (RUL001), so the broker has work: exit 1.
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let out = bin()
        .args(["submit"])
        .arg(&ok)
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(": validated (2 message(s), 0 error(s))"),
        "{text}"
    );
    assert!(text.contains(": rejected (LRN LRN2026001)"), "{text}");
    assert!(
        text.contains("UCI+20261124001+KRBROKER01:ZZZ+TRADEHUB:ZZZ+7'"),
        "{text}"
    );
    let id = text
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();

    let out = bin()
        .args(["submit"])
        .arg(&ok)
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(duplicate: original answer)"));

    let bad = fixture("err/unt-count.edi");
    let out = bin()
        .args(["submit"])
        .arg(&bad)
        .args(["--url", &url, "--token", &token, "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "same reference, other bytes: refused"
    );
    let problem: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(problem["code"], "E0026");
    // In text: the refusal on stderr, the rejecting CONTRL on stdout.
    let out = bin()
        .args(["submit"])
        .arg(&bad)
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (said, answered) = (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    );
    assert!(said.starts_with("refused (409, E0026): "), "{said}");
    assert!(
        answered.contains("UNH+") && answered.contains("CONTRL"),
        "{answered}"
    );
    assert!(!answered.contains("refused"), "{answered}");
    // The operator lists the refusals from the store: the reused reference.
    let out = bin()
        .args([
            "refusals",
            "--partner",
            "KRBROKER01",
            "--format",
            "json",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["refusals"][0]["code"], "E0026", "{listed}");
    assert_eq!(
        listed["refusals"][0]["partner_id"], "KRBROKER01",
        "{listed}"
    );
    let out = bin()
        .args(["refusals", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.lines()
            .next()
            .is_some_and(|l| l.contains("  KRBROKER01  E0026  ")),
        "{text}"
    );
    // A wrong token: a diagnostic only.
    let out = bin()
        .args(["submit"])
        .arg(&ok)
        .args(["--url", &url, "--token", "not-a-token"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused (401)"),
        "{out:?}"
    );

    let out = bin()
        .args(["status", &id, "--url", &url])
        .env("TRADEHUB_TOKEN", &token)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains(": rejected (LRN LRN2026002)"), "{text}");
    assert!(text.contains(" received: "), "{text}");
    assert!(text.contains(" duplicate_received: "), "{text}");
    // The declaration's own trail too, under it: why it was rejected.
    let (_, below) = text.split_once(": rejected (LRN LRN2026002)").unwrap();
    assert!(below.contains(" rejected: "), "{text}");
    assert!(!below.contains(" duplicate_received: "), "{text}");
    // And the answer it was sent (an APERAK), with whether it went out.
    assert!(below.contains("  answer rejected (aperak) "), "{text}");

    let out = bin()
        .args(["status", "no-such-id", "--url", &url, "--token", &token])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // The operator reads the same from the store, without the partner's
    // token: by id, or by sender and control reference, answers included.
    let trail = |args: &[&str]| {
        bin()
            .arg("trail")
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .output()
            .unwrap()
    };
    let by_id = trail(&[&id]);
    let text = String::from_utf8_lossy(&by_id.stdout).into_owned();
    assert_eq!(by_id.status.code(), Some(1), "{text}");
    assert!(text.contains(": rejected (LRN LRN2026002)"), "{text}");
    assert!(text.contains(" received: "), "{text}");
    assert!(text.contains("; over HTTP"), "{text}");
    // The repeat, counted.
    assert!(
        text.contains("  repeats: duplicate_received x1, first "),
        "{text}"
    );
    let by_reference = trail(&["--sender", "KRBROKER01", "--reference", "20261124001"]);
    assert_eq!(by_reference.stdout, by_id.stdout);
    let json = trail(&[&id, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["interchange"]["id"], id.as_str());
    assert_eq!(json["interchange"]["partner_id"], "KRBROKER01");
    assert_eq!(json["repeats"][0]["kind"], "duplicate_received", "{json}");
    assert_eq!(json["repeats"][0]["count"], 1, "{json}");
    let responses = json["declarations"][0]["responses"].as_array().unwrap();
    assert!(!responses.is_empty(), "{json}");
    assert!(
        responses[0]["message_id"]
            .as_str()
            .is_some_and(|m| m.ends_with("/rejected/0/response")),
        "{json}"
    );
    let none = trail(&["no-such-id"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no interchange no-such-id in the store"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );

    let out = bin()
        .args(["submit"])
        .arg(&ok)
        .args(["--url", &url, "--token", "th_nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "unknown token");

    // SIGTERM: graceful stop, exit 0.
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut server = server;
    let status = server.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let log = log.join().unwrap();
    assert!(
        log.iter().any(|l| l.contains("tradehub stopped")),
        "{log:?}"
    );
    // The unknown token's request is logged, with where it came from.
    assert!(
        log.iter().any(|l| l.contains("request refused (401)")
            && l.contains("peer=127.0.0.1:")
            && l.contains("path=/v1/interchanges")),
        "{log:?}"
    );
    // The hub sealed every event it wrote, the last ones as it stopped.
    let out = bin()
        .args(["audit", "verify", "--format", "json", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let audit: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(audit["intact"], true, "{audit}");
    assert_eq!(audit["report"]["pending"], 0, "{audit}");
    assert!(audit["report"]["sealed"].as_i64().unwrap() >= 6, "{audit}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Starts `tradehub serve ARGS` (no TRADEHUB_* variables); returns the
/// child and the address it listens on.
fn serve_with(args: &[&str]) -> (std::process::Child, String) {
    let args: Vec<std::ffi::OsString> = args.iter().map(Into::into).collect();
    let (child, addr, _log) = common::spawn_serve_with(&args);
    (child, addr)
}

/// config/hub.toml-style files configure the hub; flags win over them;
/// an unknown key is refused with its line.
#[test]
fn serve_reads_its_configuration_file() {
    let dir = std::env::temp_dir().join(format!("tradehub-config-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let data = dir.join("from-file");
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();

    // The file sets the data directory and the address (port 0: any).
    let (mut child, addr) = serve_with(&["--config", config.to_str().unwrap()]);
    assert!(data.exists(), "store not in data_dir");
    let r = common::request_blocking(&addr, "GET", "/healthz", None, b"").expect("the hub answers");
    assert_eq!(r.status, 200);
    child.kill().unwrap();
    child.wait().unwrap();

    // A flag wins over the file.
    let flagged = dir.join("from-flag");
    let (mut child, _) = serve_with(&[
        "--config",
        config.to_str().unwrap(),
        "--data-dir",
        flagged.to_str().unwrap(),
    ]);
    assert!(flagged.exists(), "--data-dir should win over the file");
    child.kill().unwrap();
    child.wait().unwrap();

    // An unknown key: exit 2, one line naming the key and the line.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 8080\n").unwrap();
    let out = bin()
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listen_port") && err.contains("line 2"),
        "{err}"
    );

    // The shipped config/hub.toml is valid.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hub.toml");
    let text = std::fs::read_to_string(&shipped).unwrap();
    let with_port_0 = text.replace("127.0.0.1:8080", "127.0.0.1:0").replace(
        "data_dir = \"./data\"",
        &format!("data_dir = {:?}", dir.join("shipped").display().to_string()),
    );
    std::fs::write(&config, with_port_0).unwrap();
    let (mut child, _) = serve_with(&["--config", config.to_str().unwrap()]);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trader identifiers for WCO declarations: given on `partner add` and
/// added later with `partner traders`, which lists them all; an unknown
/// partner is a usage error.
#[test]
fn partner_trader_ids_from_the_command_line() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-traders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let run = |args: &[&str]| {
        let out = bin()
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, _) = run(&[
        "partner",
        "add",
        "GB-BROKER",
        "--name",
        "CDS broker",
        "--trader-id",
        "GB150454489082",
    ]);
    assert_eq!(code, Some(0));
    let (code, out) = run(&[
        "partner",
        "traders",
        "GB-BROKER",
        "GB603202734852",
        "GB150454489082",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(
        out.trim(),
        "partner GB-BROKER submits for: GB150454489082, GB603202734852"
    );
    let (code, _) = run(&["partner", "traders", "NOBODY", "GB1"]);
    assert_eq!(code, Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `partner add --agency` checks the code against the catalogue the hub
/// serves with (`--agencies` / TRADEHUB_AGENCIES), not always the one in
/// ./config: an agency only the operator's catalogue has can be given an
/// account.
#[test]
fn partner_add_checks_the_agency_in_the_given_catalogue() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-agencies-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/agencies.toml"))
            .unwrap();
    let start = shipped.find("[[agency]]\ncode = \"KDIA\"").unwrap();
    let end = start + 10 + shipped[start + 10..].find("[[agency]]").unwrap();
    let extra = shipped[start..end]
        .replace("code = \"KDIA\"", "code = \"NEWAGY\"")
        .replace("agency.KDIA", "agency.NEWAGY");
    let catalogue = dir.join("agencies.toml");
    std::fs::write(&catalogue, format!("{shipped}\n{extra}")).unwrap();
    let add = |id: &str, with: bool| {
        let mut cmd = bin();
        cmd.args(["partner", "add", id, "--name", "Desk", "--agency", "NEWAGY"])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("TRADEHUB_AGENCIES");
        if with {
            cmd.arg("--agencies").arg(&catalogue);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = add("desk-1", false);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not in the agency catalogue"), "{err}");
    let (code, err) = add("desk-2", true);
    assert_eq!(code, Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `partner token` issues a new API token for a partner whose token was
/// lost or leaked: the new one is taken, the old one refused; an unknown
/// partner is a usage error.
#[test]
fn a_partner_token_can_be_replaced() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-token-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let token_of = |args: &[&str]| {
        let out = bin()
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout.lines().last().unwrap().trim().to_owned()
    };
    let old = token_of(&["partner", "add", "KRBROKER01", "--name", "Hanbit"]);
    let new = token_of(&["partner", "token", "KRBROKER01"]);
    assert!(new.starts_with("th_") && new.len() == 67, "{new}");
    assert_ne!(old, new);
    let unknown = bin()
        .args(["partner", "token", "NOBODY", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no partner \"NOBODY\""));
    // A mistyped data directory is no new, empty store: refused, and
    // nothing is created there.
    let typo = dir.join("typo");
    for args in [
        &["partner", "token", "KRBROKER01"][..],
        &["partner", "traders", "KRBROKER01", "1234567890"][..],
        &["outbox", "list"][..],
    ] {
        let out = bin()
            .args(args)
            .arg("--data-dir")
            .arg(&typo)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("no store at"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!typo.join("tradehub.db").exists(), "{args:?}");
    }

    let (mut server, addr, _log) = common::spawn_serve(&dir);
    let url = format!("http://{addr}");
    let submit = |token: &str| {
        bin()
            .args(["submit"])
            .arg(fixture("ok/cusdec-d96b-medical-import.edi"))
            .args(["--url", &url, "--token", token])
            .output()
            .unwrap()
    };
    let refused = submit(&old);
    assert_ne!(refused.status.code(), Some(0), "the old token is refused");
    let taken = submit(&new);
    assert_eq!(
        taken.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An operator suspends a partner (`partner suspend --reason`): a hub
/// started then refuses its submissions with HUB204, recorded with the
/// reason; `partner list` shows the suspension; `partner reinstate` lifts
/// it and the same submission is taken.
#[test]
fn a_partner_can_be_suspended_and_reinstated() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-suspend-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The operator log names who ran each command: TRADEHUB_OPERATOR.
    let run = |args: &[&str]| {
        bin()
            .env("TRADEHUB_OPERATOR", "ops-kim")
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    let stdout = |out: &Output| String::from_utf8_lossy(&out.stdout).into_owned();
    let added = run(&["partner", "add", "KRBROKER01", "--name", "Hanbit"]);
    assert_eq!(added.status.code(), Some(0));
    let token = stdout(&added).lines().last().unwrap().trim().to_owned();
    assert_eq!(
        run(&[
            "partner",
            "add",
            "kmdia-desk",
            "--name",
            "KMDIA desk",
            "--agency",
            "KMDIA"
        ])
        .status
        .code(),
        Some(0)
    );
    // A reason is required; an unknown partner is an error.
    for args in [
        &["partner", "suspend", "KRBROKER01", "--reason", " "][..],
        &["partner", "suspend", "NOBODY", "--reason", "gone"][..],
        &["partner", "reinstate", "NOBODY"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    let out = run(&[
        "partner",
        "suspend",
        "KRBROKER01",
        "--reason",
        "licence withdrawn",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).starts_with("partner KRBROKER01 suspended since 20"),
        "{}",
        stdout(&out)
    );
    let listed = stdout(&run(&["partner", "list"]));
    assert!(
        listed.contains("KRBROKER01\tHanbit SUSPENDED since 20"),
        "{listed}"
    );
    assert!(listed.contains(": licence withdrawn\n"), "{listed}");
    assert!(
        listed.contains("kmdia-desk\tKMDIA desk (acts for KMDIA)\n"),
        "{listed}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["partner", "list", "--format", "json"]).stdout).unwrap();
    assert_eq!(json[0]["id"], "KRBROKER01");
    assert_eq!(json[0]["suspended"]["reason"], "licence withdrawn");
    assert!(json[1].get("suspended").is_none(), "{json}");

    let submit = |url: &str| {
        bin()
            .args(["submit"])
            .arg(fixture("ok/cusdec-d96b-medical-import.edi"))
            .args(["--url", url, "--token", &token])
            .output()
            .unwrap()
    };
    let (mut server, addr, _log) = common::spawn_serve(&dir);
    let refused = submit(&format!("http://{addr}"));
    let _ = server.kill();
    let _ = server.wait();
    assert_ne!(refused.status.code(), Some(0));
    let said = format!(
        "{}{}",
        stdout(&refused),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(said.contains("HUB204"), "{said}");
    assert!(said.contains("licence withdrawn"), "{said}");
    let refusals = stdout(&run(&["refusals", "--partner", "KRBROKER01"]));
    assert!(refusals.contains("HUB204"), "{refusals}");
    assert!(refusals.contains("licence withdrawn"), "{refusals}");

    let out = run(&["partner", "reinstate", "KRBROKER01"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "partner KRBROKER01 reinstated\n");
    assert!(!stdout(&run(&["partner", "list"])).contains("SUSPENDED"));
    let (mut server, addr, _log) = common::spawn_serve(&dir);
    let taken = submit(&format!("http://{addr}"));
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(
        taken.status.code(),
        Some(0),
        "{}{}",
        stdout(&taken),
        String::from_utf8_lossy(&taken.stderr)
    );
    // Every change an operator made is on the operator log, newest first,
    // with who made it; the refused attempts (a blank reason, an unknown
    // partner) are not. Without TRADEHUB_OPERATOR, the login name.
    let reissued = bin()
        .env_remove("TRADEHUB_OPERATOR")
        .env_remove("SUDO_USER")
        .env("USER", "lee")
        .args(["partner", "token", "KRBROKER01", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(reissued.status.code(), Some(0));
    let log = stdout(&run(&["operator-log"]));
    let actions: Vec<(&str, &str)> = log
        .lines()
        .map(|l| {
            let mut fields = l.split("  ").skip(2);
            let action = fields.next().unwrap();
            let subject = fields.next().unwrap().split(" (by ").next().unwrap();
            (action, subject)
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("token_issued", "KRBROKER01"),
            ("partner_reinstated", "KRBROKER01"),
            ("partner_suspended", "KRBROKER01"),
            ("role_changed", "kmdia-desk"),
            ("partner_added", "kmdia-desk"),
            ("partner_added", "KRBROKER01"),
        ],
        "{log}"
    );
    assert!(
        log.contains("partner_suspended  KRBROKER01 (by ops-kim): licence withdrawn\n"),
        "{log}"
    );
    assert!(
        log.contains("partner_reinstated  KRBROKER01 (by ops-kim): suspended since 20"),
        "{log}"
    );
    assert!(
        log.contains("role_changed  kmdia-desk (by ops-kim): acts for KMDIA (before: no agency)"),
        "{log}"
    );
    assert!(
        log.contains("token_issued  KRBROKER01 (by lee): a new API token"),
        "{log}"
    );
    let json: serde_json::Value = serde_json::from_slice(
        &run(&[
            "operator-log",
            "--subject",
            "kmdia-desk",
            "--format",
            "json",
        ])
        .stdout,
    )
    .unwrap();
    assert_eq!(json["operator_log"].as_array().map(Vec::len), Some(2));
    assert_eq!(json["operator_log"][1]["detail"], "named KMDIA desk");
    assert_eq!(json["operator_log"][1]["operator"], "ops-kim");
    let _ = std::fs::remove_dir_all(&dir);
}

/// One broker per store: an instance with `--amqp-url` records its AMQP
/// prefix on the store; an instance without a broker, or with another
/// prefix, is then refused at start (exit 2) instead of taking the
/// others' outbox rows and marking them published where no consumer is.
/// `outbox broker` shows the record and `--forget` clears it. (The broker
/// need not answer: the record is made before the hub connects.)
#[test]
fn a_store_published_to_rabbitmq_is_not_served_without_it() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-cli-broker-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // A port nothing listens on: the consumer and relay just retry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("amqp://guest:guest@{}/%2f", closed.local_addr().unwrap());
    drop(closed);
    let serve = |extra: &[&str]| {
        let mut args: Vec<std::ffi::OsString> =
            vec!["--listen".into(), "127.0.0.1:0".into(), "--data-dir".into()];
        args.push(data.clone().into());
        args.extend(extra.iter().map(Into::into));
        args
    };
    let broker = |extra: &[&str]| {
        let out = bin()
            .args(["outbox", "broker", "--data-dir"])
            .arg(&data)
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (child, _, log) =
        common::spawn_serve_with(&serve(&["--amqp-url", &url, "--amqp-prefix", "one."]));
    let mut hub = common::Server(child);
    // Its relay, waiting for the broker, marks the record as seen.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !broker(&[]).1.contains("a relay with it last claimed at") {
        assert!(std::time::Instant::now() < deadline, "{:?}", broker(&[]));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    hub.kill();
    let _ = log.join();

    let refused = |extra: &[&str]| {
        let out = bin()
            .arg("serve")
            .args(serve(extra))
            .env_remove("TRADEHUB_AMQP_URL")
            .env_remove("TRADEHUB_AMQP_PREFIX")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        String::from_utf8(out.stderr).unwrap()
    };
    let without = refused(&[]);
    assert!(
        without.contains("published to RabbitMQ (AMQP prefix \"one.\")")
            && without.contains("start it with --amqp-url")
            && without.contains("tradehub outbox broker --forget"),
        "{without}"
    );
    let other = refused(&["--amqp-url", &url, "--amqp-prefix", "two."]);
    assert!(
        other.contains("under the AMQP prefix \"one.\"")
            && other.contains("this one uses \"two.\""),
        "{other}"
    );

    assert!(broker(&[]).1.contains("under the AMQP prefix \"one.\""));
    // Seen moments ago: an instance may still run with it, so it is kept.
    let (code, _, refused) = broker(&["--forget"]);
    // 75: in use, try later (not 2, a usage error).
    assert_eq!(code, Some(75), "{refused}");
    assert!(
        refused.contains("not forgotten") && refused.contains("stop every instance"),
        "{refused}"
    );
    // Last seen long ago (every instance stopped): forgotten.
    let db = format!("sqlite://{}", data.join("tradehub.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&db).await.unwrap();
        sqlx::query("UPDATE outbox_broker SET seen_at = '2026-01-01T00:00:00Z'")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let (code, forgotten, _) = broker(&["--forget"]);
    assert_eq!(code, Some(0));
    assert!(forgotten.contains("forgotten"), "{forgotten}");
    assert!(broker(&[]).1.contains("no broker recorded"));
    // Forgotten: served without a broker again.
    let (child, addr, log) = common::spawn_serve_with(&serve(&[]));
    let mut hub = common::Server(child);
    let health = common::request_blocking(&addr, "GET", "/healthz", None, b"");
    assert_eq!(health.map(|r| r.status), Some(200));
    hub.kill();
    let _ = log.join();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// With no hub listening, `submit` says so once, naming the URL it tried
/// (exit 2).
#[test]
fn submit_to_a_hub_that_is_down_names_the_url_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = bin()
        .args(["submit"])
        .arg(fixture("ok/cusdec-d96b-unoc.edi"))
        .args(["--url", &url, "--token", "t"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(said.matches(url.as_str()).count(), 1, "{said}");
    assert!(said.contains("/v1/interchanges"), "{said}");
}

/// A hub that never answers: `submit` gives up after `--timeout-secs`
/// (exit 2, saying it timed out), not after a fixed minute.
#[test]
fn submit_waits_as_long_as_it_is_told() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let out = bin()
        .args(["submit"])
        .arg(fixture("ok/cusdec-d96b-unoc.edi"))
        .args(["--url", &url, "--token", "t", "--timeout-secs", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("timed out"), "{said}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    drop(silent);
}

/// A file over the hub's `--max-body-bytes`: the hub answers 413 on its
/// declared length and closes without reading it, so the client's send
/// fails part way (a broken pipe). `submit` still reports the hub's
/// refusal (exit 1, HUB413), as the hub recorded it, not a network fault.
#[test]
fn submit_of_a_file_over_the_limit_reports_the_refusal() {
    let dir = std::env::temp_dir().join(format!("tradehub-cli-413-{}", uuid::Uuid::now_v7()));
    let data = dir.join("data");
    let out = bin()
        .args(["partner", "add", "KRBROKER01", "--name", "N", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    let data_arg = data.to_string_lossy().into_owned();
    let (mut server, addr) = serve_with(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        &data_arg,
        "--max-body-bytes",
        "100000",
    ]);
    let url = format!("http://{addr}");
    // 40 MB: far more than the socket buffers take before the hub closes.
    let text = std::fs::read_to_string(fixture("ok/cusdec-d96b-medical-import.edi")).unwrap();
    let at = text.find("UNS+S").unwrap();
    let line = format!("FTX+AAA+++{}'", "X".repeat(500));
    let big = format!("{}{}{}", &text[..at], line.repeat(80_000), &text[at..]);
    let path = dir.join("big.edi");
    std::fs::write(&path, &big).unwrap();
    let out = bin()
        .args(["submit"])
        .arg(&path)
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("refused (413, HUB413)"), "{said}");
    assert!(said.contains(&format!("{} bytes", big.len())), "{said}");
    // A file within the limit is taken as before.
    let out = bin()
        .args(["submit"])
        .arg(fixture("ok/cusdec-d96b-medical-import.edi"))
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A hub that takes the interchange and then cannot be reached when
/// `submit` reads its declarations back: the answer is printed, and the
/// command says the declarations are unread (exit 2), after asking three
/// times, rather than exit 0 with a rejected declaration unseen. A
/// forwarder in front of a real hub passes the first connection (the
/// POST) and closes every later one.
#[test]
fn submit_says_so_when_the_declarations_cannot_be_read_back() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-cli-unread-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let data = dir.join("data");
    let token = common::add_partner(&data, "KRBROKER01");
    let (mut server, addr, _log) = common::spawn_serve(&data);

    let front = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", front.local_addr().unwrap());
    let forwarder = std::thread::spawn(move || {
        let mut later = 0;
        for (n, stream) in front.incoming().enumerate() {
            let Ok(inbound) = stream else { continue };
            if n > 0 {
                drop(inbound); // closed at once
                later += 1;
                if later == 3 {
                    return later;
                }
                continue;
            }
            let outbound = std::net::TcpStream::connect(&addr).unwrap();
            let (mut up_from, mut up_to) =
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut up_from, &mut up_to));
            let (mut down_from, mut down_to) = (outbound, inbound);
            std::thread::spawn(move || std::io::copy(&mut down_from, &mut down_to));
        }
        later
    });

    let out = bin()
        .args(["submit"])
        .arg(fixture("ok/cusdec-d96b-medical-import.edi"))
        .args(["--url", &url, "--token", &token])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{text}{said}");
    assert!(
        text.contains(": validated (1 message(s), 0 error(s))"),
        "the hub's answer is printed: {text}"
    );
    assert!(
        said.contains("was taken, but its declarations could not be read"),
        "{said}"
    );
    assert!(said.contains("tradehub status "), "{said}");
    assert_eq!(forwarder.join().unwrap(), 3, "asked three times");
    server.kill().unwrap();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An administrative command does not upgrade a store an upgrade behind
/// its binary (older instances may still run on it, and would then refuse
/// to start): it says so and changes nothing. Before, `outbox list` of a
/// new binary silently migrated the store.
#[test]
fn an_administrative_command_does_not_upgrade_the_store() {
    let dir = std::env::temp_dir().join(format!(
        "tradehub-cli-behind-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let run = |args: &[&str]| {
        bin()
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .output()
            .unwrap()
    };
    let added = run(&["partner", "add", "KRBROKER01", "--name", "Hanbit"]);
    assert_eq!(
        added.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // The store as the previous release left it: its last migration not
    // recorded.
    let url = format!("sqlite://{}", dir.join("tradehub.db").display());
    let versions = |forget: bool| {
        let url = url.clone();
        tokio::runtime::Runtime::new().unwrap().block_on(async move {
            sqlx::any::install_default_drivers();
            let pool = sqlx::AnyPool::connect(&url).await.unwrap();
            if forget {
                sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(&pool)
                .await
                .unwrap();
            pool.close().await;
            n
        })
    };
    let before = versions(true);
    for args in [
        &["outbox", "list"][..],
        &["refusals"][..],
        &["partner", "token", "KRBROKER01"][..],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("does not upgrade it"), "{args:?}: {stderr}");
        assert_eq!(versions(false), before, "{args:?} upgraded the store");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
