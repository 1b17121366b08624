//! The `tradehub` binary as a user runs it: exit codes, output formats and
//! error messages of `check`, `convert` and `ack`.

// Test helpers may panic: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/edifact")
        .join(rel)
}

fn tradehub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(args)
        .output()
        .expect("run tradehub")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_exit_codes_follow_the_verdict() {
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let bad = fixture("err/unt-count.edi");
    let out = tradehub(&["check", ok.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("valid (0 error(s), 0 warning(s), 2 message(s), 46 segment(s))")
    );

    let out = tradehub(&["check", ok.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("error E0029: UNT control count is 99 but 20 segments"),
        "{stdout}"
    );
    assert!(
        stdout.contains("segment 21 (UNT, #20 in message), element 1"),
        "{stdout}"
    );
}

/// `check` on an endless input (`/dev/zero`) ends: the padding runs past
/// the limit of a segment, which stops the reading with EDI104. (It used to
/// skip the zeros for as long as they came, that is for ever.)
#[test]
#[cfg(unix)]
fn check_of_an_endless_input_ends() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["check", "/dev/zero"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run tradehub");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("check /dev/zero ran for a minute");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("error EDI104: more than 262144 bytes of white space or padding"),
        "{stdout}"
    );
    assert!(stdout.contains("was not read [byte 0]"), "{stdout}");
}

#[test]
fn check_json_carries_code_and_location() {
    let bad = fixture("err/unoa-lowercase.edi");
    let out = tradehub(&["check", "--format", "json", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let report = &json[0];
    assert_eq!(report["valid"], false);
    assert_eq!(report["format"], "edifact");
    assert_eq!(report["interchange"]["control_reference"], "20261124001");
    let issue = &report["issues"][0];
    assert_eq!(issue["code"], "E0021");
    assert_eq!(issue["location"]["segment"], 13);
    assert_eq!(issue["location"]["message_segment"], 12);
    assert_eq!(issue["location"]["tag"], "FTX");
    assert_eq!(issue["location"]["element"], 4);
    assert_eq!(issue["location"]["component"], 1);
    assert_eq!(issue["location"]["offset"], 361);
}

#[test]
fn missing_file_is_one_clear_line_and_exit_2() {
    let out = tradehub(&["check", "no/such/file.edi"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("tradehub: no/such/file.edi: "),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
    // Beside other files, they are still checked and reported.
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let bad = fixture("err/unt-count.edi");
    let out = tradehub(&[
        "check",
        ok.to_str().unwrap(),
        "no/such/file.edi",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("cusdec-d96b-unoc.edi: valid"), "{stdout}");
    assert!(stdout.contains("unt-count.edi: invalid"), "{stdout}");
    assert!(stdout.contains("E0029"), "{stdout}");
    assert_eq!(text(&out.stderr).lines().count(), 1);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(tradehub(&["check"]).status.code(), Some(2));
    assert_eq!(tradehub(&["frobnicate"]).status.code(), Some(2));
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let out = tradehub(&[
        "convert",
        ok.to_str().unwrap(),
        "--to",
        "edifact",
        "--una",
        "abc",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--una"));
    // The values keep the decimal mark they were read with: another one in
    // --una (which would make every decimal wrong) or one that is also a
    // separator is refused.
    let decimals = fixture("ok/release-everywhere.edi");
    for (una, says) in [
        (":+,? '", "decimal mark ','"),
        (",+,? '", "also a separator"),
    ] {
        let out = tradehub(&[
            "convert",
            decimals.to_str().unwrap(),
            "--to",
            "edifact",
            "--una",
            una,
        ]);
        assert_eq!(out.status.code(), Some(2), "{una}");
        assert!(
            text(&out.stderr).contains(says),
            "{una}: {}",
            text(&out.stderr)
        );
    }
    // An input its own repertoire cannot carry is invalid input (1).
    let lower = fixture("err/unoa-lowercase.edi");
    let out = tradehub(&["convert", lower.to_str().unwrap(), "--to", "edifact"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    // A directories folder that does not exist is not silently ignored.
    let missing = std::env::temp_dir().join("tradehub-no-such-folder");
    let out = tradehub(&[
        "check",
        "--directories",
        missing.to_str().unwrap(),
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a folder"),
        "{}",
        text(&out.stderr)
    );
    // An interchange id that would lead the request (and its token)
    // elsewhere is refused before anything is sent.
    for id in ["../../healthz", "ID?x=1", ""] {
        let out = tradehub(&["status", id, "--url", "http://127.0.0.1:9", "--token", "t"]);
        assert_eq!(out.status.code(), Some(2), "{id:?}");
        assert!(
            text(&out.stderr).contains("is not an interchange id"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// An operator's folder of further directory zips is searched first: a
/// copy of the vendored D.96B there serves the same validation, and
/// `--syntax-only` skips validation (so an unavailable release passes).
#[test]
fn directories_from_an_operator_folder() {
    let folder = std::env::temp_dir().join(format!("tradehub-dirs-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/untdid/d96b.zip"),
        folder.join("D96B.ZIP"),
    )
    .unwrap();
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let out = tradehub(&[
        "check",
        "--directories",
        folder.to_str().unwrap(),
        ok.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let unavailable = fixture("schema/sch001-release-unavailable.edi");
    let out = tradehub(&["check", unavailable.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("SCH001"));
    let out = tradehub(&["check", "--syntax-only", unavailable.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    std::fs::remove_dir_all(&folder).unwrap();
}

#[test]
fn convert_to_tree_is_json_with_decoded_values() {
    let f = fixture("ok/release-everywhere.edi");
    let out = tradehub(&["convert", f.to_str().unwrap(), "--to", "tree"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ic = &json["interchange"];
    assert_eq!(ic["una"], ":+.? '");
    assert_eq!(ic["sender"]["id"], "KRBROKER01");
    let message = &ic["messages"][0];
    assert_eq!(message["message_type"], "CUSDEC");
    assert_eq!(message["release"], "96B");
    // FTX+AAA+++50% OFF?: A?+B?'C??D ITEM 1 decodes to the literal text.
    let ftx = message["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tag"] == "FTX")
        .unwrap();
    assert_eq!(ftx["elements"][3][0], "50% OFF: A+B'C?D ITEM 1");
}

#[test]
fn convert_to_edifact_with_other_separators_round_trips() {
    let f = fixture("ok/release-everywhere.edi");
    let out = tradehub(&[
        "convert",
        f.to_str().unwrap(),
        "--to",
        "edifact",
        "--una",
        "|^.\\ ~",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        out.stdout.starts_with(b"UNA|^.\\ ~UNB^UNOC|3^"),
        "{}",
        text(&out.stdout)
    );
    let dir = std::env::temp_dir().join(format!("tradehub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let converted = dir.join("converted.edi");
    std::fs::write(&converted, &out.stdout).unwrap();
    // A valid interchange, as the input is.
    let checked = tradehub(&["check", converted.to_str().unwrap()]);
    assert_eq!(checked.status.code(), Some(0), "{}", text(&checked.stdout));
    // Same tree either way (separators aside).
    let a = tradehub(&["convert", f.to_str().unwrap(), "--to", "tree"]);
    let b = tradehub(&["convert", converted.to_str().unwrap(), "--to", "tree"]);
    let mut a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    let mut b: serde_json::Value = serde_json::from_slice(&b.stdout).unwrap();
    for v in [&mut a, &mut b] {
        let ic = v["interchange"].as_object_mut().unwrap();
        ic.remove("una");
        ic.remove("separators");
        ic["counts"].as_object_mut().unwrap().remove("bytes");
    }
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn convert_to_json_goes_through_the_canonical_model() {
    let f = fixture("ok/cusdec-d96b-unoc.edi");
    let out = tradehub(&["convert", f.to_str().unwrap(), "--to", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json[0]["declaration"]["lrn"], "LRN2026001");
    assert_eq!(json[1]["declaration"]["lrn"], "LRN2026002");
    // The generated fixture is an export without an exporter: a business
    // rule finding, so the exit code says invalid.
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("RUL001"),
        "{}",
        text(&out.stderr)
    );

    // A message type nobody has mapped says so.
    let g = fixture("corpus/staedi__invoic_d97b_una.edi");
    let out = tradehub(&["convert", g.to_str().unwrap(), "--to", "json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("MAP005"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("no mapping for INVOIC"),
        "{}",
        text(&out.stderr)
    );
}

/// CONTRL answers, pinned to a fixed time, against golden files.
#[test]
fn ack_contrl_matches_golden_files() {
    let cases = [
        ("ok/cusdec-d96b-unoc.edi", 0),
        ("ok/cusdec-v4-repetition.edi", 1),
        ("err/unt-count.edi", 1),
        ("err/unoa-lowercase.edi", 1),
        ("err/unz-reference.edi", 1),
        ("err/group-mixed-message-types.edi", 1),
        ("err/missing-unt.edi", 1),
        ("corpus/staedi__orders-with-group.edi", 1),
    ];
    for (input, code) in cases {
        let path = fixture(input);
        let out = tradehub(&[
            "ack",
            path.to_str().unwrap(),
            "--kind",
            "contrl",
            "--at",
            "2026-11-24T10:30",
        ]);
        assert_eq!(out.status.code(), Some(code), "{input}");
        let name = input.replace('/', "__");
        let golden = fixture("contrl").join(format!("{name}.contrl"));
        if std::env::var_os("UPDATE_EXPECT").is_some() {
            std::fs::write(&golden, &out.stdout).unwrap();
            continue;
        }
        let expected =
            std::fs::read(&golden).unwrap_or_else(|e| panic!("{}: {e}", golden.display()));
        assert_eq!(text(&out.stdout), text(&expected), "{input}");
        // The CONTRL itself is a valid interchange.
        let check = tradehub(&["check", golden.to_str().unwrap()]);
        assert_eq!(check.status.code(), Some(0), "{}", text(&check.stdout));
    }
}

/// docs/codes.md documents every issue code the library can produce.
#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/codes.md"))
        .unwrap();
    for code in tradehub::diag::Code::ALL {
        let row = format!("| {} |", code.as_str());
        assert!(
            doc.contains(&row),
            "docs/codes.md has no row for {}",
            code.as_str()
        );
    }
}

/// An unsupported syntax version is one mistake, reported once (E0002):
/// the header is not also judged by the rules of another version (its
/// YYMMDD date was an E0040 under version 4's CCYYMMDD).
#[test]
fn an_unsupported_syntax_version_is_reported_once() {
    let text = String::from_utf8(std::fs::read(fixture("ok/cusdec-d96b-unoc.edi")).unwrap())
        .unwrap()
        .replacen("UNB+UNOC:3+", "UNB+UNOC:7+", 1);
    let path = std::env::temp_dir().join(format!("tradehub-v7-{}.edi", std::process::id()));
    std::fs::write(&path, text).unwrap();
    let out = tradehub(&["check", "--format", "json", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = json[0]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["E0002"]);
}

/// A folder TRADEHUB_DIRECTORIES names that does not exist is a usage
/// error, as one `--directories` names is (it was silently left out).
#[test]
fn a_missing_directories_folder_from_the_environment_is_refused() {
    let ok = fixture("ok/cusdec-d96b-unoc.edi");
    let out = Command::new(env!("CARGO_BIN_EXE_tradehub"))
        .args(["check", ok.to_str().unwrap()])
        .env("TRADEHUB_DIRECTORIES", "/no/such/folder")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("TRADEHUB_DIRECTORIES: /no/such/folder is not a folder"),
        "{}",
        text(&out.stderr)
    );
}

/// A pace `loadgen` cannot keep (a gap between requests longer than any
/// duration, or a negative one) is a usage error, not a panic followed by
/// a report of success.
#[test]
fn loadgen_refuses_a_rate_it_cannot_keep() {
    for rate in ["1e-30", "-1", "NaN", "inf"] {
        let out = tradehub(&[
            "loadgen",
            "--url",
            "http://127.0.0.1:9",
            "--token",
            "t",
            "--duration-secs",
            "1",
            &format!("--rate={rate}"),
        ]);
        assert_eq!(out.status.code(), Some(2), "{rate}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("--rate"),
            "{}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).contains("panicked"));
    }
}

/// `loadgen` speaks plain HTTP: an https:// URL is refused at once (it
/// was taken for a host name and counted every request as an error).
#[test]
fn loadgen_refuses_a_url_it_cannot_speak() {
    for url in ["https://127.0.0.1:9", "127.0.0.1:9"] {
        let out = tradehub(&[
            "loadgen",
            "--url",
            url,
            "--token",
            "t",
            "--duration-secs",
            "1",
        ]);
        assert_eq!(out.status.code(), Some(2), "{url}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("only http:// URLs"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// `ack --kind contrl` prints the CONTRL the hub answers with: a test
/// interchange (UNB 0035) is rejected with code 25 at UNB 0035, as the hub
/// rejects it.
#[test]
fn ack_rejects_a_test_interchange_as_the_hub_does() {
    let sample = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/edifact/ok/cusdec-d96b-unoc.edi"),
    )
    .unwrap();
    let header = "+261124:1030+20261124001'";
    assert_eq!(sample.matches(header).count(), 1);
    let test = sample.replacen(header, "+261124:1030+20261124001++++++1'", 1);
    let path = std::env::temp_dir().join(format!("tradehub-test-ind-{}.edi", std::process::id()));
    std::fs::write(&path, test).unwrap();
    let out = tradehub(&["ack", "--kind", "contrl", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("+4+25+UNB+12'"),
        "{}",
        text(&out.stdout)
    );
}

/// What is not an interchange at all gets no CONTRL from `ack`, as the hub
/// answers it with HTTP 415 and no acknowledgement (it printed a rejecting
/// CONTRL the hub would never send).
#[test]
fn ack_answers_no_contrl_for_what_is_not_an_interchange() {
    let path = std::env::temp_dir().join(format!("tradehub-not-edi-{}.txt", std::process::id()));
    std::fs::write(&path, "hello\n").unwrap();
    let out = tradehub(&["ack", "--kind", "contrl", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("EDI104") && text(&out.stderr).contains("no CONTRL answers it"),
        "{}",
        text(&out.stderr)
    );
}

/// The commands that hold their input in memory read at most
/// `MAX_IN_MEMORY_INPUT` bytes of it: an endless stream or a huge file is
/// refused (exit 2, one line naming `check`, which streams), not read until
/// memory runs out.
#[cfg(target_os = "linux")]
#[test]
fn inputs_held_in_memory_are_bounded() {
    for args in [
        &["ack", "--kind", "contrl", "/dev/zero"][..],
        &["convert", "/dev/zero", "--to", "json"][..],
        &["route", "/dev/zero"][..],
    ] {
        let out = tradehub(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("/dev/zero: larger than 268435456 bytes")
                && stderr.contains("tradehub check"),
            "{args:?}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert_eq!(tradehub::cli::MAX_IN_MEMORY_INPUT, 268_435_456);
}
