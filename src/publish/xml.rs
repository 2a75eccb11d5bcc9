//! Writing contact-export XML (docs/contract.md §4) as Engage does, for the files a hub publishes:
//! the root `<contacts xmlns="http://eClub.Schemas.ExportMember">`, `<new>`, `<updated>` and
//! `<deleted>` sections of `<member>` elements with camelCase children, which the importer
//! (`src/export_xml/`) reads back into the same contact.
//!
//! A full replica keeps every field of a contact as JSON (`attributes`); the export format
//! has text only, so a value is written as the importer would have read it: text as text,
//! `null` as an empty element with `xsi:nil="true"`, an object as nested elements, an array
//! as the element repeated. Numbers and booleans (from the API) become their text. What the
//! format cannot carry is left out and counted (`Lossy`): a field whose name is not an XML
//! name, an array inside an array, characters XML 1.0 cannot hold.

use std::io::{self, Write};

use serde_json::{Map, Value};

use crate::export_xml::{Section, EXPORT_NAMESPACE};

/// The XML Schema instance namespace, for `xsi:nil`.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// What could not be written as it was (counts only, never values).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Lossy {
    /// Fields left out: the name is not an XML name, or an array held an array.
    pub fields_skipped: u64,
    /// Characters left out of values: XML 1.0 cannot hold them (control characters).
    pub characters_dropped: u64,
}

impl Lossy {
    /// Adds another member's counts.
    pub fn add(&mut self, other: Lossy) {
        self.fields_skipped += other.fields_skipped;
        self.characters_dropped += other.characters_dropped;
    }
}

/// The document's start, up to the root's start tag.
pub fn write_head(out: &mut impl Write) -> io::Result<()> {
    write!(
        out,
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{EXPORT_NAMESPACE}\" \
         xmlns:xsi=\"{XSI}\">\n"
    )
}

/// The root's end tag.
pub fn write_tail(out: &mut impl Write) -> io::Result<()> {
    out.write_all(b"</contacts>\n")
}

/// A section's element name.
pub fn section_name(section: Section) -> &'static str {
    match section {
        Section::New => "new",
        Section::Updated => "updated",
        Section::Deleted => "deleted",
    }
}

/// One `<member>` of a keys-only replica, or a delete: the contact id and the named values
/// (absent ones left out).
pub fn write_member_fields(
    out: &mut impl Write,
    contact_id: &str,
    fields: &[(&str, Option<&str>)],
    lossy: &mut Lossy,
) -> io::Result<()> {
    out.write_all(b"<member>")?;
    write_text_element(out, "contactId", contact_id, lossy)?;
    for (name, value) in fields {
        if let Some(value) = value {
            write_text_element(out, name, value, lossy)?;
        }
    }
    out.write_all(b"</member>\n")
}

/// One `<member>` of a full replica from its stored fields (`attributes`): `source` as the
/// member's attribute, as Engage writes it, `contactId` first, every other field in the
/// object's order.
pub fn write_member_json(
    out: &mut impl Write,
    contact_id: &str,
    attributes: &Map<String, Value>,
    lossy: &mut Lossy,
) -> io::Result<()> {
    let source = match attributes.get("source") {
        Some(Value::String(source)) => Some(source.as_str()),
        _ => None,
    };
    write_member_open(out, source, lossy)?;
    write_text_element(out, "contactId", contact_id, lossy)?;
    for (name, value) in attributes {
        let as_attribute = name == "source" && value.is_string();
        if name == "contactId" || as_attribute {
            continue;
        }
        write_value(out, name, value, lossy)?;
    }
    out.write_all(b"</member>\n")
}

/// `<member>`, with Engage's `source` attribute when given.
pub fn write_member_open(
    out: &mut impl Write,
    source: Option<&str>,
    lossy: &mut Lossy,
) -> io::Result<()> {
    match source {
        Some(source) => {
            out.write_all(b"<member source=\"")?;
            write_escaped(out, source, true, lossy)?;
            out.write_all(b"\">")
        }
        None => out.write_all(b"<member>"),
    }
}

/// `<name>`.
pub fn write_start(out: &mut impl Write, name: &str) -> io::Result<()> {
    out.write_all(b"<")?;
    out.write_all(name.as_bytes())?;
    out.write_all(b">")
}

/// `</name>`.
pub fn write_end(out: &mut impl Write, name: &str) -> io::Result<()> {
    out.write_all(b"</")?;
    out.write_all(name.as_bytes())?;
    out.write_all(b">")
}

/// `<name xsi:nil="true"/>`: a null value.
pub fn write_nil_element(out: &mut impl Write, name: &str) -> io::Result<()> {
    out.write_all(b"<")?;
    out.write_all(name.as_bytes())?;
    out.write_all(b" xsi:nil=\"true\"/>")
}

