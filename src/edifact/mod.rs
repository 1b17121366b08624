//! UN/EDIFACT syntax (ISO 9735): lexer, envelope, writer.

pub mod charset;
pub mod interchange;
pub mod lexer;
pub mod sample;
pub mod scan;
pub mod segment;
pub mod separators;
pub mod text;
pub mod writer;

pub use charset::Charset;
pub use interchange::{Interchange, Message, ParseOptions, Parsed, Parser, parse};
pub use lexer::{Lexer, Limits, Next, RawComponents, RawElement, RawSegment, Sep, Values};
pub use segment::{Element, Segment};
pub use separators::Separators;
pub use text::{MessageText, TextRecorder, ValueSink};
