//! The bodies of the fuzz targets, shared by `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly)
//! and `tests/fuzz_regressions.rs` (stable, part of `cargo test`), so the committed regression
//! corpus replays through exactly the code the fuzzer ran. Each function feeds arbitrary bytes
//! to the library's own entry points and asserts what must hold for any input; a panic (here
//! or in the library) is the bug the fuzzer reports.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::BufReader;

use engage_sync::config::Mode;
use engage_sync::export_xml::{ExportFileName, ExportParser, Member, ParseError, Section};
use engage_sync::normalize::Country;
use engage_sync::outbox::input::read_all;
use engage_sync::outbox::receipt::{body_with_key, validate, ContactRef};
use engage_sync::replica::ContactRow;

/// Parses `data` as a contact-export document, the way `delta` does (streaming, through a
/// small buffer so that tokens straddle buffer ends), and builds each member's replica row
/// in both modes. The document parsed in memory (as `delta` parses a small file) must give
/// the same members and the same error. Ok: how many members; Err: the parser's message.
pub fn export_parser(data: &[u8]) -> Result<usize, String> {
    file_name(data);
    let mut field_map = BTreeMap::new();
    field_map.insert("customerNo".to_string(), "memberNumber".to_string());
    field_map.insert("phone".to_string(), "mobilePhone".to_string());
    let country = Country::from_iso("SE").expect("SE is known");
    let streamed = all_members(ExportParser::new(
        BufReader::with_capacity(64, data),
        &field_map,
    ));
    let in_memory = all_members(ExportParser::from_slice(data, &field_map));
    assert!(
        streamed == in_memory,
        "a document in memory parses as the stream does:\n{streamed:?}\n{in_memory:?}"
    );
    let (members, error) = streamed;
    for m in &members {
        assert_eq!(m.contact_id.len(), 36, "a contact id is a GUID");
        assert!(
            m.contact_id
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "a contact id is stored lower-case"
        );
        assert!(
            m.offset < data.len() as u64,
            "a member starts inside the input"
        );
        if m.section == Section::Deleted {
            assert!(m.fields.is_empty(), "a delete keeps no personal data");
        }
        let keys =
            ContactRow::from_fields(m.contact_id.clone(), m.fields.clone(), Mode::Keys, country);
        assert!(keys.attributes.is_none() && keys.first_name.is_none());
        let full =
            ContactRow::from_fields(m.contact_id.clone(), m.fields.clone(), Mode::Full, country);
        let attributes = full.attributes.expect("full mode keeps attributes");
        serde_json::from_str::<serde_json::Value>(&attributes).expect("attributes are valid JSON");
    }
    match error {
        None => Ok(members.len()),
        Some(e) => {
            assert!(
                e.offset <= data.len() as u64,
                "error offset {} beyond the input ({} bytes): {}",
                e.offset,
                data.len(),
                e.message
            );
            assert!(!e.message.is_empty(), "an error says what is wrong");
            Err(e.message)
        }
    }
}

/// Every member up to the end of the document or the first error.
fn all_members(mut parser: ExportParser<'_>) -> (Vec<Member>, Option<ParseError>) {
    let mut members = Vec::new();
    loop {
        match parser.next_member() {
            Ok(Some(m)) => members.push(m),
            Ok(None) => return (members, None),
            Err(e) => return (members, Some(e)),
        }
    }
}

/// The first line as an export file name: parsing must not panic, and a valid name has a
/// version in every UTC offset.
fn file_name(data: &[u8]) {
    let line = data.split(|b| *b == b'\n').next().unwrap_or_default();
    let name = String::from_utf8_lossy(&line[..line.len().min(80)]);
    if let Ok(parsed) = ExportFileName::parse(&name) {
        for offset in [-14 * 3600, 0, 3600, 14 * 3600] {
            parsed.version_ms(offset);
        }
        let _ = parsed.order_key();
    }
}

/// Reads `data` as `receipt add` input (an object, an array of objects, or JSON Lines) and
/// validates each receipt, the way `receipt add` does before it touches the database. Ok: how
/// many receipts were valid; Err: the first refusal's message.
pub fn receipt_validate(data: &[u8]) -> Result<usize, String> {
    let country = Country::from_iso("SE").expect("SE is known");
    let mut valid = 0;
    let result = read_all(BufReader::new(data), "fuzz input", &mut |i, doc| {
        let store = i.is_multiple_of(2).then_some("0600");
        let receipt = validate(doc, i + 1, store, country)?;
        assert!(!receipt.unique_receipt_id.is_empty());
        assert_eq!(receipt.unique_receipt_id.trim(), receipt.unique_receipt_id);
        let body = receipt
            .body
            .as_object()
            .expect("a valid receipt is an object");
        assert!(body.contains_key("storeExternalId"));
        if let ContactRef::Key { value, .. } = &receipt.contact {
            assert!(!value.is_empty(), "a match key is never empty");
        }
        let sent = body_with_key(&receipt.body, "contactId", "x");
        assert_eq!(sent["contact"]["matchKey"], "x");
        valid += 1;
        Ok(())
    });
    match result {
        Ok(n) => {
            assert_eq!(n, valid, "every document read was validated");
            Ok(n)
        }
        Err(e) => {
            let message = format!("{e:#}");
            assert!(!message.is_empty(), "an error says what is wrong");
            Err(message)
        }
    }
}
