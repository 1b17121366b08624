//! The one place tradehub calls C: XSD validation through the system libxml2,
//! the engine `xmllint` uses, so that tradehub's verdict on a WCO document is
//! libxml2's verdict.
//!
//! Why `unsafe` is allowed here (and nowhere else): there is no pure-Rust XSD
//! validator that agrees with xmllint on the WCO schemas, and the `libxml`
//! crate needs libclang at build time, which a fresh machine does not have.
//! The bindings below declare the handful of stable libxml2 2.9+ entry points
//! used, and wrap them in two safe types:
//!
//! - [`CompiledSchema`] owns a parsed `xmlSchema`. It holds raw pointers and is
//!   therefore neither `Send` nor `Sync`: every thread compiles its own (see
//!   `xml::xsd`), which is the thread-safety rule libxml2 documents for
//!   validation contexts, applied to the schema too.
//! - [`CompiledSchema::validate`] streams a document through an
//!   `xmlTextReader` with the schema attached (what `xmllint --stream` does):
//!   no tree is built, memory stays bounded by the reader's window.
//!
//! Documents reach this module only after `xml::reader` has checked them: no
//! DOCTYPE (so no DTD, external entity or entity expansion ever reaches
//! libxml2), size, depth and count limits. The reader is still opened with
//! `XML_PARSE_NONET` and without `XML_PARSE_NOENT`/`XML_PARSE_DTDLOAD`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Once;

/// libxml2's `xmlError` (xmlerror.h); its layout has not changed since 2.6.
#[repr(C)]
struct RawError {
    domain: c_int,
    code: c_int,
    message: *const c_char,
    level: c_int,
    file: *const c_char,
    line: c_int,
    str1: *const c_char,
    str2: *const c_char,
    str3: *const c_char,
    int1: c_int,
    int2: c_int,
    ctxt: *mut c_void,
    node: *mut c_void,
}

type StructuredErrorFn = unsafe extern "C" fn(user: *mut c_void, error: *const RawError);

const XML_PARSE_NONET: c_int = 1 << 11;
const XML_ERR_WARNING: c_int = 1;
/// `XML_FROM_PARSER`: the error is the document's well-formedness.
pub const DOMAIN_PARSER: i32 = 1;
/// `XML_FROM_SCHEMASV`: the error is a schema validity error.
pub const DOMAIN_SCHEMA_VALIDITY: i32 = 17;

#[link(name = "xml2")]
unsafe extern "C" {
    fn xmlInitParser();
    fn xmlSchemaNewParserCtxt(url: *const c_char) -> *mut c_void;
    fn xmlSchemaSetParserStructuredErrors(
        ctxt: *mut c_void,
        serror: Option<StructuredErrorFn>,
        ctx: *mut c_void,
    );
    fn xmlSchemaParse(ctxt: *mut c_void) -> *mut c_void;
    fn xmlSchemaFreeParserCtxt(ctxt: *mut c_void);
    fn xmlSchemaFree(schema: *mut c_void);
    fn xmlSchemaNewValidCtxt(schema: *mut c_void) -> *mut c_void;
    fn xmlSchemaFreeValidCtxt(ctxt: *mut c_void);
    fn xmlReaderForMemory(
        buffer: *const c_char,
        size: c_int,
        url: *const c_char,
        encoding: *const c_char,
        options: c_int,
    ) -> *mut c_void;
    fn xmlTextReaderSetStructuredErrorHandler(
        reader: *mut c_void,
        f: Option<StructuredErrorFn>,
        arg: *mut c_void,
    );
    fn xmlTextReaderSchemaValidateCtxt(
        reader: *mut c_void,
        ctxt: *mut c_void,
        options: c_int,
    ) -> c_int;
    fn xmlTextReaderRead(reader: *mut c_void) -> c_int;
    fn xmlTextReaderIsValid(reader: *mut c_void) -> c_int;
    fn xmlFreeTextReader(reader: *mut c_void);
    fn xmlSetStructuredErrorFunc(ctx: *mut c_void, handler: Option<StructuredErrorFn>);
}

