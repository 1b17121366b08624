//! The `tradehub` command line: argument parsing and the commands that work
//! on files (`check`, `convert`, `ack`). Exit codes: 0 valid, 1 the input is
//! invalid, 2 usage or I/O error.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::ack::contrl;
use crate::diag::{Issue, Severity};
use crate::edifact::{self, Limits, ParseOptions, Separators};

/// Exit code: the input is valid.
pub const EXIT_VALID: u8 = 0;
/// Exit code: the input is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "tradehub",
    version,
    about = "Customs single-window message hub: UN/EDIFACT and WCO XML"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// The generic interchange tree as JSON.
    Tree,
    /// UN/EDIFACT, segment for segment (use --una for other separators).
    Edifact,
    /// The canonical model as JSON (not available yet).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AckKind {
    /// CONTRL syntax and service report (syntax version of the interchange).
    Contrl,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate UN/EDIFACT interchanges and print every issue found.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Longest segment accepted, in bytes.
        #[arg(long, default_value_t = Limits::default().max_segment_bytes)]
        max_segment_bytes: usize,
        /// Issues recorded per file before the rest are only counted.
        #[arg(long, default_value_t = Limits::default().max_issues)]
        max_issues: usize,
    },
    /// Convert an interchange to another form.
    Convert {
        file: PathBuf,
        #[arg(long, value_enum)]
        to: Target,
        /// Service characters for --to edifact: the six characters after UNA,
        /// e.g. ":+.? '" (defaults to those of the input).
        #[arg(long)]
        una: Option<String>,
    },
    /// Print the acknowledgement the hub would send for an interchange.
    Ack {
        file: PathBuf,
        #[arg(long, value_enum)]
        kind: AckKind,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Preparation time of the acknowledgement, UTC, as YYYY-MM-DDTHH:MM
        /// (default: now). Fixes the output for tests and replays.
        #[arg(long)]
        at: Option<String>,
    },
}

