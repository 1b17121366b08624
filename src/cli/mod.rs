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
        Command::Ack { file, kind, format } => ack(&file, kind, format),
    };
    match result {
        Ok(code) => ExitCode::from(code),
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

fn ack(path: &Path, kind: AckKind, format: Format) -> Result<u8, CliError> {
    let bytes = read(path)?;
    let parsed = edifact::parse(&bytes);
    let mut out = io::stdout().lock();
    match kind {
        AckKind::Contrl => {
            let report = contrl::build(&parsed, &contrl::Options::default());
            match format {
                Format::Json => {
                    serde_json::to_writer_pretty(&mut out, &report.interchange)
                        .map_err(|e| out_err(e.into()))?;
                    writeln!(out).map_err(out_err)?;
                }
                Format::Text => out.write_all(&report.bytes).map_err(out_err)?,
            }
        }
    }
    Ok(if parsed.is_valid() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}
