//! The `tradehub` command line: argument parsing and the commands that work
//! on files (`check`, `convert`, `ack`). Exit codes: 0 valid, 1 the input is
//! invalid, 2 usage or I/O error.

mod loadgen;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::ack::contrl;
use crate::diag::{Code, Issue, Severity};
use crate::edifact::{self, Limits, ParseOptions, Separators};
use crate::hub::{Intake, new_token, outbox};
use crate::store::{BROKER_LIVE_SECS, Forget, Store};
use crate::timestamp::Timestamp;
use crate::transport::amqp::{self, AmqpSettings};
use crate::transport::drop::{self, DropSettings};
use crate::transport::http::{self, HttpSettings};
use crate::xml::{self as tradehub_xml, DocumentSummary, XmlLimits, XmlValidator};

/// Exit code: the input is valid.
pub const EXIT_VALID: u8 = 0;
/// Exit code: the input is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: usage or I/O error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: refused for now because something is in use; the same
/// command may succeed later (75, EX_TEMPFAIL of sysexits.h).
pub const EXIT_BUSY: u8 = 75;

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
    /// The canonical model as JSON, through the mapping of the message
    /// type and release (mappings/).
    Json,
    /// WCO DEC (DEC-DMS:2) XML through the canonical model, one
    /// MetaData-wrapped document per declaration (mappings/wco/DEC.toml
    /// read backwards).
    Xml,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AckKind {
    /// CONTRL syntax and service report (syntax version of the interchange).
    Contrl,
    /// WCO RES for a WCO XML declaration: 03 rejected with Error/Pointer
    /// chains, or 02 received.
    Res,
    /// APERAK (D.96B) per message of an EDIFACT interchange: its mapping
    /// errors and business-rule findings, each located at its segment.
    /// Each answer is an interchange of its own, as the hub sends them:
    /// for an interchange of several messages the text output is several
    /// interchanges one after another (`--format json` gives them apart).
    Aperak,
    /// CUSRES (D.96B) per message: accepted, or rejected with the findings.
    /// One interchange per message, as for APERAK.
    Cusres,
}

// Parsed once at start-up: the size of `serve`'s options costs nothing.
#[allow(clippy::large_enum_variant)]
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
        #[command(flatten)]
        schema: SchemaArgs,
        #[command(flatten)]
        xml: XmlArgs,
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
        /// For --to xml: write each declaration to its own file in this
        /// folder (`<input stem>.<message>.xml`) instead of standard output.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Run the hub: HTTP intake on the embedded store (SQLite in --data-dir)
    /// or on PostgreSQL (--store-url / TRADEHUB_STORE_URL).
    Serve {
        /// Configuration file (TOML, see config/hub.toml). Flags and
        /// environment variables take precedence over it.
        #[arg(long, env = "TRADEHUB_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long, env = "TRADEHUB_LISTEN")]
        listen: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
        /// Largest request body accepted, in bytes [default: 16777216].
        #[arg(long, env = "TRADEHUB_MAX_BODY_BYTES")]
        max_body_bytes: Option<usize>,
        /// HTTP requests handled at once; beyond, 503 with Retry-After [default: 256].
        #[arg(long, env = "TRADEHUB_MAX_REQUESTS")]
        max_requests: Option<usize>,
        /// Longest an HTTP request may take, upload included; beyond, 408 [default: 60].
        #[arg(long, env = "TRADEHUB_REQUEST_TIMEOUT_SECS")]
        request_timeout_secs: Option<u64>,
        /// Longest a connection may take to send a request's headers, and
        /// longest an idle connection is kept open [default: 10].
        #[arg(long, env = "TRADEHUB_HEADER_TIMEOUT_SECS")]
        header_timeout_secs: Option<u64>,
        /// HTTP connections served at once; further ones wait [default: 1024].
        #[arg(long, env = "TRADEHUB_MAX_CONNECTIONS")]
        max_connections: Option<usize>,
        /// Messages one EDIFACT interchange may hold; more are refused
        /// (HUB414) [default: 10000].
        #[arg(long, env = "TRADEHUB_MAX_MESSAGES")]
        max_messages: Option<usize>,
        /// Longest segment accepted, in bytes [default: 262144].
        #[arg(long, env = "TRADEHUB_MAX_SEGMENT_BYTES")]
        max_segment_bytes: Option<usize>,
        /// Drop folder: files in DIR/<PARTNER>/in/ are submitted (default: <data-dir>/drop).
        #[arg(long, env = "TRADEHUB_DROP_DIR")]
        drop_dir: Option<PathBuf>,
        /// How often the drop folder is scanned, in milliseconds [default: 1000].
        #[arg(long, env = "TRADEHUB_DROP_POLL_MS")]
        drop_poll_ms: Option<u64>,
        /// A drop-folder file changed this recently (in milliseconds) is
        /// left for a later scan: it may still be being written [default: 1000].
        #[arg(long, env = "TRADEHUB_DROP_SETTLE_MS")]
        drop_settle_ms: Option<u64>,
        /// RabbitMQ URL for AMQP intake (amqp://user:password@host:5672/vhost); none: no AMQP.
        #[arg(long, env = "TRADEHUB_AMQP_URL", hide_env_values = true)]
        amqp_url: Option<String>,
        /// Unacknowledged AMQP deliveries per consumer [default: 32].
        #[arg(long, env = "TRADEHUB_AMQP_PREFETCH")]
        amqp_prefetch: Option<u16>,
        /// Prefix of every exchange and queue the hub names (e.g. `staging.`),
        /// so that hubs of several environments can share one vhost
        /// [default: none].
        #[arg(long, env = "TRADEHUB_AMQP_PREFIX")]
        amqp_prefix: Option<String>,
        /// A folder of further official UN/EDIFACT directory zips (repeatable).
        #[arg(long = "directories", value_name = "DIR")]
        directories: Vec<PathBuf>,
        /// Agency catalogue [default: config/agencies.toml].
        #[arg(long, env = "TRADEHUB_AGENCIES")]
        agencies: Option<PathBuf>,
        /// Permit routing rules [default: config/routing.toml].
        #[arg(long, env = "TRADEHUB_ROUTING")]
        routing: Option<PathBuf>,
        /// Risk lane rules [default: config/risk.toml].
        #[arg(long, env = "TRADEHUB_RISK")]
        risk: Option<PathBuf>,
        /// Seconds an agency has to answer a permit request before it
        /// expires and the declaration is held [default: 86400].
        #[arg(long, env = "TRADEHUB_PERMIT_TIMEOUT_SECS")]
        permit_timeout_secs: Option<u64>,
        /// Attempts before an outbox message the broker rejects is parked
        /// for the operator (`tradehub outbox list`) [default: 5].
        #[arg(long, env = "TRADEHUB_OUTBOX_MAX_ATTEMPTS")]
        outbox_max_attempts: Option<i64>,
        /// Hours published outbox rows are kept; 0 keeps them [default: 168].
        #[arg(long, env = "TRADEHUB_OUTBOX_RETENTION_HOURS")]
        outbox_retention_hours: Option<u64>,
        /// Days refusals (submissions refused unread: wrong sender, too
        /// large, cut off) are kept; 0 keeps them [default: 90].
        #[arg(long, env = "TRADEHUB_REFUSAL_RETENTION_DAYS")]
        refusal_retention_days: Option<u64>,
        /// ISO 3166 alpha-2 code of the country whose customs runs the hub;
        /// the MRNs it gives start with it [default: KR].
        #[arg(long, env = "TRADEHUB_COUNTRY")]
        country: Option<String>,
        /// The hub's identity as sender of its answers (UNB S002) [default: TRADEHUB].
        #[arg(long, env = "TRADEHUB_HUB_ID")]
        hub_id: Option<String>,
        /// A further UNB recipient id the hub takes interchanges for
        /// (repeatable; the hub id always is one): anything addressed to
        /// another is rejected (E0007).
        #[arg(long = "recipient-id", value_name = "ID")]
        recipient_ids: Vec<String>,
        /// PEM certificate chain: serve HTTPS (with --tls-key; either may
        /// come from the config file).
        #[arg(long, env = "TRADEHUB_TLS_CERT")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of --tls-cert.
        #[arg(long, env = "TRADEHUB_TLS_KEY")]
        tls_key: Option<PathBuf>,
    },
    /// Submit an interchange to a running hub and print its answer.
    Submit {
        file: PathBuf,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show the status, issues and audit trail of a submitted interchange.
    Status {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Drive concurrent senders against a running hub and measure, in the
    /// same run, the raw PostgreSQL commit and RabbitMQ confirmed-publish rates.
    Loadgen {
        /// Hub base URL; with --token, HTTP senders submit interchanges.
        #[arg(long, env = "TRADEHUB_URL")]
        url: Option<String>,
        #[arg(long, env = "TRADEHUB_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// UNB sender id of the generated interchanges (the token's partner).
        #[arg(long, default_value = "LOADGEN")]
        sender: String,
        /// PostgreSQL URL: measure raw INSERT+COMMIT with as many connections as senders.
        #[arg(long)]
        pg_url: Option<String>,
        /// RabbitMQ URL: measure raw confirmed persistent publishes.
        #[arg(long)]
        amqp_url: Option<String>,
        #[arg(long, default_value_t = 8)]
        senders: usize,
        #[arg(long, default_value_t = 10)]
        duration_secs: u64,
        /// Requests per second per sender (0: as fast as possible; else
        /// 0.001 to 1,000,000).
        #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
        rate: f64,
        /// Token of an agency account: each declaration then needs the
        /// agency's permit and a simulated desk grants them over HTTP,
        /// measuring submit → cleared.
        #[arg(long, env = "TRADEHUB_AGENCY_TOKEN", hide_env_values = true)]
        agency_token: Option<String>,
        /// The agency of --agency-token (goods item 1 is HS 901890, which
        /// config/routing.toml routes to KMDIA).
        #[arg(long, default_value = "KMDIA")]
        agency: String,
        /// With --amqp-url: AMQP senders publish as this broker user (the
        /// hub partner and UNB sender of the same id) and wait for the CONTRL;
        /// several, comma-separated (name or name:password), share the senders.
        #[arg(long)]
        amqp_user: Option<String>,
        /// The hub's UNB recipient id (its --hub-id) [default: TRADEHUB].
        #[arg(long, env = "TRADEHUB_HUB_ID", default_value = "TRADEHUB")]
        hub_id: String,
        /// The hub's --amqp-prefix [default: none].
        #[arg(long, env = "TRADEHUB_AMQP_PREFIX", default_value = "")]
        amqp_prefix: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Show the permits a declaration needs: map it to the canonical model
    /// and apply the routing rules (config/routing.toml) over the agency
    /// catalogue (config/agencies.toml).
    Route {
        file: PathBuf,
        /// Agency catalogue [default: config/agencies.toml].
        #[arg(long, env = "TRADEHUB_AGENCIES")]
        agencies: Option<PathBuf>,
        /// Routing rules [default: config/routing.toml].
        #[arg(long, env = "TRADEHUB_ROUTING")]
        routing: Option<PathBuf>,
        /// `text`: one line per permit; `json`: per message its LRN and
        /// permit plans.
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
    },
    /// Manage trading partners.
    Partner {
        #[command(subcommand)]
        command: PartnerCommand,
    },
    /// Outbox messages the broker declined: list them, or publish them again.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The status, issues and audit trail of any interchange, read from the
    /// store (the operator's `status`, without a partner's token): by its
    /// id, or by its sender and control reference (UNB 0020), with each
    /// declaration's trail, permits and answers.
    Trail {
        /// The interchange id (as `submit` and `status` print it).
        #[arg(required_unless_present = "reference", conflicts_with = "reference")]
        id: Option<String>,
        /// The interchange's control reference (UNB 0020), with --sender.
        #[arg(long, requires = "sender")]
        reference: Option<String>,
        /// The partner id of the interchange's sender (UNB S002), with
        /// --reference.
        #[arg(long, requires = "reference")]
        sender: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Submissions and agency answers the hub refused (wrong sender, too
    /// large, not an interchange, a reused reference, an answer not taken),
    /// newest first, from the store.
    Refusals {
        /// Only those of this partner (account) id.
        #[arg(long)]
        partner: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// What operators changed, newest first, from the store: partners
    /// added, API tokens issued again, roles, suspensions and
    /// reinstatements, trader identifiers, outbox messages retried, the
    /// broker record forgotten (recorded by the store itself, however the
    /// change was made).
    OperatorLog {
        /// Only the changes of this partner id (or `outbox SEQ`).
        #[arg(long)]
        subject: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The audit trail's hash chain: verify it, print its head (an anchor
    /// to note), or seal what is not sealed yet (the hub seals every few
    /// seconds while it runs).
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
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
        #[command(flatten)]
        schema: SchemaArgs,
        #[command(flatten)]
        xml: XmlArgs,
    },
}

/// WCO XML validation: schema folder and hostile-input limits.
#[derive(Debug, Clone, clap::Args)]
struct XmlArgs {
    /// Folder of the WCO schemas (declaration/entry.xsd,
    /// notification/entry.xsd) [default: the vendored schemas/wco].
    #[arg(long, env = "TRADEHUB_WCO_SCHEMAS", value_name = "DIR")]
    wco_schemas: Option<PathBuf>,
    /// Largest XML document accepted, in bytes.
    #[arg(long, default_value_t = XmlLimits::default().max_document_bytes)]
    xml_max_bytes: usize,
    /// Deepest XML element nesting accepted.
    #[arg(long, default_value_t = XmlLimits::default().max_depth)]
    xml_max_depth: usize,
    /// Most XML elements in one document.
    #[arg(long, default_value_t = XmlLimits::default().max_elements)]
    xml_max_elements: u64,
}

impl XmlArgs {
    fn validator(&self, max_issues: usize) -> Result<XmlValidator, CliError> {
        if let Some(dir) = &self.wco_schemas {
            check_folders("--wco-schemas", std::slice::from_ref(dir))?;
        }
        let limits = XmlLimits {
            max_document_bytes: self.xml_max_bytes,
            max_depth: self.xml_max_depth,
            max_elements: self.xml_max_elements,
            max_issues,
            ..XmlLimits::default()
        };
        Ok(XmlValidator::new(self.wco_schemas.as_deref(), limits))
    }
}

/// Structure validation against the UN/EDIFACT directories.
#[derive(Debug, Clone, clap::Args)]
struct SchemaArgs {
    /// Check the syntax only; skip validation against the message
    /// structures of the UN/EDIFACT directories.
    #[arg(long)]
    syntax_only: bool,
    /// A folder of further official UNECE directory zips (d99a.zip, …),
    /// searched before the vendored schemas/untdid. May be repeated; the
    /// TRADEHUB_DIRECTORIES path list is searched too.
    #[arg(long = "directories", value_name = "DIR")]
    directories: Vec<PathBuf>,
}

impl SchemaArgs {
    /// The directories to validate against; `None` with `--syntax-only`.
    /// A `--directories` folder that does not exist is a usage error, not a
    /// silently empty search path.
    fn directories(
        &self,
    ) -> Result<Option<std::sync::Arc<tradehub_schema::Directories>>, CliError> {
        if self.syntax_only {
            return Ok(None);
        }
        check_env_folders()?;
        if self.directories.is_empty() {
            return Ok(Some(tradehub_schema::Directories::global()));
        }
        check_folders("--directories", &self.directories)?;
        let mut folders = self.directories.clone();
        folders.extend(tradehub_schema::Directories::default_folders());
        Ok(Some(std::sync::Arc::new(
            tradehub_schema::Directories::new(&folders),
        )))
    }
}

/// Every folder `TRADEHUB_DIRECTORIES` names must exist: a mistyped path is
/// a usage error, not a silently shorter search path.
fn check_env_folders() -> Result<(), CliError> {
    for folder in tradehub_schema::Directories::env_folders() {
        if !folder.as_os_str().is_empty() && !folder.is_dir() {
            return Err(CliError::Usage(format!(
                "TRADEHUB_DIRECTORIES: {} is not a folder",
                folder.display()
            )));
        }
    }
    Ok(())
}

/// Each of `folders`, given with `flag`, must be a folder.
fn check_folders(flag: &str, folders: &[PathBuf]) -> Result<(), CliError> {
    for folder in folders {
        if !folder.is_dir() {
            return Err(CliError::Usage(format!(
                "{flag} {}: not a folder",
                folder.display()
            )));
        }
    }
    Ok(())
}

use crate::schema as tradehub_schema;

/// How to reach a running hub.
#[derive(Debug, Clone, clap::Args)]
struct ClientArgs {
    /// Base URL of the hub.
    #[arg(long, env = "TRADEHUB_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The partner's API token (from `tradehub partner add`).
    #[arg(long, env = "TRADEHUB_TOKEN", hide_env_values = true)]
    token: String,
    /// PEM file of the certificate authorities to trust for an https://
    /// URL, instead of the public ones (a hub with a certificate of the
    /// operator's own authority, or self-signed).
    #[arg(long, env = "TRADEHUB_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Longest wait for the hub's answer to one request, in seconds. Longer
    /// than the hub's own request deadline (60 s by default), so that a
    /// submission the hub gives up on is answered with its 408 (saying
    /// whether to send it again) rather than cut off by this client.
    #[arg(long, env = "TRADEHUB_CLIENT_TIMEOUT_SECS", default_value_t = 120)]
    timeout_secs: u64,
}

impl ClientArgs {
    /// A client for one call: the public certificate authorities, or only
    /// those of `--ca-file`.
    fn agent(&self) -> Result<ureq::Agent, CliError> {
        let mut builder = ureq::AgentBuilder::new();
        if let Some(ca_file) = &self.ca_file {
            let config = crate::transport::tls::client_config(ca_file)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            builder = builder.tls_config(std::sync::Arc::new(config));
        }
        Ok(builder.build())
    }
}

/// One call to the hub: the HTTP status and the JSON body.
fn call(
    client: &ClientArgs,
    method: &str,
    url: &str,
    body: Option<&[u8]>,
) -> Result<(u16, serde_json::Value), CliError> {
    let request = client
        .agent()?
        .request(method, url)
        .set("Authorization", &format!("Bearer {}", client.token))
        .timeout(std::time::Duration::from_secs(client.timeout_secs.max(1)));
    let result = match body {
        Some(bytes) => request.send_bytes(bytes),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        // (The error names the URL it was about.)
        Err(e) => return Err(CliError::Usage(e.to_string())),
    };
    let code = response.status();
    let text = response.into_string().map_err(|source| CliError::Io {
        path: client.url.clone(),
        source,
    })?;
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
    Ok((code, json))
}

/// A trail's events (`at kind: detail`), one indented line each.
fn print_events(out: &mut impl Write, events: &serde_json::Value) -> Result<(), CliError> {
    for event in events.as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {} {}: {}",
            event["at"].as_str().unwrap_or(""),
            event["kind"].as_str().unwrap_or(""),
            event["detail"].as_str().unwrap_or("")
        )
        .map_err(out_err)?;
    }
    Ok(())
}

fn print_answer(code: u16, json: &serde_json::Value, format: Format) -> Result<u8, CliError> {
    let mut out = io::stdout().lock();
    let ic = &json["interchange"];
    // Valid: the interchange, and every declaration it carried taken (a
    // declaration the business rules reject is the broker's to correct).
    let declarations = json["declarations"].as_array();
    let valid = ic["status"] == "validated"
        && !declarations
            .into_iter()
            .flatten()
            .any(|d| d["status"] == "rejected");
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, json).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text if ic.is_object() => {
            let dup = if json["duplicate"] == true {
                " (duplicate: original answer)"
            } else {
                ""
            };
            writeln!(
                out,
                "interchange {}: {}{dup} ({} message(s), {} error(s))",
                ic["id"].as_str().unwrap_or("?"),
                ic["status"].as_str().unwrap_or("?"),
                ic["message_count"],
                ic["error_count"]
            )
            .map_err(out_err)?;
            let issues = json["issues"].as_array().or(ic["issues"].as_array());
            for issue in issues.into_iter().flatten() {
                if let Ok(issue) = serde_json::from_value::<Issue>(issue.clone()) {
                    writeln!(out, "  {issue}").map_err(out_err)?;
                }
            }
            // The interchange's trail, then each declaration with its own.
            print_events(&mut out, &json["events"])?;
            // Every repeat, also those past the trail's bound (the trail).
            for r in json["repeats"].as_array().into_iter().flatten() {
                writeln!(
                    out,
                    "  repeats: {} x{}, first {}, last {}",
                    r["kind"].as_str().unwrap_or(""),
                    r["count"],
                    r["first_at"].as_str().unwrap_or(""),
                    r["last_at"].as_str().unwrap_or("")
                )
                .map_err(out_err)?;
            }
            for d in declarations.into_iter().flatten() {
                let mut about = Vec::new();
                for (key, label) in [("lrn", "LRN"), ("mrn", "MRN"), ("lane", "lane")] {
                    if let Some(v) = d[key].as_str() {
                        about.push(format!("{label} {v}"));
                    }
                }
                writeln!(
                    out,
                    "declaration {}: {} ({})",
                    d["id"].as_str().unwrap_or("?"),
                    d["status"].as_str().unwrap_or("?"),
                    about.join(", ")
                )
                .map_err(out_err)?;
                // Its permits and trail, when asked for (`status`).
                for permit in d["permits"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "  permit {} ({}): {}, due {}",
                        permit["id"].as_str().unwrap_or("?"),
                        permit["agency"].as_str().unwrap_or("?"),
                        permit["status"].as_str().unwrap_or("?"),
                        permit["due_at"].as_str().unwrap_or("?")
                    )
                    .map_err(out_err)?;
                }
                // The answers sent, and whether they went out.
                for answer in d["responses"].as_array().into_iter().flatten() {
                    writeln!(
                        out,
                        "  answer {} ({}) {}: {}",
                        answer["status"].as_str().unwrap_or("?"),
                        answer["kind"].as_str().unwrap_or("?"),
                        answer["created_at"].as_str().unwrap_or("?"),
                        match answer["published_at"].as_str() {
                            Some(at) => format!("published {at}"),
                            None => "not published yet".to_owned(),
                        }
                    )
                    .map_err(out_err)?;
                }
                print_events(&mut out, &d["events"])?;
            }
            // In the repertoire its UNB names, as the hub sends it on
            // the other transports (a saved copy reads as it says).
            if let Some(ack) = ic["acknowledgement"].as_str() {
                out.write_all(&crate::ack::to_bytes(ack)).map_err(out_err)?;
                writeln!(out).map_err(out_err)?;
            }
        }
        Format::Text => {
            // The refusal is a diagnostic (stderr); an acknowledgement that
            // comes with it is the answer (stdout).
            // With the hub's code where it gives one (HUB201, E0026, …).
            let named = json["code"]
                .as_str()
                .map(|c| format!(", {c}"))
                .unwrap_or_default();
            let _ = writeln!(
                io::stderr(),
                "refused ({code}{named}): {}",
                json["detail"].as_str().unwrap_or(&json.to_string())
            );
            if let Some(ack) = json["acknowledgement"].as_str() {
                out.write_all(&crate::ack::to_bytes(ack)).map_err(out_err)?;
                writeln!(out).map_err(out_err)?;
            }
        }
    }
    Ok(match code {
        200..=299 if valid => EXIT_VALID,
        200..=299 | 403 | 409 | 413 | 415 => EXIT_INVALID,
        _ => EXIT_USAGE,
    })
}

