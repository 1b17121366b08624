//! tradehub: a customs single-window message hub. This library holds the pure
//! core (diagnostics, UN/EDIFACT syntax, acknowledgements) and the CLI; the
//! binary is a thin wrapper around [`cli::run`].
#![deny(unsafe_code)] // allowed in one module only: xml::libxml2 (the libxml2 bindings)

pub mod ack;
pub mod agency;
pub mod bom;
pub mod cli;
pub mod diag;
pub mod edifact;
pub mod hub;
pub mod mapping;
pub mod model;
pub mod risk;
pub mod routing;
pub mod rules;
pub mod schema;
pub mod store;
pub mod timestamp;
pub mod transport;
pub mod xml;
