use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

const ID1: &str = "1C277C0A-0000-4E6B-93DC-000000000001";
const ID2: &str = "1c277c0a-0000-4e6b-93dc-000000000002";

fn parse(xml: &str) -> Result<Vec<Member>, ParseError> {
    parse_with(xml, &BTreeMap::new())
}

fn parse_with(xml: &str, map: &BTreeMap<String, String>) -> Result<Vec<Member>, ParseError> {
    let mut p = ExportParser::new(xml.as_bytes(), map);
    let mut out = Vec::new();
    while let Some(m) = p.next_member()? {
        out.push(m);
    }
    Ok(out)
}

fn field<'a>(m: &'a Member, name: &str) -> Option<&'a Value> {
    m.fields.iter().find(|(n, _)| n == name).map(|(_, v)| v)
}

#[test]
fn reads_all_sections_with_child_or_attribute_ids() {
    let xml = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<contacts xmlns="http://eClub.Schemas.ExportMember">
  <new>
    <member source="POS"><contactId>{ID1}</contactId><firstName>Åsa &amp; Co</firstName>
      <email>a@b.se</email><address><street>S 1</street><city>Umeå</city></address>
    </member>
  </new>
  <updated><member contactId="{ID2}"><lastName><![CDATA[Ek<>]]></lastName></member></updated>
  <deleted><member><contactId>{ID1}</contactId></member><member contactId="{ID2}"/></deleted>
</contacts>"#
    );
    let members = parse(&xml).expect("valid");
    assert_eq!(members.len(), 4);
    assert_eq!(members[0].section, Section::New);
    assert_eq!(members[0].contact_id, ID1.to_lowercase());
    assert_eq!(
        field(&members[0], "firstName"),
        Some(&Value::from("Åsa & Co"))
    );
    assert_eq!(field(&members[0], "source"), Some(&Value::from("POS")));
    assert_eq!(
        field(&members[0], "address").and_then(|a| a.get("city")),
        Some(&Value::from("Umeå"))
    );
    assert_eq!(members[1].section, Section::Updated);
    assert_eq!(field(&members[1], "lastName"), Some(&Value::from("Ek<>")));
    assert_eq!(members[2].section, Section::Deleted);
    assert!(members[2].fields.is_empty());
    assert_eq!(members[3].contact_id, ID2);
}

#[test]
fn any_prefix_and_field_map() {
    let xml = format!(
        r#"<e:contacts xmlns:e="http://eClub.Schemas.ExportMember"><e:new>
<e:member><e:contactId>{ID1}</e:contactId><e:custNo>42</e:custNo></e:member></e:new></e:contacts>"#
    );
    let map = BTreeMap::from([("custNo".to_string(), "memberNumber".to_string())]);
    let members = parse_with(&xml, &map).expect("valid");
    assert_eq!(field(&members[0], "memberNumber"), Some(&Value::from("42")));
}

#[test]
fn empty_documents_are_valid() {
    assert!(
        parse(r#"<contacts xmlns="http://eClub.Schemas.ExportMember"/>"#)
            .expect("valid")
            .is_empty()
    );
    assert!(parse(
        r#"<contacts xmlns="http://eClub.Schemas.ExportMember"><new/><updated></updated></contacts>"#
    )
    .expect("valid")
    .is_empty());
}

#[test]
fn malformed_documents_are_errors() {
    let ns = EXPORT_NAMESPACE;
    let member = format!("<member><contactId>{ID1}</contactId></member>");
    let cases = [
        ("empty", String::new()),
        ("wrong root", format!(r#"<members xmlns="{ns}"/>"#)),
        ("no namespace", "<contacts/>".to_string()),
        (
            "wrong namespace",
            r#"<contacts xmlns="urn:x"/>"#.to_string(),
        ),
        (
            "truncated",
            format!(r#"<contacts xmlns="{ns}"><new>{member}<member><cont"#),
        ),
        (
            "truncated in member",
            format!(r#"<contacts xmlns="{ns}"><new><member><contactId>{ID1}</contactId>"#),
        ),
        (
            "mismatched",
            format!(r#"<contacts xmlns="{ns}"><new>{member}</updated></contacts>"#),
        ),
        (
            "unknown section",
            format!(r#"<contacts xmlns="{ns}"><other>{member}</other></contacts>"#),
        ),
        (
            "no id",
            format!(
                r#"<contacts xmlns="{ns}"><new><member><email>x</email></member></new></contacts>"#
            ),
        ),
        (
            "bad id",
            format!(r#"<contacts xmlns="{ns}"><new><member contactId="nope"/></new></contacts>"#),
        ),
        (
            "entity",
            format!("<!DOCTYPE contacts [<!ENTITY a \"b\">]><contacts xmlns=\"{ns}\"/>"),
        ),
        (
            "undefined entity",
            format!(
                r#"<contacts xmlns="{ns}"><new><member contactId="{ID1}"><a>&lol;</a></member></new></contacts>"#
            ),
        ),
        (
            "latin1",
            format!(r#"<?xml version="1.0" encoding="ISO-8859-1"?><contacts xmlns="{ns}"/>"#),
        ),
        (
            "trailing",
            format!(r#"<contacts xmlns="{ns}"/><contacts xmlns="{ns}"/>"#),
        ),
        ("not xml", "hello, world".to_string()),
    ];
    for (what, xml) in cases {
        assert!(parse(&xml).is_err(), "{what} should fail");
    }
    let mut bytes =
        format!(r#"<contacts xmlns="{ns}"><new><member contactId="{ID1}"><a>"#).into_bytes();
    bytes.extend_from_slice(&[0xff, 0xfe]);
    bytes.extend_from_slice(b"</a></member></new></contacts>");
    let map = BTreeMap::new();
    let mut p = ExportParser::new(&bytes[..], &map);
    let err = loop {
        match p.next_member() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("invalid UTF-8 accepted"),
            Err(e) => break e,
        }
    };
    assert!(err.message.contains("UTF-8"), "{err:?}");
}

#[test]
fn line_and_column_are_counted_in_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.xml");
    std::fs::write(&path, "ab\nåäö<x").expect("write");
    // offset of '<' = 3 + 6 bytes
    assert_eq!(line_column(&path, 9).expect("reads"), (2, 4));
}