/// Runs the command line; the binary's `main` is a call to this.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                EXIT_USAGE
            } else {
                EXIT_VALID
            });
        }
    };
    let result = match cli.command {
        Command::Check {
            files,
            format,
            max_segment_bytes,
            max_issues,
        } => check(
            &files,
            format,
            Limits {
                max_segment_bytes,
                max_issues,
            },
        ),
        Command::Convert { file, to, una } => convert(&file, to, una.as_deref()),
        Command::Ack {
            file,
            kind,
            format,
            at,
        } => ack(&file, kind, format, at.as_deref()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`tradehub check ... | head`) is no error
        // worth a message.
        Err(CliError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "tradehub: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A failure that stops a command: a usage or I/O error (exit code 2).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn out_err(e: io::Error) -> CliError {
    CliError::Io {
        path: "standard output".into(),
        source: e,
    }
}

#[derive(Debug, Serialize)]
struct FileReport {
    file: String,
    format: &'static str,
    valid: bool,
    errors: u64,
    warnings: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    interchange: Option<Summary>,
    issues: Vec<Issue>,
}

#[derive(Debug, Serialize)]
struct Summary {
    control_reference: String,
    syntax: String,
    sender: String,
    recipient: String,
    segments: u64,
    groups: u64,
    messages: u64,
    bytes: u64,
}

fn check(files: &[PathBuf], format: Format, limits: Limits) -> Result<u8, CliError> {
    let mut reports = Vec::new();
    for path in files {
        let file = open(path)?;
        let options = ParseOptions {
            limits,
            keep_messages: false,
            decode_messages: false,
        };
        let parsed = edifact::Parser::new(file, options)
            .run(|_, _| {})
            .map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
        let i = &parsed.interchange;
        let warnings = parsed
            .issues
            .iter()
            .filter(|x| x.severity == Severity::Warning)
            .count() as u64;
        reports.push(FileReport {
            file: path.display().to_string(),
            format: "edifact",
            valid: parsed.is_valid(),
            errors: parsed.error_count,
            warnings,
            interchange: Some(Summary {
                control_reference: i.control_reference.clone(),
                syntax: format!("{}:{}", i.syntax_identifier, i.syntax_version),
                sender: i.sender.id.clone(),
                recipient: i.recipient.id.clone(),
                segments: i.counts.segments,
                groups: i.counts.groups,
                messages: i.counts.messages,
                bytes: i.counts.bytes,
            }),
            issues: parsed.issues,
        });
    }
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &reports).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text => {
            for r in &reports {
                let verdict = if r.valid { "valid" } else { "invalid" };
                let summary = r
                    .interchange
                    .as_ref()
                    .map(|s| format!(", {} message(s), {} segment(s)", s.messages, s.segments))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}: {verdict} ({} error(s), {} warning(s){summary})",
                    r.file, r.errors, r.warnings
                )
                .map_err(out_err)?;
                for issue in &r.issues {
                    writeln!(out, "  {issue}").map_err(out_err)?;
                }
            }
        }
    }
    Ok(if reports.iter().all(|r| r.valid) {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn convert(path: &Path, to: Target, una: Option<&str>) -> Result<u8, CliError> {
    let bytes = read(path)?;
    let parsed = edifact::parse(&bytes);
    let mut out = io::stdout().lock();
    match to {
        Target::Tree => {
            serde_json::to_writer_pretty(&mut out, &parsed).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Target::Edifact => {
            let seps = match una {
                Some(text) => parse_una_arg(text)?,
                None => parsed.interchange.separators,
            };
            let written =
                edifact::writer::write_interchange(&parsed.interchange, &seps, una.is_some())
                    .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
            out.write_all(&written).map_err(out_err)?;
        }
        Target::Json => {
            return Err(CliError::Usage(
                "--to json needs the canonical model, which this build does not have yet; use --to tree".into(),
            ));
        }
    }
    Ok(if parsed.is_valid() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn parse_una_arg(text: &str) -> Result<Separators, CliError> {
    let bytes = text.strip_prefix("UNA").unwrap_or(text).as_bytes();
    let chars: [u8; 6] = bytes.try_into().map_err(|_| {
        CliError::Usage(format!("--una needs exactly six characters, got {text:?}"))
    })?;
    let (seps, problems) = Separators::from_una(chars);
    if let Some((i, p)) = problems.first() {
        return Err(CliError::Usage(format!(
            "--una character {} is unusable: {p:?}",
            i + 1
        )));
    }
    Ok(seps)
}

fn ack(path: &Path, kind: AckKind, format: Format, at: Option<&str>) -> Result<u8, CliError> {
    let moment = match at {
        Some(text) => UtcMinute::parse(text)
            .ok_or_else(|| CliError::Usage(format!("--at {text:?} is not YYYY-MM-DDTHH:MM")))?,
        None => UtcMinute::now(),
    };
    let bytes = read(path)?;
    let parsed = edifact::parse(&bytes);
    let mut out = io::stdout().lock();
    match kind {
        AckKind::Contrl => {
            let options = contrl_options(&parsed, moment);
            let report = contrl::build(&parsed, &options);
            match format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &report.interchange)
                        .map_err(|e| out_err(e.into()))?;
                    writeln!(out).map_err(out_err)?;
                }
                Format::Text => {
                    // A line end after the last terminator is allowed and
                    // keeps terminals tidy.
                    out.write_all(&report.bytes).map_err(out_err)?;
                    writeln!(out).map_err(out_err)?;
                }
            }
        }
    }
    Ok(if parsed.is_valid() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

/// A UTC time to the minute (and second, for references).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UtcMinute {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl UtcMinute {
    fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
        let rem = secs.rem_euclid(86_400);
        UtcMinute {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    fn parse(text: &str) -> Option<Self> {
        let (date, time) = text.split_once('T')?;
        let mut d = date.splitn(3, '-');
        let year: i64 = d.next()?.parse().ok()?;
        let month: u32 = d.next()?.parse().ok()?;
        let day: u32 = d.next()?.parse().ok()?;
        let (h, m) = time.split_once(':')?;
        let (hour, minute): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        let ok = (1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60;
        ok.then_some(UtcMinute {
            year,
            month,
            day,
            hour,
            minute,
            second: 0,
        })
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's civil-from-days algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// CONTRL envelope data: syntax 4 dates are CCYYMMDD, earlier ones YYMMDD;
/// the reference is unique to the second.
fn contrl_options(parsed: &edifact::Parsed, t: UtcMinute) -> contrl::Options {
    let yy = t.year.rem_euclid(100);
    let date = if parsed.interchange.syntax_version == "4" {
        format!("{:04}{:02}{:02}", t.year, t.month, t.day)
    } else {
        format!("{yy:02}{:02}{:02}", t.month, t.day)
    };
    contrl::Options {
        reference: format!(
            "C{yy:02}{:02}{:02}{:02}{:02}{:02}",
            t.month, t.day, t.hour, t.minute, t.second
        ),
        date,
        time: format!("{:02}{:02}", t.hour, t.minute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_781), (2026, 11, 24));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn at_parses_and_rejects() {
        let t = UtcMinute::parse("2026-11-24T10:30").unwrap();
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute),
            (2026, 11, 24, 10, 30)
        );
        assert!(UtcMinute::parse("2026-13-01T00:00").is_none());
        assert!(UtcMinute::parse("yesterday").is_none());
    }
}