/// A field: `<name>text</name>`, nested elements for an object, the element repeated for an
/// array.
pub fn write_value(
    out: &mut impl Write,
    name: &str,
    value: &Value,
    lossy: &mut Lossy,
) -> io::Result<()> {
    if !is_xml_name(name) {
        lossy.fields_skipped += 1;
        return Ok(());
    }
    match value {
        Value::Null => write_nil_element(out, name),
        Value::String(s) => write_text_element(out, name, s, lossy),
        Value::Bool(b) => write_text_element(out, name, &b.to_string(), lossy),
        Value::Number(n) => write_text_element(out, name, &n.to_string(), lossy),
        Value::Array(items) => {
            for item in items {
                if item.is_array() {
                    lossy.fields_skipped += 1;
                } else {
                    write_value(out, name, item, lossy)?;
                }
            }
            Ok(())
        }
        Value::Object(map) => {
            write_start(out, name)?;
            for (child, v) in map {
                write_value(out, child, v, lossy)?;
            }
            write_end(out, name)
        }
    }
}

/// `<name>text</name>`, or `<name/>` for empty text.
pub fn write_text_element(
    out: &mut impl Write,
    name: &str,
    text: &str,
    lossy: &mut Lossy,
) -> io::Result<()> {
    if text.is_empty() {
        out.write_all(b"<")?;
        out.write_all(name.as_bytes())?;
        return out.write_all(b"/>");
    }
    write_start(out, name)?;
    write_escaped(out, text, false, lossy)?;
    write_end(out, name)
}

/// Text escaped for element content or (`attribute`) a double-quoted attribute value.
/// Characters XML 1.0 cannot hold are left out and counted; a carriage return (and in an
/// attribute, tab and line feed) is written as a character reference, so that a parser's
/// line-end and attribute normalisation gives back the same text.
fn write_escaped(
    out: &mut impl Write,
    text: &str,
    attribute: bool,
    lossy: &mut Lossy,
) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let replacement: Option<&str> = match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '"' if attribute => Some("&quot;"),
            '\r' => Some("&#13;"),
            '\t' if attribute => Some("&#9;"),
            '\n' if attribute => Some("&#10;"),
            c if !is_xml_char(c) => Some(""),
            _ => None,
        };
        if let Some(r) = replacement {
            out.write_all(&text.as_bytes()[start..i])?;
            if r.is_empty() {
                lossy.characters_dropped += 1;
            }
            out.write_all(r.as_bytes())?;
            start = i + c.len_utf8();
        }
    }
    out.write_all(&text.as_bytes()[start..])
}

/// A character XML 1.0 allows in a document.
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Whether `name` can be written as an element name without a namespace prefix: a letter or
/// `_` first, then letters, digits, `_`, `-` and `.` (non-ASCII letters included; no colon).
pub fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    (first.is_alphabetic() || first == '_')
        && !name.to_ascii_lowercase().starts_with("xml")
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::export_xml::ExportParser;

    /// Writes one member under `<updated>` and reads it back with the importer's parser.
    fn round_trip(attributes: &Value) -> (Vec<(String, Value)>, Lossy) {
        let mut out = Vec::new();
        let mut lossy = Lossy::default();
        write_head(&mut out).expect("head");
        out.extend_from_slice(b"<updated>");
        let map = attributes.as_object().expect("object");
        write_member_json(
            &mut out,
            "6f1c2e4a-3b1d-4c8e-9a0b-000000000001",
            map,
            &mut lossy,
        )
        .expect("member");
        out.extend_from_slice(b"</updated>");
        write_tail(&mut out).expect("tail");
        let field_map = BTreeMap::new();
        let mut parser = ExportParser::from_slice(&out, &field_map);
        let member = parser.next_member().expect("parse").expect("a member");
        assert_eq!(member.section, Section::Updated);
        assert_eq!(member.contact_id, "6f1c2e4a-3b1d-4c8e-9a0b-000000000001");
        assert!(parser.next_member().expect("end").is_none());
        (member.fields, lossy)
    }

    fn sorted(fields: Vec<(String, Value)>) -> Value {
        Value::Object(fields.into_iter().collect())
    }

    /// Text (with markup characters, quotes, line ends, non-ASCII), nil, nested objects,
    /// repeated elements and the `source` attribute come back as they were written.
    #[test]
    fn what_the_importer_reads_back_is_what_was_written() {
        let attributes = serde_json::json!({
            "source": "POS \"main\" & <web>",
            "email": "a&b@example.com",
            "firstName": "Åsa",
            "street": "Storgatan 1\r\nc/o <Öberg>",
            "note": null,
            "empty": "",
            "address": {"city": "Umeå", "zip": "901 02"},
            "tags": ["a", "b"],
        });
        let (fields, lossy) = round_trip(&attributes);
        assert_eq!(lossy, Lossy::default());
        assert_eq!(sorted(fields), attributes);
    }

    /// Numbers and booleans become text; names XML cannot hold and control characters are
    /// left out and counted.
    #[test]
    fn what_the_format_cannot_hold_is_counted() {
        let attributes = serde_json::json!({
            "age": 42,
            "active": true,
            "bad name": "x",
            "1st": "x",
            "nested": [["x"]],
            "bell": "a\u{7}b",
        });
        let (fields, lossy) = round_trip(&attributes);
        assert_eq!(
            sorted(fields),
            serde_json::json!({"age": "42", "active": "true", "bell": "ab"})
        );
        assert_eq!(
            lossy,
            Lossy {
                fields_skipped: 3,
                characters_dropped: 1
            }
        );
    }
}
