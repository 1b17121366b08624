//! UN/EDIFACT syntax (ISO 9735): lexer, envelope, writer.

pub mod segment;

pub use segment::{Element, Segment};
