//! Escaping of control characters in human output (docs/contract.md §8): file names and contact
//! values come from outside (export files, the SFTP server, the till), and a raw newline, carriage
//! return, escape sequence or bidi override in one could forge a line of `status` ("OK: all good")
//! or rewrite the terminal. Every human line (`commands::print_lines`), error message (`main`) and
//! text log line (`logging`) passes through [`escape`]; JSON output is escaped by JSON itself.

use std::borrow::Cow;
use std::io::Write;

/// Whether `c` must not reach a terminal raw: C0 and C1 controls, DEL, and the characters that
/// reorder or break lines (bidi embeddings, overrides and isolates, marks, line and paragraph
/// separators).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every unsafe character written as an escape (`\n`, `\r`, `\t`, `\x1b`,
/// `\u{202e}`); borrowed when there is none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if is_unsafe(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// A log line writer for the text format: escapes what [`escape`] does, except the line's own
/// final newline and, when the log goes to a terminal with colours, the escape character
/// (tracing already escapes it in messages and fields, so what is left are its own colours).
pub struct LogLineWriter {
    /// Colours on.
    pub ansi: bool,
}

impl Write for LogLineWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = log_line(&String::from_utf8_lossy(buf), self.ansi);
        std::io::stderr().lock().write_all(out.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// One log line as [`LogLineWriter`] writes it: escaped, but for its final newline and, with
/// colours (`ansi`), the escape characters of tracing's own colour codes.
fn log_line(text: &str, ansi: bool) -> String {
    let (body, newline) = match text.strip_suffix('\n') {
        Some(b) => (b, "\n"),
        None => (text, ""),
    };
    let mut out = String::with_capacity(text.len());
    for c in body.chars() {
        if ansi && c == '\u{1b}' {
            out.push(c);
        } else {
            push_escaped(&mut out, c);
        }
    }
    out.push_str(newline);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_bidi_are_escaped_and_plain_text_is_not() {
        assert!(matches!(escape("Åsa Öberg"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\nOK: all good\r\u{1b}[2J\u{202e}x\u{85}\u{7f}"),
            "a\\nOK: all good\\r\\x1b[2J\\u{202e}x\\u{85}\\x7f"
        );
        // The first C1 control is past ASCII: written as \u{80}, not \x80.
        assert_eq!(escape("\u{80}\u{7f}"), "\\u{80}\\x7f");
    }

    #[test]
    fn a_log_line_keeps_its_newline_and_only_its_own_colours() {
        let line = "\u{1b}[32mINFO\u{1b}[0m file a\nOK\u{202e}\n";
        assert_eq!(
            log_line(line, false),
            "\\x1b[32mINFO\\x1b[0m file a\\nOK\\u{202e}\n"
        );
        assert_eq!(
            log_line(line, true),
            "\u{1b}[32mINFO\u{1b}[0m file a\\nOK\\u{202e}\n"
        );
        assert_eq!(log_line("no newline\r", true), "no newline\\r");
    }
}
