//! The targets, one module per parser; each module's docs list the invariants it asserts.

pub mod cli;
pub mod conn;
pub mod http;
pub mod json;
pub mod lsp;
pub mod term;
pub mod ws;

/// Percent-encodes every byte outside `A-Z a-z 0-9 - . _ ~` and `keep`, so the result
/// holds no `%`, `+`, `?`, `&`, `=` or space of its own: the printer the decoders are
/// checked against.
pub fn percent_encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