/// One message libxml2 reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// libxml2's error domain (1 parser, 17 schema validity, …).
    pub domain: i32,
    /// libxml2's error code within its domain.
    pub code: i32,
    /// True for fatal and recoverable errors, false for warnings.
    pub is_error: bool,
    /// The message, without its trailing newline.
    pub message: String,
    /// 1-based line, 0 when libxml2 does not know it.
    pub line: u32,
    /// 1-based column, 0 when libxml2 does not know it (schema errors).
    pub column: u32,
}

/// The result of validating one document.
#[derive(Debug, Clone, Default)]
pub struct EngineOutcome {
    /// The errors and warnings, in the order reported, at most the cap given.
    pub errors: Vec<EngineError>,
    /// How many further errors were reported beyond the cap.
    pub dropped: usize,
    /// libxml2's own verdict.
    pub valid: bool,
}

struct Collector {
    errors: Vec<EngineError>,
    cap: usize,
    dropped: usize,
}

/// Receives libxml2's structured errors. It must not unwind: it only copies
/// plain fields out of the error record.
unsafe extern "C" fn collect(user: *mut c_void, error: *const RawError) {
    if user.is_null() || error.is_null() {
        return;
    }
    // SAFETY: `user` is the `&mut Collector` registered by this module for the
    // duration of one call, and `error` is a live record libxml2 passes for
    // the duration of this callback.
    let (collector, error) = unsafe { (&mut *(user.cast::<Collector>()), &*error) };
    if collector.errors.len() >= collector.cap {
        // Beyond the cap only errors are counted: a warning dropped is no
        // error of the document.
        if error.level > XML_ERR_WARNING {
            collector.dropped += 1;
        }
        return;
    }
    let message = if error.message.is_null() {
        String::new()
    } else {
        // SAFETY: libxml2 messages are NUL-terminated C strings.
        unsafe { CStr::from_ptr(error.message) }
            .to_string_lossy()
            .trim_end()
            .to_owned()
    };
    collector.errors.push(EngineError {
        domain: error.domain,
        code: error.code,
        is_error: error.level > XML_ERR_WARNING,
        message,
        line: u32::try_from(error.line).unwrap_or(0),
        column: u32::try_from(error.int2).unwrap_or(0),
    });
}

fn init() {
    static INIT: Once = Once::new();
    // SAFETY: xmlInitParser takes no arguments; calling it once before any
    // other use from any thread is what libxml2 asks of multithreaded programs.
    INIT.call_once(|| unsafe { xmlInitParser() });
}

/// A compiled XML schema. Not `Send`: each thread compiles its own.
#[derive(Debug)]
pub struct CompiledSchema {
    schema: NonNull<c_void>,
}

impl CompiledSchema {
    /// Parses the schema at `path` (its imports are resolved relative to it).
    /// Errors are the schema parser's messages.
    pub fn compile(path: &Path) -> Result<CompiledSchema, Vec<EngineError>> {
        init();
        let failure = |message: String| {
            vec![EngineError {
                domain: 16,
                code: 0,
                is_error: true,
                message,
                line: 0,
                column: 0,
            }]
        };
        let Some(text) = path.to_str() else {
            return Err(failure(format!(
                "schema path {} is not UTF-8",
                path.display()
            )));
        };
        let Ok(url) = CString::new(text) else {
            return Err(failure(format!("schema path {text} contains NUL")));
        };
        let mut collector = Collector {
            errors: Vec::new(),
            cap: 100,
            dropped: 0,
        };
        // SAFETY: `url` outlives the parser context; the collector outlives
        // every callback, which only happen inside xmlSchemaParse; the parser
        // context is freed before returning and the schema does not keep it.
        let schema = unsafe {
            let ctxt = xmlSchemaNewParserCtxt(url.as_ptr());
            if ctxt.is_null() {
                return Err(failure(format!("cannot open schema {text}")));
            }
            xmlSchemaSetParserStructuredErrors(
                ctxt,
                Some(collect),
                (&raw mut collector).cast::<c_void>(),
            );
            let schema = xmlSchemaParse(ctxt);
            xmlSchemaFreeParserCtxt(ctxt);
            schema
        };
        match NonNull::new(schema) {
            Some(schema) => Ok(CompiledSchema { schema }),
            None => {
                collector.errors.retain(|e| e.is_error);
                if collector.errors.is_empty() {
                    return Err(failure(format!("schema {text} did not compile")));
                }
                Err(collector.errors)
            }
        }
    }

