//! tradehub: a customs single-window message hub. This library holds the pure
//! core (diagnostics, UN/EDIFACT syntax, acknowledgements) and the CLI; the
//! binary is a thin wrapper around [`cli::run`].
#![forbid(unsafe_code)]

pub mod ack;
pub mod cli;
pub mod diag;
pub mod edifact;
pub mod hub;
pub mod model;
pub mod schema;
pub mod store;
pub mod timestamp;
pub mod transport;