fn submit(path: &Path, client: &ClientArgs, format: Format) -> Result<u8, CliError> {
    let bytes = read(path)?;
    let url = format!("{}/v1/interchanges", client.url.trim_end_matches('/'));
    let sent_at = Timestamp::now();
    let (code, mut json) = match call(client, "POST", &url, Some(&bytes)) {
        Ok(answer) => answer,
        Err(e) => refused_unread(client, bytes.len(), sent_at).ok_or(e)?,
    };
    // The declarations the interchange carried, as the hub has taken them
    // (a syntax-valid interchange can still hold a rejected declaration).
    // A hub busy for a moment (503, 408) is asked again; if they cannot
    // be read, the answer is printed and the command says so (exit 2),
    // rather than letting a rejected declaration pass unseen.
    let mut unread = None;
    if (200..300).contains(&code)
        && let Some(id) = json["interchange"]["id"].as_str().map(str::to_owned)
    {
        let url = format!("{}/v1/interchanges/{id}", client.url.trim_end_matches('/'));
        let mut attempt = 0;
        let full = loop {
            attempt += 1;
            match call(client, "GET", &url, None) {
                Ok((200, full)) => break Ok(full),
                Ok((408 | 503, _)) | Err(_) if attempt < 3 => {
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
                Ok((code, answer)) => {
                    break Err(format!(
                        "{code}: {}",
                        answer["detail"].as_str().unwrap_or("no detail")
                    ));
                }
                Err(e) => break Err(e.to_string()),
            }
        };
        match full {
            Ok(full) => {
                if let Some(object) = json.as_object_mut() {
                    object.insert("declarations".into(), full["declarations"].clone());
                }
            }
            Err(why) => unread = Some((id, why)),
        }
    }
    let exit = print_answer(code, &json, format)?;
    if let Some((id, why)) = unread {
        let _ = writeln!(
            io::stderr(),
            "tradehub: interchange {id} was taken, but its declarations could not be read ({why}): \
             see `tradehub status {id}`"
        );
        return Ok(EXIT_USAGE);
    }
    Ok(exit)
}

/// The hub's answer to a submission it refused unread, when sending it
/// failed: the hub answers a body over its limit (413, HUB413) on its
/// declared length and closes the connection without reading it, so this
/// client fails writing the rest (a broken pipe) and never reads that
/// answer. The refusal is recorded, so it is asked for: the newest of the
/// caller's refusals since `sent_at` of a body of `size` bytes left
/// unread (no SHA-256). None when there is none (the hub went away
/// instead, or cannot be asked), and the failure stands as it was.
fn refused_unread(
    client: &ClientArgs,
    size: usize,
    sent_at: Timestamp,
) -> Option<(u16, serde_json::Value)> {
    let url = format!("{}/v1/refusals?limit=20", client.url.trim_end_matches('/'));
    let (200, list) = call(client, "GET", &url, None).ok()? else {
        return None;
    };
    // Recorded with the second it was refused in (the clock's own).
    let since = sent_at.unix() - 1;
    let refusal = list["refusals"].as_array()?.iter().find(|r| {
        r["size_bytes"].as_i64() == i64::try_from(size).ok()
            && r["sha256"].as_str() == Some("")
            && r["at"]
                .as_str()
                .and_then(Timestamp::parse)
                .is_some_and(|at| at.unix() >= since)
    })?;
    let code = match refusal["code"].as_str()? {
        "HUB413" => 413,
        _ => return None,
    };
    Some((
        code,
        serde_json::json!({"code": refusal["code"], "detail": refusal["detail"]}),
    ))
}

/// An id of the hub (a UUID) is letters, digits and dashes: anything else
/// put in a path would take the request, and the token with it, elsewhere.
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn status(id: &str, client: &ClientArgs, format: Format) -> Result<u8, CliError> {
    if !is_plain_id(id) {
        return Err(CliError::Usage(format!(
            "{id:?} is not an interchange id (letters, digits and dashes)"
        )));
    }
    let base = client.url.trim_end_matches('/');
    let url = format!("{base}/v1/interchanges/{id}");
    let (code, mut json) = call(client, "GET", &url, None)?;
    if code == 404 {
        return Err(CliError::Usage(format!(
            "no interchange {id} at {}",
            client.url
        )));
    }
    // Each declaration's own trail (lane, permits requested and answered,
    // expiry, release, answers sent), beside the interchange's.
    if let Some(declarations) = json
        .get_mut("declarations")
        .and_then(serde_json::Value::as_array_mut)
    {
        for d in declarations.iter_mut() {
            let Some(declaration) = d["id"].as_str().filter(|id| is_plain_id(id)) else {
                continue;
            };
            let url = format!("{base}/v1/declarations/{declaration}");
            if let (200, mut whole) = call(client, "GET", &url, None)? {
                for key in ["events", "permits", "responses"] {
                    if let Some(value) = whole.get_mut(key).map(serde_json::Value::take) {
                        d[key] = value;
                    }
                }
            }
        }
    }
    print_answer(code, &json, format)
}

/// The store at `url`, opened for an operator's command (see
/// [`Store::open_for_admin`]): what it changes is recorded in the operator
/// log in the name of [`operator_name`].
async fn admin_store(url: &str) -> Result<Store, CliError> {
    Store::open_for_admin(url)
        .await
        .map(|store| store.with_operator(&operator_name()))
        .map_err(|e| CliError::Usage(format!("store: {e}")))
}

/// Who runs an operator's command, for the operator log:
/// `TRADEHUB_OPERATOR` when set (a name of the organisation's choosing),
/// else the login name (`SUDO_USER` first, so that a command run with sudo
/// names who ran it, not root; then `USER`, `LOGNAME`), else none.
fn operator_name() -> String {
    operator_name_from(|key| std::env::var(key).ok())
}

fn operator_name_from(var: impl Fn(&str) -> Option<String>) -> String {
    ["TRADEHUB_OPERATOR", "SUDO_USER", "USER", "LOGNAME"]
        .into_iter()
        .filter_map(var)
        .map(|name| {
            name.trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .find(|name| !name.is_empty())
        .unwrap_or_default()
}

/// What `read` reads from the store at `url`, opened for an operator's
/// command and closed again before the result is used.
async fn admin_read<T>(
    url: &str,
    read: impl AsyncFnOnce(&Store) -> Result<T, crate::store::StoreError>,
) -> Result<T, CliError> {
    let store = admin_store(url).await?;
    let read = read(&store).await;
    store.close().await;
    read.map_err(|e| CliError::Usage(e.to_string()))
}

/// `tradehub trail`: an interchange as `status` shows it, read from the
/// store, by id or by sender and control reference.
fn trail(
    id: Option<String>,
    by_reference: Option<(String, String)>,
    format: Format,
    store: &StoreArgs,
) -> Result<u8, CliError> {
    let url = store.existing_url()?;
    runtime()?.block_on(async move {
        let json = admin_read(&url, async |store: &Store| {
            trail_of(store, id.as_deref(), by_reference.as_ref()).await
        })
        .await?;
        let Some(json) = json else {
            let what = match (id, by_reference) {
                (Some(id), _) => id,
                (None, Some((sender, reference))) => {
                    format!("with control reference {reference:?} from {sender:?}")
                }
                (None, None) => String::new(),
            };
            return Err(CliError::Usage(format!(
                "no interchange {what} in the store"
            )));
        };
        print_answer(200, &json, format)
    })
}

/// The interchange, its issues and events, and its declarations, each with
/// its events, permits and answers; `None` when there is no such
/// interchange.
async fn trail_of(
    store: &Store,
    id: Option<&str>,
    by_reference: Option<&(String, String)>,
) -> Result<Option<serde_json::Value>, crate::store::StoreError> {
    let found = match (id, by_reference) {
        (Some(id), _) => store.interchange(id).await?,
        (None, Some((sender, reference))) => {
            store.interchange_by_reference(sender, reference).await?
        }
        (None, None) => None,
    };
    let Some(ic) = found else {
        return Ok(None);
    };
    let events = store.events(&ic.id).await?;
    let repeats = store.repeat_counts(&ic.id).await?;
    let issues: serde_json::Value =
        serde_json::from_str(&ic.issues_json).unwrap_or_else(|_| serde_json::json!([]));
    let mut declarations = Vec::new();
    for d in store.declarations_of(&ic.id).await? {
        let (events, permits, responses) = (
            store.declaration_events(&d.id).await?,
            store.permits_of(&d.id).await?,
            store.responses_of(&d.id).await?,
        );
        let mut json = serde_json::to_value(&d).unwrap_or_default();
        json["events"] = serde_json::to_value(events).unwrap_or_default();
        json["permits"] = serde_json::to_value(permits).unwrap_or_default();
        json["responses"] = serde_json::to_value(responses).unwrap_or_default();
        declarations.push(json);
    }
    Ok(Some(serde_json::json!({
        "interchange": ic,
        "issues": issues,
        "events": events,
        "repeats": repeats,
        "declarations": declarations,
    })))
}

/// Where the store is: an explicit URL, or SQLite in the data directory.
#[derive(Debug, Clone, clap::Args)]
struct StoreArgs {
    /// Directory of the embedded store (SQLite) and other local state
    /// [default: ./data].
    #[arg(long, env = "TRADEHUB_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite://FILE or postgres://...); default: SQLite in --data-dir.
    #[arg(long, env = "TRADEHUB_STORE_URL")]
    store_url: Option<String>,
}

impl StoreArgs {
    fn data_dir(&self) -> PathBuf {
        self.data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("./data"))
    }

    fn url(&self) -> Result<String, CliError> {
        match &self.store_url {
            Some(url) => Ok(url.clone()),
            None => {
                Store::embedded_url(&self.data_dir()).map_err(|e| CliError::Usage(e.to_string()))
            }
        }
    }

    /// The embedded store's file, when it is the one used.
    fn embedded_file(&self) -> Option<PathBuf> {
        self.store_url
            .is_none()
            .then(|| self.data_dir().join("tradehub.db"))
    }

    /// [`url`](Self::url) of a store that must exist already: an
    /// administration command with a mistyped `--data-dir` (or run from
    /// another directory) is refused rather than working on a new, empty
    /// store the hub never reads.
    fn existing_url(&self) -> Result<String, CliError> {
        if let Some(file) = self.embedded_file()
            && !file.is_file()
        {
            return Err(CliError::Usage(format!(
                "no store at {} (give the hub's --data-dir or --store-url)",
                file.display()
            )));
        }
        self.url()
    }
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check every seal against its event and the seal before it, the
    /// head, and each anchor; exit 1 when anything does not match.
    Verify {
        /// A head noted earlier, `POS:HASH` (as `audit head` and the hub's
        /// log print it): the chain must still lead through it. Repeatable.
        #[arg(long = "anchor", value_name = "POS:HASH")]
        anchors: Vec<crate::store::Anchor>,
        /// Also check each interchange's raw bytes against the SHA-256
        /// its sealed `received` event recorded (reads every interchange).
        #[arg(long)]
        raw: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print the chain's head as `POS:HASH`, an anchor to keep outside the
    /// database.
    Head {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Seal every committed event not sealed yet, and print the new head.
    Seal {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Messages waiting for another attempt and parked ones, oldest first.
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Publish parked and waiting messages again at once, with a fresh count
    /// of attempts (a running hub's relay takes them on its next round).
    Retry {
        /// The messages' sequence numbers (from `outbox list`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        seqs: Vec<i64>,
        /// Every parked and waiting message.
        #[arg(long)]
        all: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The broker the store's outbox is published to, as the hub
    /// instances with `--amqp-url` record it (their AMQP prefix); an
    /// instance without a broker, or with another prefix, refuses to start
    /// on the store. `--forget` clears it, once every instance is stopped,
    /// to move the store to another prefix or off RabbitMQ; it refuses
    /// (exit 2) while a relay publishing to it claimed in the last 90 s.
    Broker {
        #[arg(long)]
        forget: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Register a trading partner and print its API token (shown only once).
    Add {
        /// The partner's id: the interchange sender id it uses in UNB.
        id: String,
        #[arg(long)]
        name: String,
        /// The account acts for this agency (its code in the agency
        /// catalogue): it reads the agency's permit inbox and answers
        /// permits. `CUSTOMS` makes it a customs officer's account.
        #[arg(long)]
        agency: Option<String>,
        /// A trader identifier (e.g. an EORI number) the partner submits
        /// WCO declarations for; repeat for several. With any registered,
        /// a WCO declaration's Submitter (or Declarant) must be one of them.
        #[arg(long = "trader-id")]
        trader_ids: Vec<String>,
        /// The agency catalogue `--agency` is checked against (the one the
        /// hub serves with).
        #[arg(long, env = "TRADEHUB_AGENCIES")]
        agencies: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Issue a new API token for an existing partner (shown only once): the
    /// old one stops working (on running hubs within 30 s, their token
    /// cache). For a lost or leaked token.
    Token {
        /// The partner's id.
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Suspend a partner: until it is reinstated, every interchange it
    /// submits (HTTP, drop folder, AMQP) and every permit decision or
    /// release its account sends is refused with HUB204 and recorded (on
    /// running hubs within 30 s, their token cache). Its records stay.
    Suspend {
        /// The partner's id.
        id: String,
        /// Why (a licence withdrawn, a contract ended): the refusals say it.
        #[arg(long)]
        reason: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Reinstate a suspended partner.
    Reinstate {
        /// The partner's id.
        id: String,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the registered partners: id, name, the agency an account acts
    /// for, and any suspension.
    List {
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Register trader identifiers (e.g. EORI numbers) an existing partner
    /// submits WCO declarations for.
    Traders {
        /// The partner's id.
        id: String,
        /// The trader identifiers to add.
        #[arg(required = true)]
        trader_ids: Vec<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            path: "runtime".into(),
            source,
        })
}

/// The hub's configuration file (config/hub.toml). Every key is optional;
/// a command-line flag or environment variable wins over the file, the file
/// over the built-in default. Unknown keys are an error, so that a typo is
/// not silently ignored.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HubConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    store_url: Option<String>,
    max_body_bytes: Option<usize>,
    max_requests: Option<usize>,
    request_timeout_secs: Option<u64>,
    header_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    max_messages: Option<usize>,
    max_segment_bytes: Option<usize>,
    drop_dir: Option<PathBuf>,
    drop_poll_ms: Option<u64>,
    drop_settle_ms: Option<u64>,
    amqp_url: Option<String>,
    amqp_prefetch: Option<u16>,
    amqp_prefix: Option<String>,
    /// Folders of further official UN/EDIFACT directory zips.
    directories: Option<Vec<PathBuf>>,
    agencies: Option<PathBuf>,
    routing: Option<PathBuf>,
    risk: Option<PathBuf>,
    permit_timeout_secs: Option<u64>,
    outbox_max_attempts: Option<i64>,
    outbox_retention_hours: Option<u64>,
    refusal_retention_days: Option<u64>,
    country: Option<String>,
    hub_id: Option<String>,
    recipient_ids: Option<Vec<String>>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl HubConfig {
    fn load(path: &Path) -> Result<HubConfig, CliError> {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            let message = e.message().to_owned();
            let at = e
                .span()
                .map(|span| {
                    let line = crate::mapping::line_of(&text, span.start);
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            CliError::Usage(format!("{}: {message}{at}", path.display()))
        })
    }
}

/// What `tradehub serve` was asked to run.
#[derive(Debug)]
struct ServeOptions {
    directories: Vec<PathBuf>,
    listen: String,
    store: StoreArgs,
    max_body_bytes: usize,
    http: HttpSettings,
    limits: Limits,
    drop_dir: PathBuf,
    drop_poll: std::time::Duration,
    drop_settle: std::time::Duration,
    amqp: Option<AmqpSettings>,
    clearance: crate::hub::clearance::Clearance,
    tls: Option<crate::transport::tls::TlsSettings>,
    relay: outbox::RelaySettings,
    max_messages: usize,
}

/// The log filter without `TRADEHUB_LOG`. PostgreSQL's notices
/// (`relation "_sqlx_migrations" already exists, skipping` at every start)
/// are not the hub's news: warnings and up. The AMQP client's warning of a
/// message the broker returned quotes the message whole, a declaration's
/// parties and goods among them; the hub logs the return itself, by
/// destination (the outbox relay's "message declined" line).
const DEFAULT_LOG: &str = "info,sqlx::postgres::notice=warn,lapin::returned_messages=off";

fn serve(opts: ServeOptions) -> Result<u8, CliError> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TRADEHUB_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(ansi)
        .try_init();
    let url = opts.store.url()?;
    let listen = opts.listen.clone();
    runtime()?.block_on(async move {
        let store = Store::open(&url).await.map_err(|e| CliError::Usage(format!("store: {e}")))?;
        check_outbox_broker(&store, opts.amqp.as_ref()).await?;
        let io = |source| CliError::Io { path: listen.clone(), source };
        let acceptor = match &opts.tls {
            Some(tls) => Some(crate::transport::tls::acceptor(tls).map_err(|e| CliError::Usage(e.to_string()))?),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(&listen).await.map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        // Where the store and the broker are (without user or password):
        // an environment variable overrides the configuration file, and
        // the log says which won.
        let broker = opts.amqp.as_ref().map_or_else(
            || "none (in-process transport)".to_owned(),
            |a| format!("{} prefix {:?}", crate::store::store_target(&a.url), a.prefix),
        );
        tracing::info!(%addr, scheme, backend = ?store.backend(), store = %crate::store::store_target(&url), %broker, drop_dir = %opts.drop_dir.display(), "tradehub listening");
        let mut intake = Intake::new(store.clone(), opts.limits)
            .with_clearance(opts.clearance.clone())
            .with_max_messages(opts.max_messages);
        if !opts.directories.is_empty() {
            let mut folders = opts.directories.clone();
            folders.extend(crate::schema::Directories::default_folders());
            intake = intake.with_directories(std::sync::Arc::new(crate::schema::Directories::new(&folders)));
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let drop_settings = DropSettings {
            dir: opts.drop_dir.clone(),
            poll: opts.drop_poll,
            settle: opts.drop_settle,
            max_file_bytes: opts.max_body_bytes as u64,
        };
        let dropper = tokio::spawn(drop::watch(intake.clone(), drop_settings, stopped(stop_rx.clone())));
        // Configured before anything runs: permits do not expire before the
        // consumer has taken the agency replies waiting in the broker.
        if opts.amqp.is_some() {
            intake.broker().set_configured();
        }
        let amqp_task = opts.amqp.clone().map(|s| tokio::spawn(amqp::run(intake.clone(), s, stop_rx.clone())));
        // The outbox relay: RabbitMQ with confirms, or in-process when embedded.
        let relay = opts.relay;
        let relay_task = match opts.amqp.clone() {
            // Answers also go to the drop folders of partners that have one.
            Some(s) => {
                let publisher = std::sync::Arc::new(drop::DropDelivery::new(
                    std::sync::Arc::new(amqp::OutboxPublisher::new(s)),
                    opts.drop_dir.clone(),
                ));
                tokio::spawn(outbox::relay(store.clone(), publisher, intake.outbox_wake(), relay, stopped(stop_rx.clone())))
            }
            None => {
                let publisher = std::sync::Arc::new(drop::DropDelivery::new(
                    std::sync::Arc::new(outbox::InProcess::new(1024)),
                    opts.drop_dir.clone(),
                ));
                tokio::spawn(outbox::relay(store.clone(), publisher, intake.outbox_wake(), relay, stopped(stop_rx.clone())))
            }
        };
        // Permits not answered in time expire; the declaration is held.
        let expiry = tokio::spawn(crate::hub::permits::expire_loop(
            intake.clone(),
            std::time::Duration::from_secs(5),
            stopped(stop_rx.clone()),
        ));
        // The audit trail's hash chain, sealed as events commit.
        let metrics = intake.shared_metrics();
        let sealer = tokio::spawn(
            crate::hub::audit::Sealer::new(store.clone(), metrics.clone())
                .run_until(crate::hub::audit::SEAL_EVERY, stopped(stop_rx.clone())),
        );
        let settings = opts.http;
        let signal = async move {
            shutdown_signal().await;
            let _ = stop_tx.send(true);
        };
        let served = match acceptor {
            Some(acceptor) => {
                let listener = crate::transport::tls::TlsListener::new(listener, acceptor).map_err(io)?;
                http::serve_tls(listener, intake, settings, signal).await
            }
            None => http::serve(listener, intake, settings, signal).await,
        };
        // The drop folder finishes the file in hand (it stops with the signal).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), dropper).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), relay_task).await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), expiry).await;
        if let Some(task) = amqp_task {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
        }
        // Last, when nothing else writes: the sealer's final run.
        let mut sealer_task = sealer;
        let mut sealer = match tokio::time::timeout(std::time::Duration::from_secs(30), &mut sealer_task).await {
            Ok(Ok(sealer)) => sealer,
            _ => {
                sealer_task.abort();
                crate::hub::audit::Sealer::new(store.clone(), metrics)
            }
        };
        sealer.run(true).await;
        served.map_err(|source| CliError::Io { path: addr.to_string(), source })?;
        store.close().await;
        tracing::info!("tradehub stopped");
        Ok(EXIT_VALID)
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// Prints a new API token under its heading (the only time it is shown).
/// Prints a new token: a heading and the token on its own last line, or
/// `{"partner", "token"}` as JSON.
fn print_token(heading: &str, id: &str, token: &str, format: Format) -> Result<u8, CliError> {
    let mut out = io::stdout().lock();
    match format {
        Format::Text => {
            writeln!(out, "{heading}").map_err(out_err)?;
            writeln!(out, "{token}").map_err(out_err)?;
        }
        Format::Json => {
            let json = serde_json::json!({"partner": id, "token": token});
            writeln!(out, "{json}").map_err(out_err)?;
        }
    }
    Ok(EXIT_VALID)
}

fn refusals_command(
    partner: Option<&str>,
    limit: i64,
    format: Format,
    store_args: &StoreArgs,
) -> Result<u8, CliError> {
    let url = store_args.existing_url()?;
    let refusals = runtime()?.block_on(admin_read(&url, async |store: &Store| {
        store.refusal_list(partner, limit.max(1)).await
    }))?;
    print_listing("refusals", &refusals, format, |r| {
        let size = if r.size_bytes < 0 {
            "size unknown".to_owned()
        } else {
            format!("{} bytes", r.size_bytes)
        };
        format!(
            "{}  {}  {}  {}  {size}: {}",
            r.seq,
            r.at,
            r.partner_id.as_deref().unwrap_or("(sender unknown)"),
            r.code,
            r.detail
        )
    })
}

/// `tradehub operator-log`: what operators changed, newest first.
fn operator_log_command(
    subject: Option<&str>,
    limit: i64,
    format: Format,
    store_args: &StoreArgs,
) -> Result<u8, CliError> {
    let url = store_args.existing_url()?;
    let actions = runtime()?.block_on(admin_read(&url, async |store: &Store| {
        store.operator_log(subject, limit.max(1)).await
    }))?;
    print_listing("operator_log", &actions, format, |a| {
        let by = match (a.operator.as_deref(), a.by_role.as_deref()) {
            (Some(name), Some(role)) => format!(" (by {name}, database role {role})"),
            (Some(name), None) => format!(" (by {name})"),
            (None, Some(role)) => format!(" (database role {role})"),
            (None, None) => String::new(),
        };
        format!(
            "{}  {}  {}  {}{by}: {}",
            a.seq, a.at, a.action, a.subject, a.detail
        )
    })
}

/// `tradehub audit`: verify the hash chain, print its head, or seal.
fn audit_command(command: AuditCommand) -> Result<u8, CliError> {
    let mut out = io::stdout().lock();
    match command {
        AuditCommand::Verify {
            anchors,
            raw,
            format,
            store,
        } => {
            let url = store.existing_url()?;
            let report = runtime()?.block_on(admin_read(&url, async |store: &Store| {
                store.verify_audit(&anchors, raw).await
            }))?;
            match format {
                Format::Json => {
                    let json = serde_json::json!({
                        "intact": report.intact(),
                        "report": report,
                    });
                    writeln!(out, "{json:#}").map_err(out_err)?;
                }
                Format::Text => {
                    for f in &report.findings {
                        writeln!(out, "{}: {}", f.code, f.message).map_err(out_err)?;
                    }
                    if report.findings_total > report.findings.len() as u64 {
                        writeln!(
                            out,
                            "... and {} more",
                            report.findings_total - report.findings.len() as u64
                        )
                        .map_err(out_err)?;
                    }
                    let verdict = if report.intact() {
                        "intact"
                    } else {
                        "NOT intact"
                    };
                    writeln!(
                        out,
                        "audit chain {verdict}: {} seals checked, head {}, {} anchor(s) checked,{} {} event(s) not sealed yet, {} finding(s)",
                        report.sealed,
                        report.head,
                        report.anchors,
                        if raw {
                            format!(" {} interchange(s)' raw bytes checked,", report.raw_checked)
                        } else {
                            String::new()
                        },
                        report.pending,
                        report.findings_total
                    )
                    .map_err(out_err)?;
                }
            }
            Ok(if report.intact() {
                EXIT_VALID
            } else {
                EXIT_INVALID
            })
        }
        AuditCommand::Head { format, store } => {
            let url = store.existing_url()?;
            let head = runtime()?.block_on(admin_read(&url, async |store: &Store| {
                store.audit_head().await
            }))?;
            print_head(&mut out, &head, None, format)
        }
        AuditCommand::Seal { format, store } => {
            let url = store.existing_url()?;
            let (sealed, head) = runtime()?.block_on(admin_read(&url, async |store: &Store| {
                let sealed = store
                    .seal_all_events(crate::hub::audit::SEAL_BATCH, Timestamp::now())
                    .await?;
                Ok((sealed, store.audit_head().await?))
            }))?;
            print_head(&mut out, &head, Some(sealed), format)
        }
    }
}

fn print_head(
    out: &mut impl Write,
    head: &crate::store::ChainHead,
    sealed: Option<u64>,
    format: Format,
) -> Result<u8, CliError> {
    match format {
        Format::Json => {
            let mut json =
                serde_json::json!({"pos": head.pos, "hash": head.hash, "anchor": head.to_string()});
            if let (Some(n), Some(map)) = (sealed, json.as_object_mut()) {
                map.insert("sealed".into(), n.into());
            }
            writeln!(out, "{json:#}").map_err(out_err)?;
        }
        Format::Text => {
            if let Some(n) = sealed {
                writeln!(out, "sealed {n} event(s)").map_err(out_err)?;
            }
            writeln!(out, "{head}").map_err(out_err)?;
        }
    }
    Ok(EXIT_VALID)
}

/// A listing an operator command read from the store: as JSON, the rows
/// under `key`; as text, a `line` per row.
fn print_listing<T: serde::Serialize>(
    key: &str,
    rows: &[T],
    format: Format,
    line: impl Fn(&T) -> String,
) -> Result<u8, CliError> {
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            let json = serde_json::json!({ key: rows });
            writeln!(out, "{json:#}").map_err(out_err)?;
        }
        Format::Text => {
            for row in rows {
                writeln!(out, "{}", line(row)).map_err(out_err)?;
            }
        }
    }
    Ok(EXIT_VALID)
}

fn outbox_command(command: OutboxCommand) -> Result<u8, CliError> {
    let store_args = match &command {
        OutboxCommand::List { store, .. }
        | OutboxCommand::Retry { store, .. }
        | OutboxCommand::Broker { store, .. } => store,
    };
    let url = store_args.existing_url()?;
    runtime()?.block_on(async move {
        let store = admin_store(&url).await?;
        let failed = |e: crate::store::StoreError| CliError::Usage(e.to_string());
        let mut out = io::stdout().lock();
        match command {
            OutboxCommand::List { format, limit, .. } => {
                let counts = store.outbox_counts().await.map_err(failed)?;
                let problems = store.outbox_problems(limit.max(1)).await.map_err(failed)?;
                match format {
                    Format::Json => {
                        let report = serde_json::json!({
                            "backlog": counts.backlog,
                            "waiting": counts.waiting,
                            "parked": counts.parked,
                            "messages": problems,
                        });
                        writeln!(out, "{report:#}").map_err(out_err)?;
                    }
                    Format::Text => {
                        writeln!(
                            out,
                            "outbox: {} to publish ({} of them waiting for another attempt), {} parked",
                            counts.backlog, counts.waiting, counts.parked
                        )
                        .map_err(out_err)?;
                        let now = Timestamp::now().to_string();
                        for p in &problems {
                            // Timestamps in one fixed format compare as text.
                            let state = match (&p.parked_at, &p.retry_at) {
                                (Some(at), _) => format!("parked {at}"),
                                (None, Some(at)) if *at > now => format!("next attempt {at}"),
                                (None, _) => "due now".into(),
                            };
                            writeln!(
                                out,
                                "{}  {}  {}/{}  {} attempt(s), {}: {}",
                                p.seq,
                                p.message_id,
                                p.exchange,
                                p.routing_key,
                                p.attempts,
                                state,
                                p.last_error.as_deref().unwrap_or("")
                            )
                            .map_err(out_err)?;
                        }
                    }
                }
            }
            OutboxCommand::Retry {
                seqs, all, format, ..
            } => {
                let chosen = (!all).then_some(seqs.as_slice());
                let n = store.retry_outbox(chosen).await.map_err(failed)?;
                let named = if all {
                    0
                } else {
                    seqs.iter().collect::<std::collections::HashSet<_>>().len() as u64
                };
                if named > 0 && n == 0 {
                    store.close().await;
                    return Err(CliError::Usage(format!(
                        "none of the {named} message(s) named is waiting or parked (unknown, \
                         already published, or due now): see `tradehub outbox list`"
                    )));
                }
                if format == Format::Json {
                    let json = serde_json::json!({
                        "requeued": n,
                        "not_waiting": named.saturating_sub(n),
                    });
                    writeln!(out, "{json}").map_err(out_err)?;
                    store.close().await;
                    return Ok(EXIT_VALID);
                }
                writeln!(out, "{n} message(s) will be published again").map_err(out_err)?;
                if n < named {
                    writeln!(
                        out,
                        "{} of the messages named are not waiting or parked (unknown, already \
                         published, or due now)",
                        named - n
                    )
                    .map_err(out_err)?;
                }
            }
            OutboxCommand::Broker { forget, .. } => {
                let none = "outbox: no broker recorded (the relays publish in-process)";
                let line = if forget {
                    match store
                        .forget_outbox_broker()
                        .await
                        .map_err(failed)?
                    {
                        Forget::NoneRecorded => none.to_owned(),
                        Forget::Forgotten(prefix) => format!(
                            "outbox: RabbitMQ under the AMQP prefix {prefix:?} forgotten; the next instance to start records its own"
                        ),
                        Forget::InUse {
                            prefix,
                            seen_secs_ago,
                        } => {
                            store.close().await;
                            return Err(CliError::Busy(format!(
                                "not forgotten: an instance publishing to RabbitMQ under the AMQP prefix {prefix:?} \
                                 claimed from the outbox {seen_secs_ago} s ago and would record it again; stop \
                                 every instance, then forget it once {BROKER_LIVE_SECS} s have passed"
                            )));
                        }
                    }
                } else {
                    match store.outbox_broker_seen().await.map_err(failed)? {
                        None => none.to_owned(),
                        Some((prefix, seen)) => {
                            let seen = match seen {
                                Some(at) => format!("a relay with it last claimed at {at}"),
                                None => "no relay with it has claimed yet".to_owned(),
                            };
                            format!(
                                "outbox: published to RabbitMQ under the AMQP prefix {prefix:?} ({seen})"
                            )
                        }
                    }
                };
                writeln!(out, "{line}").map_err(out_err)?;
            }
        }
        store.close().await;
        Ok(EXIT_VALID)
    })
}

/// One broker per store: the relays of every hub instance on a store claim
/// each other's outbox rows, so they must all publish them to the same
/// place. An instance with `--amqp-url` records its AMQP prefix on the
/// store (the first to start does); one without a broker, or with another
/// prefix, is refused (exit 2) instead of marking the others' messages
/// published where no consumer is.
async fn check_outbox_broker(
    store: &Store,
    amqp: Option<&amqp::AmqpSettings>,
) -> Result<(), CliError> {
    let failed = |e: crate::store::StoreError| CliError::Usage(format!("store: {e}"));
    let forget = "stop every instance and run `tradehub outbox broker --forget` on the store";
    match amqp {
        Some(settings) => {
            let recorded = store
                .record_outbox_broker(&settings.prefix, Timestamp::now())
                .await
                .map_err(failed)?;
            if recorded != settings.prefix {
                return Err(CliError::Usage(format!(
                    "the store's outbox is published to RabbitMQ under the AMQP prefix {recorded:?} \
                     by the hub instances that share it, and this one uses {:?}: run every \
                     instance with one prefix (to move the store to another, {forget})",
                    settings.prefix
                )));
            }
        }
        None => {
            if let Some(recorded) = store.outbox_broker().await.map_err(failed)? {
                return Err(CliError::Usage(format!(
                    "the store's outbox is published to RabbitMQ (AMQP prefix {recorded:?}) by the \
                     hub instances that share it; without --amqp-url this instance's relay would \
                     mark their messages published without sending them: start it with \
                     --amqp-url (if the store no longer uses RabbitMQ, {forget})"
                )));
            }
        }
    }
    Ok(())
}

/// Suspends (`reason`) or reinstates (`None`) a partner and prints it.
fn partner_suspension(
    id: &str,
    reason: Option<String>,
    format: Format,
    store: &StoreArgs,
) -> Result<u8, CliError> {
    if let Some(reason) = &reason {
        if reason.trim().is_empty() {
            return Err(CliError::Usage(
                "--reason must say why the partner is suspended".into(),
            ));
        }
        if let Some(c) = crate::hub::permits::control_character(reason) {
            return Err(CliError::Usage(format!(
                "--reason holds the control character U+{:04X}",
                c as u32
            )));
        }
    }
    let url = store.existing_url()?;
    runtime()?.block_on(async move {
        let store = admin_store(&url).await?;
        let changed = store
            .set_partner_suspension(id, reason.as_deref(), Timestamp::now())
            .await;
        let partner = match changed {
            Ok(true) => store.partner(id).await,
            Ok(false) => Ok(None),
            Err(e) => Err(e),
        };
        store.close().await;
        let partner = partner
            .map_err(|e| CliError::Usage(e.to_string()))?
            .ok_or_else(|| CliError::Usage(format!("no partner {id:?}")))?;
        let mut out = io::stdout().lock();
        match (format, &partner.suspended) {
            (Format::Json, _) => writeln!(
                out,
                "{}",
                serde_json::to_string(&partner).unwrap_or_default()
            ),
            (Format::Text, Some(s)) => writeln!(
                out,
                "partner {id} suspended since {}: {} (running hubs refuse it within 30 s)",
                s.since, s.reason
            ),
            (Format::Text, None) => writeln!(out, "partner {id} reinstated"),
        }
        .map_err(out_err)?;
        Ok(EXIT_VALID)
    })
}

fn partner(command: PartnerCommand) -> Result<u8, CliError> {
    match command {
        PartnerCommand::Suspend {
            id,
            reason,
            format,
            store,
        } => partner_suspension(&id, Some(reason), format, &store),
        PartnerCommand::Reinstate { id, format, store } => {
            partner_suspension(&id, None, format, &store)
        }
        PartnerCommand::List { format, store } => {
            let url = store.existing_url()?;
            runtime()?.block_on(async move {
                let partners =
                    admin_read(&url, async |store: &Store| store.partners().await).await?;
                let mut out = io::stdout().lock();
                match format {
                    Format::Json => writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&partners).unwrap_or_default()
                    ),
                    Format::Text => partners.iter().try_for_each(|p| {
                        let agency = p
                            .agency
                            .as_deref()
                            .map(|a| format!(" (acts for {a})"))
                            .unwrap_or_default();
                        let suspended = p
                            .suspended
                            .as_ref()
                            .map(|s| format!(" SUSPENDED since {}: {}", s.since, s.reason))
                            .unwrap_or_default();
                        writeln!(out, "{}\t{}{agency}{suspended}", p.id, p.name)
                    }),
                }
                .map_err(out_err)?;
                Ok(EXIT_VALID)
            })
        }
        PartnerCommand::Token { id, format, store } => {
            let url = store.existing_url()?;
            let (token, hash) = new_token()
                .map_err(|e| CliError::Usage(format!("no randomness for a token: {e}")))?;
            runtime()?.block_on(async move {
                let store = admin_store(&url).await?;
                let changed = store
                    .set_partner_token(&id, &hash)
                    .await
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                store.close().await;
                if !changed {
                    return Err(CliError::Usage(format!("no partner {id:?}")));
                }
                print_token(
                    &format!(
                        "partner {id}: new API token (shown only once; the old one no longer works):"
                    ),
                    &id,
                    &token,
                    format,
                )
            })
        }
        PartnerCommand::Traders {
            id,
            trader_ids,
            format,
            store,
        } => {
            let url = store.existing_url()?;
            runtime()?.block_on(async move {
                let store = admin_store(&url).await?;
                if store
                    .partner(&id)
                    .await
                    .map_err(|e| CliError::Usage(e.to_string()))?
                    .is_none()
                {
                    return Err(CliError::Usage(format!("no partner {id:?}")));
                }
                for trader in &trader_ids {
                    store
                        .add_trader_id(&id, trader)
                        .await
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                }
                let all = store
                    .trader_ids(&id)
                    .await
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                store.close().await;
                let mut out = io::stdout().lock();
                match format {
                    Format::Text => writeln!(out, "partner {id} submits for: {}", all.join(", ")),
                    Format::Json => writeln!(
                        out,
                        "{}",
                        serde_json::json!({"partner": id, "trader_ids": all})
                    ),
                }
                .map_err(out_err)?;
                Ok(EXIT_VALID)
            })
        }
        PartnerCommand::Add {
            id,
            name,
            agency,
            trader_ids,
            agencies,
            format,
            store,
        } => {
            // The first partner of a new installation creates the store;
            // said, so that a mistyped --data-dir is noticed.
            if let Some(file) = store.embedded_file()
                && !file.is_file()
            {
                let _ = writeln!(
                    io::stderr().lock(),
                    "tradehub: creating a new store at {}",
                    file.display()
                );
            }
            let url = store.url()?;
            // The id is the UNB sender (an..35), the AMQP user and part of
            // queue names (`ack.<id>`): visible characters only.
            if id.is_empty()
                || id.chars().count() > 35
                || id.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                return Err(CliError::Usage(format!(
                    "partner id {id:?} must be 1 to 35 visible characters, without spaces"
                )));
            }
            if let Some(code) = &agency
                && code != crate::hub::clearance::CUSTOMS_ROLE
            {
                let path = config_file(agencies.as_deref(), "agencies.toml");
                let catalogue = load_catalogue(path.clone())?;
                if catalogue.get(code).is_none() {
                    return Err(CliError::Usage(format!(
                        "agency {code:?} is not in the agency catalogue ({}); use CUSTOMS for a customs officer",
                        path.display()
                    )));
                }
            }
            let (token, hash) = new_token()
                .map_err(|e| CliError::Usage(format!("no randomness for a token: {e}")))?;
            runtime()?.block_on(async move {
                let store = admin_store(&url).await?;
                store
                    .add_partner(&id, &name, &hash, Timestamp::now())
                    .await
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                if let Some(agency) = &agency {
                    store
                        .set_partner_agency(&id, Some(agency))
                        .await
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                }
                for trader in &trader_ids {
                    store
                        .add_trader_id(&id, trader)
                        .await
                        .map_err(|e| CliError::Usage(e.to_string()))?;
                }
                store.close().await;
                print_token(
                    &format!("partner {id} ({name}) registered; API token (shown only once):"),
                    &id,
                    &token,
                    format,
                )
            })
        }
    }
}

fn run_loadgen(opts: loadgen::LoadOptions, format: Format) -> Result<u8, CliError> {
    // The load generator speaks plain HTTP/1.1 on its own connections;
    // another scheme would be taken for a host name.
    if let Some(url) = &opts.url
        && !url.starts_with("http://")
    {
        return Err(CliError::Usage(format!(
            "loadgen --url {url:?}: only http:// URLs (measure the hub on a plain \
             listener, or the TLS proxy in front of it with another tool)"
        )));
    }
    let senders = opts.senders;
    let figures = runtime()?.block_on(loadgen::run(opts));
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &figures).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text => {
            writeln!(out, "{senders} sender(s)").map_err(out_err)?;
            writeln!(
                out,
                "{:<44} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9}",
                "load", "ops", "errors", "ops/s", "p50 ms", "p99 ms", "max ms"
            )
            .map_err(out_err)?;
            for f in &figures {
                writeln!(
                    out,
                    "{:<44} {:>9} {:>7} {:>10.1} {:>9.2} {:>9.2} {:>9.2}",
                    f.name, f.operations, f.errors, f.per_second, f.p50_ms, f.p99_ms, f.max_ms
                )
                .map_err(out_err)?;
            }
        }
    }
    Ok(if figures.iter().all(|f| f.errors == 0) {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
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
            schema,
            xml,
        } => check(
            &files,
            format,
            Limits {
                max_segment_bytes,
                max_issues,
            },
            &schema,
            &xml,
        ),
        Command::Convert {
            file,
            to,
            una,
            out_dir,
        } => convert(&file, to, una.as_deref(), out_dir.as_deref()),
        Command::Route {
            file,
            agencies,
            routing,
            format,
        } => route(&file, agencies.as_deref(), routing.as_deref(), format),
        Command::Ack {
            file,
            kind,
            format,
            at,
            schema,
            xml,
        } => ack(&file, kind, format, at.as_deref(), &schema, &xml),
        Command::Serve {
            config,
            listen,
            store,
            max_body_bytes,
            max_requests,
            request_timeout_secs,
            header_timeout_secs,
            max_connections,
            max_messages,
            max_segment_bytes,
            drop_dir,
            drop_poll_ms,
            drop_settle_ms,
            amqp_url,
            amqp_prefetch,
            amqp_prefix,
            directories,
            agencies,
            routing,
            risk,
            permit_timeout_secs,
            outbox_max_attempts,
            outbox_retention_hours,
            refusal_retention_days,
            country,
            hub_id,
            recipient_ids,
            tls_cert,
            tls_key,
        } => (|| {
            let file = match &config {
                Some(path) => HubConfig::load(path)?,
                None => HubConfig::default(),
            };
            let store = StoreArgs {
                data_dir: store.data_dir.or(file.data_dir),
                store_url: store.store_url.or(file.store_url),
            };
            let limits = Limits {
                max_segment_bytes: max_segment_bytes
                    .or(file.max_segment_bytes)
                    .unwrap_or(Limits::default().max_segment_bytes),
                ..Limits::default()
            };
            let drop_dir = drop_dir
                .or(file.drop_dir)
                .unwrap_or_else(|| store.data_dir().join("drop"));
            let mut folders = directories;
            folders.extend(file.directories.unwrap_or_default());
            check_folders("--directories", &folders)?;
            check_env_folders()?;
            let catalogue = load_catalogue(config_file(
                agencies.or(file.agencies).as_deref(),
                "agencies.toml",
            ))?;
            let routing = crate::routing::Routing::load(
                &config_file(routing.or(file.routing).as_deref(), "routing.toml"),
                &catalogue,
            )
            .map_err(|e| CliError::Usage(e.to_string()))?;
            let risk = crate::risk::RiskProfile::load(&config_file(
                risk.or(file.risk).as_deref(),
                "risk.toml",
            ))
            .map_err(|e| CliError::Usage(e.to_string()))?;
            let defaults = crate::hub::clearance::Clearance::default();
            let clearance = crate::hub::clearance::Clearance {
                agencies: catalogue.iter().map(|a| a.code.clone()).collect(),
                routing,
                risk,
                hub_id: hub_id.or(file.hub_id).unwrap_or(defaults.hub_id),
                recipient_ids: if recipient_ids.is_empty() {
                    file.recipient_ids.unwrap_or_default()
                } else {
                    recipient_ids
                },
                permit_timeout_secs: permit_timeout_secs
                    .or(file.permit_timeout_secs)
                    .map_or(defaults.permit_timeout_secs, |s| {
                        s.clamp(1, 365 * 86_400) as i64
                    }),
                tolerance: defaults.tolerance,
                country: {
                    let country = country
                        .or(file.country)
                        .unwrap_or(defaults.country)
                        .to_ascii_uppercase();
                    if isocountry::CountryCode::for_alpha2(&country).is_err() {
                        return Err(CliError::Usage(format!(
                            "country {country:?} is not an ISO 3166 alpha-2 code"
                        )));
                    }
                    country
                },
            };
            let agency_queues: Vec<String> = catalogue.iter().map(|a| a.code.clone()).collect();
            let tls = match (tls_cert.or(file.tls_cert), tls_key.or(file.tls_key)) {
                (Some(cert), Some(key)) => Some(crate::transport::tls::TlsSettings { cert, key }),
                (None, None) => None,
                _ => {
                    return Err(CliError::Usage(
                        "TLS needs both a certificate (tls_cert) and its key (tls_key)".into(),
                    ));
                }
            };
            let max_body_bytes = max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(HttpSettings::default().max_body_bytes);
            let http = HttpSettings {
                max_body_bytes,
                max_in_flight: max_requests
                    .or(file.max_requests)
                    .unwrap_or(HttpSettings::default().max_in_flight)
                    .max(1),
                request_timeout: request_timeout_secs
                    .or(file.request_timeout_secs)
                    .map_or(HttpSettings::default().request_timeout, |secs| {
                        std::time::Duration::from_secs(secs.max(1))
                    }),
                header_timeout: header_timeout_secs
                    .or(file.header_timeout_secs)
                    .map_or(HttpSettings::default().header_timeout, |secs| {
                        std::time::Duration::from_secs(secs.max(1))
                    }),
                max_connections: max_connections
                    .or(file.max_connections)
                    .unwrap_or(HttpSettings::default().max_connections)
                    .max(1),
                ..HttpSettings::default()
            };
            let relay_defaults = outbox::RelaySettings::default();
            let relay = outbox::RelaySettings {
                max_attempts: outbox_max_attempts
                    .or(file.outbox_max_attempts)
                    .unwrap_or(relay_defaults.max_attempts)
                    .max(1),
                retention: retention(
                    outbox_retention_hours.or(file.outbox_retention_hours),
                    3600,
                    relay_defaults.retention,
                ),
                refusal_retention: retention(
                    refusal_retention_days.or(file.refusal_retention_days),
                    86_400,
                    relay_defaults.refusal_retention,
                ),
                ..relay_defaults
            };
            serve(ServeOptions {
                tls,
                relay,
                max_messages: max_messages
                    .or(file.max_messages)
                    .unwrap_or(crate::hub::DEFAULT_MAX_MESSAGES)
                    .max(1),
                clearance,
                listen: listen
                    .or(file.listen)
                    .unwrap_or_else(|| "127.0.0.1:8080".into()),
                store,
                max_body_bytes,
                http,
                limits,
                drop_dir,
                drop_poll: std::time::Duration::from_millis(
                    drop_poll_ms.or(file.drop_poll_ms).unwrap_or(1000).max(10),
                ),
                drop_settle: std::time::Duration::from_millis(
                    drop_settle_ms.or(file.drop_settle_ms).unwrap_or(1000),
                ),
                amqp: match amqp_url.or(file.amqp_url) {
                    Some(url) => Some(AmqpSettings {
                        prefix: amqp_name_prefix(amqp_prefix.or(file.amqp_prefix))?,
                        prefetch: amqp_prefetch.or(file.amqp_prefetch).unwrap_or(32).max(1),
                        agencies: agency_queues,
                        max_body_bytes,
                        ..AmqpSettings::new(url)
                    }),
                    None => None,
                },
                directories: folders,
            })
        })(),
        Command::Partner { command } => partner(command),
        Command::Outbox { command } => outbox_command(command),
        Command::Refusals {
            partner,
            limit,
            format,
            store,
        } => refusals_command(partner.as_deref(), limit, format, &store),
        Command::Trail {
            id,
            reference,
            sender,
            format,
            store,
        } => trail(id, sender.zip(reference), format, &store),
        Command::OperatorLog {
            subject,
            limit,
            format,
            store,
        } => operator_log_command(subject.as_deref(), limit, format, &store),
        Command::Audit { command } => audit_command(command),
        Command::Loadgen {
            url,
            token,
            sender,
            pg_url,
            amqp_url,
            senders,
            duration_secs,
            rate,
            agency_token,
            agency,
            amqp_user,
            hub_id,
            amqp_prefix,
            format,
        } => {
            let opts = loadgen::LoadOptions {
                url,
                token,
                amqp_url,
                sender,
                pg_url,
                senders: senders.max(1),
                duration: std::time::Duration::from_secs(duration_secs.max(1)),
                rate,
                agency_token,
                agency,
                amqp_user,
                hub_id,
                amqp_prefix,
            };
            run_loadgen(opts, format)
        }
        Command::Submit {
            file,
            client,
            format,
        } => submit(&file, &client, format),
        Command::Status { id, client, format } => status(&id, &client, format),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        // A reader that went away (`tradehub check ... | head`) is no error
        // worth a message.
        Err(CliError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            ExitCode::from(EXIT_USAGE)
        }
        Err(CliError::Busy(e)) => {
            let _ = writeln!(io::stderr().lock(), "tradehub: {e}");
            ExitCode::from(EXIT_BUSY)
        }
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "tradehub: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// A failure that stops a command: a usage or I/O error (exit code 2), or
/// something in use that may be done later (exit code 75).
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
    /// Refused for now, not for how it was asked: retry later (`outbox
    /// broker --forget` while a relay uses the broker).
    #[error("{0}")]
    Busy(String),
}

fn open(path: &Path) -> Result<File, CliError> {
    File::open(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Largest input the commands that hold it in memory (`convert`, `ack`,
/// `route`, `submit`) read: sixteen times the hub's default body limit.
/// `check` streams inputs of any size.
pub const MAX_IN_MEMORY_INPUT: u64 = 256 * 1024 * 1024;

/// The whole of `path`, if it is no larger than [`MAX_IN_MEMORY_INPUT`]:
/// read with that bound, so that a huge file or an endless stream
/// (`/dev/zero`) is refused instead of filling memory.
fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    use std::io::Read as _;
    let io_err = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_IN_MEMORY_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    if bytes.len() as u64 > MAX_IN_MEMORY_INPUT {
        return Err(CliError::Usage(format!(
            "{}: larger than {MAX_IN_MEMORY_INPUT} bytes, which this command reads into memory; \
             `tradehub check` streams inputs of any size",
            path.display()
        )));
    }
    Ok(bytes)
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
    #[serde(skip_serializing_if = "Option::is_none")]
    document: Option<DocumentSummary>,
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

/// Validates one WCO XML file (its first bytes already read into `head`).
/// A file larger than the limit is refused from its size, unread.
fn check_xml(
    path: &Path,
    mut head: Vec<u8>,
    mut rest: File,
    validator: &XmlValidator,
) -> Result<FileReport, CliError> {
    let io_err = |source| CliError::Io {
        path: path.display().to_string(),
        source,
    };
    let limit = validator.limits().max_document_bytes;
    let size = rest.metadata().map_err(io_err)?.len();
    let report = if size > limit as u64 {
        validator.oversized(size)
    } else {
        // A pipe or device says nothing of its size: read at most one byte
        // over the limit, so that an endless stream is refused, not kept.
        let room = (limit as u64 + 1).saturating_sub(head.len() as u64);
        (&mut rest)
            .take(room)
            .read_to_end(&mut head)
            .map_err(io_err)?;
        if head.len() > limit {
            // (Not read to its end: it may have none.)
            validator.oversized(head.len() as u64)
        } else {
            validator.validate(&head, &path.display().to_string())
        }
    };
    let errors = report.issues.iter().filter(|i| i.is_error()).count() as u64;
    Ok(FileReport {
        file: path.display().to_string(),
        format: "xml",
        valid: report.valid,
        errors,
        warnings: report.issues.len() as u64 - errors,
        interchange: None,
        document: Some(report.summary),
        issues: report.issues,
    })
}

fn check(
    files: &[PathBuf],
    format: Format,
    limits: Limits,
    schema: &SchemaArgs,
    xml: &XmlArgs,
) -> Result<u8, CliError> {
    let mut reports = Vec::new();
    let directories = schema.directories()?;
    let validator = xml.validator(limits.max_issues)?;
    // A file that cannot be read is reported on standard error and the
    // others are still checked; the exit code is then 2.
    let mut unreadable = false;
    let check_one = |path: &PathBuf| -> Result<FileReport, CliError> {
        let mut file = open(path)?;
        let mut head = Vec::with_capacity(512);
        (&mut file)
            .take(512)
            .read_to_end(&mut head)
            .map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
        if tradehub_xml::looks_like_xml(&head) {
            return check_xml(path, head, file, &validator);
        }
        let file = io::Cursor::new(head).chain(file);
        let options = ParseOptions {
            limits,
            ..ParseOptions::default()
        };
        let mut parser = edifact::Parser::new(file, options);
        if let Some(d) = &directories {
            parser = parser.with_directories(d.clone());
        }
        let parsed = parser.run(|_, _| {}).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let i = &parsed.interchange;
        let warnings = parsed
            .issues
            .iter()
            .filter(|x| x.severity == Severity::Warning)
            .count() as u64;
        Ok(FileReport {
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
            document: None,
            issues: parsed.issues,
        })
    };
    for path in files {
        match check_one(path) {
            Ok(report) => reports.push(report),
            Err(e @ CliError::Io { .. }) => {
                unreadable = true;
                writeln!(io::stderr().lock(), "tradehub: {e}").map_err(out_err)?;
            }
            Err(e) => return Err(e),
        }
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
                let summary = match (&r.interchange, &r.document) {
                    (Some(s), _) => {
                        format!(", {} message(s), {} segment(s)", s.messages, s.segments)
                    }
                    (None, Some(d)) => format!(
                        ", WCO {}{}, {} goods item(s)",
                        match d.kind {
                            tradehub_xml::DocumentKind::Declaration => "declaration",
                            tradehub_xml::DocumentKind::Response => "response",
                            tradehub_xml::DocumentKind::Other => "document of unknown type",
                        },
                        d.functional_reference_id
                            .as_deref()
                            .map(|r| format!(" {r}"))
                            .unwrap_or_default(),
                        d.goods_items
                    ),
                    (None, None) => String::new(),
                };
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
    Ok(if unreadable {
        EXIT_USAGE
    } else if reports.iter().all(|r| r.valid) {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

fn convert(
    path: &Path,
    to: Target,
    una: Option<&str>,
    out_dir: Option<&Path>,
) -> Result<u8, CliError> {
    if out_dir.is_some() && to != Target::Xml {
        return Err(CliError::Usage("--out-dir goes with --to xml".into()));
    }
    if una.is_some() && to != Target::Edifact {
        return Err(CliError::Usage("--una goes with --to edifact".into()));
    }
    let bytes = read(path)?;
    if to == Target::Tree && tradehub_xml::looks_like_xml(&bytes) {
        return Err(CliError::Usage(format!(
            "{}: --to tree shows an EDIFACT interchange's segments; this is XML (try --to json)",
            path.display()
        )));
    }
    let parsed = edifact::parse(&bytes);
    let mut out = io::stdout().lock();
    match to {
        Target::Tree => {
            serde_json::to_writer_pretty(&mut out, &parsed).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Target::Edifact if tradehub_xml::looks_like_xml(&bytes) => {
            return convert_wco_edifact(path, &bytes, una);
        }
        Target::Edifact => {
            let seps = match una {
                Some(text) => {
                    let seps = parse_una_arg(text)?;
                    same_decimal_mark(&seps, parsed.interchange.separators.decimal)?;
                    seps
                }
                None => parsed.interchange.separators,
            };
            let written =
                match edifact::writer::write_interchange(&parsed.interchange, &seps, una.is_some())
                {
                    Ok(written) => written,
                    // A character its own repertoire cannot carry: the input
                    // is invalid (exit 1), not the command.
                    Err(e @ edifact::writer::WriteError::Unencodable { .. }) => {
                        let _ = writeln!(io::stderr().lock(), "{}: {e}", path.display());
                        return Ok(EXIT_INVALID);
                    }
                    Err(e) => return Err(CliError::Usage(format!("{}: {e}", path.display()))),
                };
            out.write_all(&written).map_err(out_err)?;
        }
        Target::Json => return convert_json(path, &bytes),
        Target::Xml => return convert_xml(path, &bytes, out_dir),
    }
    Ok(if parsed.is_valid() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

/// Business-rule findings for a canonical object (declarations only).
fn rule_findings(target: &str, canonical: &serde_json::Value) -> Vec<Issue> {
    crate::rules::check_canonical(
        target,
        canonical,
        &Default::default(),
        &crate::rules::RuleSettings::at(Timestamp::now()),
    )
}

/// A WCO XML file validated (its errors written to `err`) and, when it is
/// a declaration, mapped: the validation report, the mapping's target,
/// value and issues. Anything else is refused; `done` says what only
/// declarations get.
/// `None` when the document is unreadable (its errors printed: the
/// command exits 1).
#[allow(clippy::type_complexity)]
fn map_wco_declaration(
    path: &Path,
    bytes: &[u8],
    err: &mut impl Write,
    done: &str,
) -> Result<
    Option<(
        tradehub_xml::XmlReport,
        String,
        serde_json::Value,
        Vec<Issue>,
    )>,
    CliError,
> {
    let report =
        XmlValidator::new(None, XmlLimits::default()).validate(bytes, &path.display().to_string());
    for issue in report.issues.iter().filter(|i| i.is_error()) {
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    if !report.readable {
        return Ok(None);
    }
    if report.summary.kind != tradehub_xml::DocumentKind::Declaration {
        return Err(CliError::Usage(format!(
            "{}: only WCO declarations {done}",
            path.display()
        )));
    }
    let mapping = crate::mapping::wco::load().map_err(|e| CliError::Usage(e.to_string()))?;
    let (value, issues) = mapping.apply(bytes);
    Ok(Some((report, mapping.target.clone(), value, issues)))
}

/// `convert --to json` of a WCO declaration: validated, then mapped by
/// mappings/wco/DEC.toml.
fn convert_wco_json(path: &Path, bytes: &[u8]) -> Result<u8, CliError> {
    let mut err = io::stderr().lock();
    let Some((report, target, value, issues)) =
        map_wco_declaration(path, bytes, &mut err, "map to the canonical model")?
    else {
        return Ok(1);
    };
    let mut failed = !report.valid;
    for issue in &issues {
        failed |= issue.is_error();
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    let mut documents = Vec::new();
    match crate::mapping::gaps(&target, value) {
        (gaps, Some(whole)) if gaps.is_empty() => {
            for issue in rule_findings(&target, &whole.rest) {
                failed |= issue.is_error();
                let _ = writeln!(err, "{}: {issue}", path.display());
            }
            documents.push(serde_json::json!({
                "message": report.summary.functional_reference_id,
                "message_type": "WCO DEC",
                target.clone(): whole.rest,
            }));
        }
        // Every gap, and what the rules say of the rest.
        (gaps, partial) => {
            failed = true;
            for gap in &gaps {
                let _ = writeln!(
                    err,
                    "{}: error MAP004: the mapped declaration is incomplete: {gap}",
                    path.display()
                );
            }
            let findings = partial.map(|partial| {
                crate::rules::check_partial(
                    &target,
                    &partial,
                    &Default::default(),
                    &crate::rules::RuleSettings::at(Timestamp::now()),
                )
            });
            for issue in findings.unwrap_or_default() {
                let _ = writeln!(err, "{}: {issue}", path.display());
            }
        }
    }
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &documents).map_err(|e| out_err(e.into()))?;
    writeln!(out).map_err(out_err)?;
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// A configuration file: the one given, else `config/<name>` of the
/// working directory, else the one in the source tree.
fn config_file(given: Option<&Path>, name: &str) -> PathBuf {
    if let Some(path) = given {
        return path.to_path_buf();
    }
    let local = Path::new("config").join(name);
    if local.is_file() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// Loads the agency catalogue, a failure naming the file and its AGY code.
fn load_catalogue(path: std::path::PathBuf) -> Result<crate::agency::AgencyCatalogue, CliError> {
    crate::agency::AgencyCatalogue::load(&path)
        .map_err(|e| CliError::Usage(format!("{}: {} {e}", path.display(), e.code())))
}

/// `route`: the permit requests each declaration of the file needs.
fn route(
    path: &Path,
    agencies: Option<&Path>,
    routing: Option<&Path>,
    format: Format,
) -> Result<u8, CliError> {
    let catalogue = load_catalogue(config_file(agencies, "agencies.toml"))?;
    let rules = crate::routing::Routing::load(&config_file(routing, "routing.toml"), &catalogue)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let bytes = read(path)?;
    let mut failed = false;
    let mut err = io::stderr().lock();
    // (message, its type, the declaration if it maps to one), from either
    // form: EDIFACT messages or one WCO declaration.
    let mut mapped_all: Vec<(String, String, Option<crate::model::Declaration>)> = Vec::new();
    if tradehub_xml::looks_like_xml(&bytes) {
        let Some((report, _, value, issues)) =
            map_wco_declaration(path, &bytes, &mut err, "are routed")?
        else {
            return Ok(1);
        };
        failed |= report.issues.iter().any(Issue::is_error);
        for issue in issues.iter().filter(|i| i.is_error()) {
            failed = true;
            let _ = writeln!(err, "{}: {issue}", path.display());
        }
        let declaration = serde_json::from_value::<crate::model::Declaration>(value).ok();
        mapped_all.push((
            report.summary.functional_reference_id.unwrap_or_default(),
            "WCO DEC".into(),
            declaration,
        ));
    } else {
        let (parsed, all) =
            crate::mapping::edifact::parse_and_map(&bytes, &tradehub_schema::Directories::global())
                .map_err(|source| CliError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
        // What the hub would reject the interchange for is said, and the
        // command fails, as `check` and `convert` do.
        for issue in &parsed.issues {
            failed |= issue.is_error();
            let _ = writeln!(err, "{}: {issue}", path.display());
        }
        for mapped in all {
            for issue in mapped.issues.iter().filter(|i| i.is_error()) {
                failed = true;
                let _ = writeln!(err, "{}: {issue}", path.display());
            }
            let declaration = mapped
                .canonical
                .filter(|_| mapped.target == "declaration")
                .and_then(|v| serde_json::from_value::<crate::model::Declaration>(v).ok());
            mapped_all.push((mapped.message, mapped.message_type, declaration));
        }
    }
    let mut results = Vec::new();
    for (message, message_type, declaration) in mapped_all {
        let Some(declaration) = declaration else {
            failed = true;
            let _ = writeln!(
                err,
                "{}: message {message} ({message_type}) is not a declaration that could be mapped; not routed",
                path.display(),
            );
            continue;
        };
        for issue in crate::rules::check(
            &declaration,
            &crate::rules::RuleSettings::at(Timestamp::now()),
        ) {
            failed |= issue.is_error();
            let _ = writeln!(err, "{}: message {}: {issue}", path.display(), message);
        }
        let permits = rules.route(&declaration);
        results.push(serde_json::json!({
            "message": message,
            "lrn": declaration.lrn,
            "permits": permits,
        }));
    }
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &results).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text => {
            for result in &results {
                let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_owned();
                let permits = result["permits"].as_array().cloned().unwrap_or_default();
                writeln!(
                    out,
                    "message {} (LRN {}): {}",
                    text(&result["message"]),
                    text(&result["lrn"]),
                    match permits.len() {
                        0 => "no permit needed".to_owned(),
                        1 => "1 permit".to_owned(),
                        n => format!("{n} permits"),
                    }
                )
                .map_err(out_err)?;
                for permit in &permits {
                    let goods: Vec<String> = permit["goods"]
                        .as_array()
                        .map(|g| g.iter().map(ToString::to_string).collect())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "  {} (rule {}, goods items {}): {}, under the {}",
                        text(&permit["agency"]),
                        text(&permit["rule"]),
                        goods.join(", "),
                        text(&permit["confirms"]),
                        text(&permit["law"]),
                    )
                    .map_err(out_err)?;
                }
            }
        }
    }
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// `convert --to json`: every message through its mapping; the canonical
/// objects as a JSON array on stdout, problems and unmapped values on
/// stderr. Exit 1 when a message could not be mapped or the input is
/// invalid.
fn convert_json(path: &Path, bytes: &[u8]) -> Result<u8, CliError> {
    if tradehub_xml::looks_like_xml(bytes) {
        return convert_wco_json(path, bytes);
    }
    let (parsed, mapped) =
        crate::mapping::edifact::parse_and_map(bytes, &tradehub_schema::Directories::global())
            .map_err(|source| CliError::Io {
                path: path.display().to_string(),
                source,
            })?;
    let mut failed = !parsed.is_valid();
    let mut err = io::stderr().lock();
    // Warnings too: among them EDI106, how many issues were counted
    // beyond those recorded.
    for issue in &parsed.issues {
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    let mut documents = Vec::new();
    for m in &mapped {
        for issue in &m.issues {
            failed |= issue.is_error();
            let _ = writeln!(err, "{}: {issue}", path.display());
        }
        // Located at the segments and elements the values came from; of
        // a message that does not map whole, what the rules say of the
        // rest.
        let settings = crate::rules::RuleSettings::at(Timestamp::now());
        for issue in crate::rules::check_mapped(m, &settings) {
            failed |= issue.is_error();
            let _ = writeln!(err, "{}: message {}: {issue}", path.display(), m.message);
        }
        if let Some(canonical) = &m.canonical {
            documents.push(serde_json::json!({
                "message": m.message,
                "message_type": m.message_type,
                m.target.clone(): canonical,
            }));
        } else {
            failed = true;
        }
    }
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &documents).map_err(|e| out_err(e.into()))?;
    writeln!(out).map_err(out_err)?;
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// `convert --to xml`: each declaration of the input (a CUSDEC interchange
/// through its mapping, or a WCO DEC validated and mapped) through the
/// canonical model to a WCO DEC document, which is validated before it is
/// printed. Documents go to standard output one after the other (each
/// starts with its `<?xml` declaration), or with `--out-dir` one file each
/// (their paths on standard output). Problems go to standard error; exit 1
/// when the input is invalid, a message is not a declaration that maps, or
/// a value cannot be written (MAP003, MAP006).
fn convert_xml(path: &Path, bytes: &[u8], out_dir: Option<&Path>) -> Result<u8, CliError> {
    use crate::model::Declaration;
    // The writer is loaded before the input is read: a missing mapping or
    // schema stops the command at once.
    crate::mapping::wco_out::load().map_err(|e| CliError::Usage(e.to_string()))?;
    let shown = path.display().to_string();
    let stem = path.file_stem().map_or_else(
        || "declaration".into(),
        |s| s.to_string_lossy().into_owned(),
    );
    let mut err = io::stderr().lock();
    let mut failed = false;
    // (name of the document, canonical JSON of the declaration)
    let mut mapped: Vec<(String, serde_json::Value)> = Vec::new();
    let validator = XmlValidator::new(None, XmlLimits::default());
    if tradehub_xml::looks_like_xml(bytes) {
        let report = validator.validate(bytes, &shown);
        failed |= !report.valid;
        for issue in report.issues.iter().filter(|i| i.is_error()) {
            let _ = writeln!(err, "{shown}: {issue}");
        }
        if !report.readable {
            return Ok(1);
        }
        if report.summary.kind != tradehub_xml::DocumentKind::Declaration {
            return Err(CliError::Usage(format!(
                "{shown}: only WCO declarations map to the canonical model"
            )));
        }
        let mapping = crate::mapping::wco::load().map_err(|e| CliError::Usage(e.to_string()))?;
        let (value, issues) = mapping.apply(bytes);
        for issue in &issues {
            failed |= issue.is_error();
            let _ = writeln!(err, "{shown}: {issue}");
        }
        match crate::mapping::typed(&mapping.target, value) {
            Ok(canonical) => mapped.push((stem, canonical)),
            Err(e) => {
                failed = true;
                let _ = writeln!(
                    err,
                    "{shown}: error MAP004: the mapped declaration is incomplete: {e}"
                );
            }
        }
    } else {
        let (parsed, messages) =
            crate::mapping::edifact::parse_and_map(bytes, &tradehub_schema::Directories::global())
                .map_err(|source| CliError::Io {
                    path: shown.clone(),
                    source,
                })?;
        failed |= !parsed.is_valid();
        for issue in &parsed.issues {
            let _ = writeln!(err, "{shown}: {issue}");
        }
        for m in messages {
            for issue in &m.issues {
                failed |= issue.is_error();
                let _ = writeln!(err, "{shown}: {issue}");
            }
            match m.canonical {
                Some(canonical) if m.target == "declaration" => {
                    mapped.push((format!("{stem}.{}", m.message), canonical));
                }
                Some(_) => {
                    failed = true;
                    let _ = writeln!(
                        err,
                        "{shown}: message {} ({}) maps to a {}, not a declaration; not written",
                        m.message, m.message_type, m.target
                    );
                }
                None => failed = true,
            }
        }
    }
    let mut documents = Vec::new();
    for (name, canonical) in mapped {
        for issue in rule_findings("declaration", &canonical) {
            failed |= issue.is_error();
            let _ = writeln!(err, "{shown}: {name}: {issue}");
        }
        let declaration: Declaration = match serde_json::from_value(canonical) {
            Ok(d) => d,
            Err(e) => {
                failed = true;
                let _ = writeln!(err, "{shown}: {name}: error MAP004: {e}");
                continue;
            }
        };
        let written = crate::mapping::wco_out::write_declaration(&declaration)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        for issue in &written.issues {
            failed |= issue.is_error();
            let _ = writeln!(err, "{shown}: {name}: {issue}");
        }
        let report = validator.validate(written.xml.as_bytes(), &name);
        if !report.valid {
            failed = true;
            for issue in &report.issues {
                let _ = writeln!(err, "{shown}: {name}: the WCO DEC written: {issue}");
            }
        }
        documents.push((name, written.xml));
    }
    let mut out = io::stdout().lock();
    match out_dir {
        Some(dir) => {
            let io_err = |p: &Path| {
                let p = p.display().to_string();
                move |source| CliError::Io { path: p, source }
            };
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
            // Names made alike by the replacement below (`A/1`, `A_1`)
            // get a counter: no document of the run overwrites another.
            let mut taken = std::collections::HashSet::new();
            for (name, xml) in &documents {
                let file: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let mut unique = file.clone();
                let mut n = 1;
                while !taken.insert(unique.clone()) {
                    n += 1;
                    unique = format!("{file}.{n}");
                }
                let target = dir.join(format!("{unique}.xml"));
                std::fs::write(&target, xml).map_err(io_err(&target))?;
                writeln!(out, "{}", target.display()).map_err(out_err)?;
            }
        }
        None => {
            for (_, xml) in &documents {
                out.write_all(xml.as_bytes()).map_err(out_err)?;
            }
        }
    }
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// `convert --to edifact` of a WCO declaration: validated, mapped to the
/// canonical model (mappings/wco/DEC.toml), then written as a D.96B CUSDEC
/// by mappings/edifact/D96B/CUSDEC.toml read backwards. What cannot be
/// mapped or written is reported on stderr; exit 1 when that includes an
/// error or the document is invalid.
fn convert_wco_edifact(path: &Path, bytes: &[u8], una: Option<&str>) -> Result<u8, CliError> {
    use crate::mapping::edifact_out::{Envelope, declaration_to_cusdec};
    let seps = una.map(parse_una_arg).transpose()?;
    if let Some(seps) = &seps {
        same_decimal_mark(seps, b'.')?;
    }
    let report =
        XmlValidator::new(None, XmlLimits::default()).validate(bytes, &path.display().to_string());
    let mut err = io::stderr().lock();
    let mut failed = !report.valid;
    for issue in report.issues.iter().filter(|i| i.is_error()) {
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    if !report.readable {
        return Ok(1);
    }
    if report.summary.kind != tradehub_xml::DocumentKind::Declaration {
        return Err(CliError::Usage(format!(
            "{}: only WCO declarations map to the canonical model",
            path.display()
        )));
    }
    let mapping = crate::mapping::wco::load().map_err(|e| CliError::Usage(e.to_string()))?;
    let (value, issues) = mapping.apply(bytes);
    for issue in &issues {
        failed |= issue.is_error();
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    let declaration = crate::mapping::typed(&mapping.target, value).and_then(|canonical| {
        serde_json::from_value::<crate::model::Declaration>(canonical).map_err(|e| e.to_string())
    });
    let declaration = match declaration {
        Ok(declaration) => declaration,
        Err(e) => {
            let _ = writeln!(
                err,
                "{}: error MAP004: the mapped declaration is incomplete: {e}",
                path.display()
            );
            return Ok(EXIT_INVALID);
        }
    };
    let now = Timestamp::now();
    let envelope = Envelope {
        sender: declaration
            .declarant
            .as_ref()
            .and_then(|d| d.id.clone())
            .unwrap_or_else(|| "TRADEHUB".into()),
        recipient: "TRADEHUB".into(),
        reference: conversion_reference(&declaration.lrn, now),
        prepared: now,
    };
    let written = declaration_to_cusdec(
        &declaration,
        &envelope,
        &tradehub_schema::Directories::global(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    for issue in &written.issues {
        failed |= issue.is_error();
        let _ = writeln!(err, "{}: {issue}", path.display());
    }
    let bytes = match seps {
        Some(seps) => {
            let parsed = edifact::parse(&written.bytes);
            edifact::writer::write_interchange(&parsed.interchange, &seps, true)
                .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?
        }
        None => written.bytes,
    };
    io::stdout().lock().write_all(&bytes).map_err(out_err)?;
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// The interchange reference (UNB 0020, an..14) of a declaration written
/// as CUSDEC: the minute it was written (YYMMDDHHMM) and four hex digits
/// of a digest of its LRN and the instant, so that two declarations of one
/// declarant written in the same minute are not one reference (the hub
/// refuses a second interchange with a sender's reference, E0026).
fn conversion_reference(lrn: &str, now: Timestamp) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = crate::hub::sha256_hex(format!("{lrn}\u{0}{nanos}").as_bytes());
    format!(
        "{}{}{}",
        now.edifact_date(false),
        now.edifact_time(),
        digest.get(..4).unwrap_or("0000").to_ascii_uppercase()
    )
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
    // A decimal mark that is also a separator could not be told from it.
    let others = [
        Some(seps.component),
        Some(seps.element),
        seps.release,
        seps.repetition,
        Some(seps.terminator),
    ];
    if others.contains(&Some(seps.decimal)) {
        return Err(CliError::Usage(format!(
            "--una decimal mark {:?} is also a separator",
            char::from(seps.decimal)
        )));
    }
    Ok(seps)
}

/// Values are written as they were read (or as the writer wrote them, with
/// `.`): another decimal mark in `--una` would leave every decimal value
/// with the wrong one.
fn same_decimal_mark(seps: &Separators, written: u8) -> Result<(), CliError> {
    if seps.decimal == written {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--una decimal mark {:?}: the values carry {:?} and are written as they are; keep {:?} in UNA position 3",
            char::from(seps.decimal),
            char::from(written),
            char::from(written)
        )))
    }
}

fn ack(
    path: &Path,
    kind: AckKind,
    format: Format,
    at: Option<&str>,
    schema: &SchemaArgs,
    xml: &XmlArgs,
) -> Result<u8, CliError> {
    let moment = match at {
        Some(text) => Timestamp::parse(text)
            .ok_or_else(|| CliError::Usage(format!("--at {text:?} is not YYYY-MM-DDTHH:MM")))?,
        None => Timestamp::now(),
    };
    let bytes = read(path)?;
    let is_xml = tradehub_xml::looks_like_xml(&bytes);
    match (kind, is_xml) {
        (AckKind::Res, true) => return ack_res(path, &bytes, moment, format, xml),
        (AckKind::Res, false) => {
            return Err(CliError::Usage(format!(
                "{}: --kind res answers WCO XML declarations; this is not XML (use --kind contrl)",
                path.display()
            )));
        }
        (AckKind::Contrl, true) => {
            return Err(CliError::Usage(format!(
                "{}: CONTRL answers UN/EDIFACT interchanges; for WCO XML use --kind res",
                path.display()
            )));
        }
        (AckKind::Contrl, false) => {}
        (AckKind::Aperak | AckKind::Cusres, true) => {
            return Err(CliError::Usage(format!(
                "{}: APERAK and CUSRES answer UN/EDIFACT messages; for WCO XML use --kind res",
                path.display()
            )));
        }
        (AckKind::Aperak | AckKind::Cusres, false) => {
            return ack_application(path, &bytes, kind, moment, format, schema);
        }
    }
    let mut parsed = match schema.directories()? {
        Some(d) => edifact::Parser::new(
            &bytes[..],
            ParseOptions {
                keep_messages: true,
                decode_messages: true,
                ..ParseOptions::default()
            },
        )
        .with_directories(d)
        .run(|_, _| {})
        .map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?,
        None => edifact::parse(&bytes),
    };
    // As the hub answers: what is not an interchange at all gets no
    // CONTRL (the hub answers HTTP 415, EDI104), and a test interchange
    // is rejected (code 25).
    if let Some(issue) = parsed.issues.iter().find(|i| i.code == Code::NotEdifact) {
        return Err(CliError::Usage(format!(
            "{}: {issue}; no CONTRL answers it (the hub refuses it unanswered, HTTP 415)",
            path.display()
        )));
    }
    crate::hub::refuse_test(&mut parsed);
    let mut out = io::stdout().lock();
    match kind {
        // Answered before the interchange was parsed.
        AckKind::Res | AckKind::Aperak | AckKind::Cusres => {}
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

/// `ack --kind aperak|cusres`: every message parsed, validated and mapped,
/// business rules run on each declaration, findings located at their
/// segments (`mapping::locate`), and one answer interchange per message.
/// Exit 1 when any message has an error finding or the interchange is
/// invalid (its syntax and structure errors are CONTRL's: see --kind
/// contrl).
fn ack_application(
    path: &Path,
    bytes: &[u8],
    kind: AckKind,
    moment: Timestamp,
    format: Format,
    schema: &SchemaArgs,
) -> Result<u8, CliError> {
    use crate::ack::{Envelope, Original};
    let Some(directories) = schema.directories()? else {
        return Err(CliError::Usage(
            "--kind aperak and cusres map messages through their directory; drop --syntax-only"
                .into(),
        ));
    };
    let (parsed, mapped) =
        crate::mapping::edifact::parse_and_map(bytes, &directories).map_err(|source| {
            CliError::Io {
                path: path.display().to_string(),
                source,
            }
        })?;
    let subject = &parsed.interchange;
    let mut failed = !parsed.is_valid();
    let mut err = io::stderr().lock();
    if !parsed.is_valid() {
        let _ = writeln!(
            err,
            "{}: the interchange has {} syntax or structure error(s); CONTRL reports them (--kind contrl)",
            path.display(),
            parsed.error_count
        );
    }
    let settings = crate::rules::RuleSettings::at(moment);
    let mut answers = Vec::new();
    for (n, m) in mapped.iter().enumerate() {
        let mut findings: Vec<Issue> = m.issues.iter().filter(|i| i.is_error()).cloned().collect();
        findings.extend(crate::rules::check_mapped(m, &settings));
        failed |= findings.iter().any(Issue::is_error);
        let lrn = m
            .canonical
            .as_ref()
            .and_then(|c| c.get("lrn"))
            .and_then(|l| l.as_str())
            .map(str::to_owned);
        let original = Original {
            interchange_reference: subject.control_reference.clone(),
            message_reference: m.message.clone(),
            message_type: m.message_type.clone(),
            lrn: lrn.clone(),
        };
        let version = subject.syntax_version.parse::<u8>().unwrap_or(3);
        let envelope = Envelope {
            hub: if subject.recipient.id.is_empty() {
                contrl::HUB_ID.to_owned()
            } else {
                subject.recipient.id.clone()
            },
            hub_qualifier: subject.recipient.qualifier.clone(),
            partner: subject.sender.id.clone(),
            partner_qualifier: subject.sender.qualifier.clone(),
            partner_routing: subject.sender.internal_id.clone(),
            syntax_identifier: subject.syntax_identifier.clone(),
            syntax_version: version,
            // Unique per message and minute: kind letter, YYMMDDHHMM, index.
            reference: format!(
                "{}{}{}{:03}",
                if kind == AckKind::Aperak { "A" } else { "R" },
                moment.edifact_date(false),
                moment.edifact_time(),
                (n + 1) % 1000
            ),
            at: moment,
        };
        let text = if kind == AckKind::Aperak {
            crate::ack::aperak::build(&original, &findings, &envelope)
        } else {
            let errors: Vec<Issue> = findings.iter().filter(|i| i.is_error()).cloned().collect();
            let response = crate::model::Response {
                declaration_lrn: lrn.clone().unwrap_or_default(),
                mrn: None,
                status: if errors.is_empty() {
                    "accepted"
                } else {
                    "rejected"
                }
                .into(),
                errors: errors.iter().map(crate::ack::response_error).collect(),
                conditions: Vec::new(),
                at: crate::model::Moment {
                    iso: format!(
                        "{:04}-{:02}-{:02}T{:02}:{:02}",
                        moment.year, moment.month, moment.day, moment.hour, moment.minute
                    ),
                    format: "203".into(),
                },
            };
            crate::ack::cusres::build(&response, &original, &envelope)
        };
        answers.push(serde_json::json!({
            "message": m.message,
            "message_type": m.message_type,
            "lrn": lrn,
            "findings": findings,
            "answer": text,
        }));
    }
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &answers).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text => {
            // In the repertoire each answer's UNB names, a line end after each.
            for answer in &answers {
                let text = answer.get("answer").and_then(|a| a.as_str()).unwrap_or("");
                out.write_all(&crate::ack::to_bytes(text))
                    .map_err(out_err)?;
                writeln!(out).map_err(out_err)?;
            }
        }
    }
    Ok(if failed { EXIT_INVALID } else { EXIT_VALID })
}

/// `--amqp-prefix`: letters, digits, `.`, `-` and `_`, at most 64 bytes
/// (the names it starts stay far below AMQP's 255).
fn amqp_name_prefix(prefix: Option<String>) -> Result<String, CliError> {
    let prefix = prefix.unwrap_or_default();
    let fit = prefix.len() <= 64
        && !prefix.starts_with("amq.")
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if fit {
        Ok(prefix)
    } else {
        Err(CliError::Usage(format!(
            "--amqp-prefix {prefix:?}: use at most 64 letters, digits, '.', '-' or '_', not starting with amq. (the broker's own)"
        )))
    }
}

/// A retention period given in units of `unit_secs` seconds: the default
/// when not given, none (kept for good) when 0.
fn retention(
    given: Option<u64>,
    unit_secs: u64,
    default: Option<std::time::Duration>,
) -> Option<std::time::Duration> {
    match given {
        None => default,
        Some(0) => None,
        Some(n) => Some(std::time::Duration::from_secs(n.saturating_mul(unit_secs))),
    }
}

/// `--rate` of `loadgen`: 0 (no pacing) or a pace a sender can keep, so
/// that the gap between requests is a real duration.
fn parse_rate(text: &str) -> Result<f64, String> {
    let rate: f64 = text
        .trim()
        .parse()
        .map_err(|e| format!("{text:?} is not a number: {e}"))?;
    if rate == 0.0 || (0.001..=1_000_000.0).contains(&rate) {
        Ok(rate)
    } else {
        Err(format!(
            "{text:?}: the rate is 0 (as fast as possible) or from 0.001 to 1000000 requests per second"
        ))
    }
}

/// The WCO RES for an XML declaration. Its id is derived from the input and
/// the time, so `--at` makes the output reproducible.
fn ack_res(
    path: &Path,
    bytes: &[u8],
    moment: Timestamp,
    format: Format,
    xml: &XmlArgs,
) -> Result<u8, CliError> {
    use sha2::{Digest, Sha256};
    let validator = xml.validator(XmlLimits::default().max_issues)?;
    let mut report = validator.validate(bytes, &path.display().to_string());
    crate::hub::xml::refuse_non_declaration(&mut report);
    let digest = Sha256::new()
        .chain_update(bytes)
        .chain_update(moment.to_string().as_bytes())
        .finalize();
    let id = crate::hub::hex(digest.get(..16).unwrap_or_default());
    let mut response = crate::ack::res::for_report(&report, moment, &id);
    // A schema-valid declaration is then mapped and checked by the business
    // rules, as the hub does (the same function): mapping errors (a value
    // not understood, an incomplete declaration) and rule findings reject
    // it, each pointed at the element its value came from. Only the rules
    // that need the hub's store (an amendment's original) are not run.
    let mut findings = Vec::new();
    if report.valid && report.summary.kind == tradehub_xml::DocumentKind::Declaration {
        let (mapped, rule_findings, _) = crate::hub::xml::map_declaration(
            bytes,
            &report,
            &crate::rules::RuleSettings::at(moment),
        );
        findings = mapped.issues;
        findings.extend(rule_findings);
    }
    let rejected_by_rules = findings.iter().any(Issue::is_error);
    if rejected_by_rules {
        response.function = crate::xml::response::ResponseFunction::Rejected;
        response.declaration.rejected = Some(moment);
        let errors: Vec<&Issue> = findings.iter().filter(|i| i.is_error()).collect();
        crate::ack::res::push_errors(&mut response.errors, &errors, errors.len(), "EDI106");
    }
    let written = crate::xml::response::write(&response)
        .map_err(|e| CliError::Usage(format!("{}: response not written: {e}", path.display())))?;
    let mut out = io::stdout().lock();
    match format {
        Format::Json => {
            let json = serde_json::json!({
                "file": path.display().to_string(),
                "valid": report.valid && !rejected_by_rules,
                "function_code": format!("{:02}", response.function.code()),
                "issues": report.issues.iter().chain(findings.iter()).collect::<Vec<_>>(),
                "response": written,
            });
            serde_json::to_writer_pretty(&mut out, &json).map_err(|e| out_err(e.into()))?;
            writeln!(out).map_err(out_err)?;
        }
        Format::Text => out.write_all(written.as_bytes()).map_err(out_err)?,
    }
    Ok(if report.valid && !rejected_by_rules {
        EXIT_VALID
    } else {
        EXIT_INVALID
    })
}

/// CONTRL envelope data for a CONTRL prepared at `t`; the reference is
/// unique to the second.
fn contrl_options(parsed: &edifact::Parsed, t: Timestamp) -> contrl::Options {
    let unique = format!(
        "{}{:02}{:02}{:02}",
        t.edifact_date(false),
        t.hour,
        t.minute,
        t.second
    );
    contrl::Options::at(t, parsed.interchange.syntax_version == "4", unique)
}

#[cfg(test)]
mod tests {
    use super::operator_name_from;

    #[test]
    fn the_operator_is_named_by_choice_else_by_login() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            operator_name_from(env(&[("TRADEHUB_OPERATOR", "ops-kim"), ("USER", "root")])),
            "ops-kim"
        );
        // sudo: who ran it, not root.
        assert_eq!(
            operator_name_from(env(&[("SUDO_USER", "lee"), ("USER", "root")])),
            "lee"
        );
        assert_eq!(operator_name_from(env(&[("USER", "park")])), "park");
        assert_eq!(operator_name_from(env(&[("LOGNAME", "choi")])), "choi");
        // Blank names are none; control characters and length are cut.
        assert_eq!(
            operator_name_from(env(&[("TRADEHUB_OPERATOR", "  "), ("USER", "park")])),
            "park"
        );
        assert_eq!(
            operator_name_from(env(&[("TRADEHUB_OPERATOR", "a\nb\u{7}c")])),
            "abc"
        );
        let long: &'static str = Box::leak("x".repeat(500).into_boxed_str());
        let pairs: &'static [(&'static str, &'static str)] =
            Box::leak(vec![("TRADEHUB_OPERATOR", long)].into_boxed_slice());
        assert_eq!(operator_name_from(env(pairs)).len(), 100);
        assert_eq!(operator_name_from(env(&[])), "");
    }
}