    /// Validates one document held in memory, streaming. `name` is used as the
    /// document's URL in libxml2 (only for its messages; nothing is fetched).
    /// At most `cap` messages are kept.
    pub fn validate(&self, document: &[u8], name: &str, cap: usize) -> EngineOutcome {
        let mut collector = Collector {
            errors: Vec::new(),
            cap,
            dropped: 0,
        };
        let Ok(size) = c_int::try_from(document.len()) else {
            collector.errors.push(EngineError {
                domain: DOMAIN_PARSER,
                code: 0,
                is_error: true,
                message: "document larger than 2 GiB".into(),
                line: 0,
                column: 0,
            });
            return EngineOutcome {
                errors: collector.errors,
                dropped: 0,
                valid: false,
            };
        };
        let url = CString::new(name.replace('\0', "")).unwrap_or_default();
        let valid;
        // SAFETY: `document` and `url` outlive the reader, which is freed
        // before returning; the validation context is freed after the reader
        // that uses it; the collector outlives both and every callback.
        unsafe {
            let vctxt = xmlSchemaNewValidCtxt(self.schema.as_ptr());
            if vctxt.is_null() {
                return EngineOutcome::failed("libxml2 could not allocate a validation context");
            }
            let reader = xmlReaderForMemory(
                document.as_ptr().cast::<c_char>(),
                size,
                url.as_ptr(),
                std::ptr::null(),
                XML_PARSE_NONET,
            );
            if reader.is_null() {
                xmlSchemaFreeValidCtxt(vctxt);
                return EngineOutcome::failed("libxml2 could not open the document");
            }
            let user = (&raw mut collector).cast::<c_void>();
            // The handler must be set before the schema is attached: libxml2
            // copies it onto the validation context at that moment.
            xmlTextReaderSetStructuredErrorHandler(reader, Some(collect), user);
            xmlSetStructuredErrorFunc(user, Some(collect));
            let attached = xmlTextReaderSchemaValidateCtxt(reader, vctxt, 0);
            let mut last = -1;
            if attached == 0 {
                loop {
                    last = xmlTextReaderRead(reader);
                    if last != 1 {
                        break;
                    }
                }
            }
            valid = attached == 0 && last == 0 && xmlTextReaderIsValid(reader) == 1;
            xmlFreeTextReader(reader);
            xmlSchemaFreeValidCtxt(vctxt);
            xmlSetStructuredErrorFunc(std::ptr::null_mut(), None);
        }
        let valid = valid && !collector.errors.iter().any(|e| e.is_error);
        EngineOutcome {
            errors: collector.errors,
            dropped: collector.dropped,
            valid,
        }
    }
}

impl EngineOutcome {
    fn failed(message: &str) -> Self {
        EngineOutcome {
            errors: vec![EngineError {
                domain: 0,
                code: 0,
                is_error: true,
                message: message.into(),
                line: 0,
                column: 0,
            }],
            dropped: 0,
            valid: false,
        }
    }
}

impl Drop for CompiledSchema {
    fn drop(&mut self) {
        // SAFETY: the pointer came from xmlSchemaParse and is freed once.
        unsafe { xmlSchemaFree(self.schema.as_ptr()) }
    }
}
