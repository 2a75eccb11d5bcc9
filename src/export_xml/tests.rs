use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

const ID1: &str = "1C277C0A-0000-4E6B-93DC-000000000001";
const ID2: &str = "1c277c0a-0000-4e6b-93dc-000000000002";

fn parse(xml: &str) -> Result<Vec<Member>, ParseError> {
    parse_with(xml, &BTreeMap::new())
}

/// Parses `xml` streamed and in memory, checks that both agree, and returns the result.
fn parse_with(xml: &str, map: &BTreeMap<String, String>) -> Result<Vec<Member>, ParseError> {
    let streamed = all(ExportParser::new(xml.as_bytes(), map));
    assert_eq!(streamed, all(ExportParser::from_slice(xml.as_bytes(), map)));
    let (members, error) = streamed;
    match error {
        Some(e) => Err(e),
        None => Ok(members),
    }
}

/// Every member up to the end or the first error.
fn all(mut p: ExportParser<'_>) -> (Vec<Member>, Option<ParseError>) {
    let mut members = Vec::new();
    loop {
        match p.next_member() {
            Ok(Some(m)) => members.push(m),
            Ok(None) => return (members, None),
            Err(e) => return (members, Some(e)),
        }
    }
}

/// `data` through every way in: in memory, and streamed through buffers of several sizes (a
/// whole slice as one buffer included). All must give the same members and error.
fn every_way(data: &[u8]) -> (Vec<Member>, Option<ParseError>) {
    every_way_through(data, &[5, 64, 8 << 10, 256 << 10])
}

/// [`every_way`] with buffers of the given sizes.
fn every_way_through(data: &[u8], capacities: &[usize]) -> (Vec<Member>, Option<ParseError>) {
    let map = BTreeMap::new();
    let in_memory = all(ExportParser::from_slice(data, &map));
    assert_eq!(in_memory, all(ExportParser::new(data, &map)), "whole slice");
    for &capacity in capacities {
        let streamed = all(ExportParser::new(
            std::io::BufReader::with_capacity(capacity, data),
            &map,
        ));
        assert_eq!(in_memory, streamed, "buffer of {capacity} bytes");
    }
    in_memory
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
    let (_, err) = every_way(&bytes);
    let err = err.expect("invalid UTF-8 refused");
    assert!(err.message.contains("UTF-8"), "{err:?}");
    assert_eq!(
        err.offset,
        bytes.iter().position(|&b| b == 0xff).expect("0xff") as u64
    );
}

#[test]
fn in_memory_and_streamed_documents_give_the_same_members_and_errors() {
    let ns = EXPORT_NAMESPACE;
    let members: String = (0..50)
        .map(|i| {
            format!(
                "<member source=\"POS\"><contactId>1c277c0a-0000-4e6b-93dc-{i:012}</contactId>\
                 <firstName> Åsa &amp; {i} </firstName><tag>a</tag><tag>b</tag>\
                 <address><city>Umeå</city></address><note xsi:nil=\"true\"/></member>\n"
            )
        })
        .collect();
    let good = format!(
        "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- export -->\n\
         <e:contacts xmlns:e=\"{ns}\" xmlns=\"{ns}\"><new>\n{members}</new><e:deleted>\
         <member contactId=\"{ID2}\"/></e:deleted></e:contacts>\n"
    );
    let (found, error) = every_way(good.as_bytes());
    assert_eq!((found.len(), error), (51, None));
    assert_eq!(
        found[0].fields[1],
        ("firstName".to_string(), Value::from("Åsa & 0"))
    );
    // An error after many members: the members before it, then the same error, either way
    // (in memory, the error makes the parser go over the document again as a stream).
    let at = good
        .find("<member source=\"POS\"><contactId>1c277c0a-0000-4e6b-93dc-000000000040")
        .expect("member 40");
    let from_40 =
        |from: &str, to: &str| format!("{}{}", &good[..at], good[at..].replacen(from, to, 1));
    let cases = [
        from_40("<tag>a</tag>", "<tag>&nope;</tag>"),
        from_40("</firstName>", "</lastName>"),
        format!("{}<undeclared:x/>{}", &good[..at], &good[at..]),
        format!("{}<member/>{}", &good[..at], &good[at..]),
        good[..good.len() - 30].to_string(),
        good.replace("xmlns=\"", "xmlns:xml=\""),
    ];
    for (i, doc) in cases.iter().enumerate() {
        let (found, error) = every_way(doc.as_bytes());
        assert!(error.is_some(), "case {i}: refused");
        assert!(
            !found.is_empty() || i == 5,
            "case {i}: members before the error"
        );
    }
    // (Without the BOM, which quick-xml leaves out of its offsets.)
    let good = good.trim_start_matches('\u{feff}');
    let mut bad = good.as_bytes().to_vec();
    let at = good.find("Umeå</city>").expect("city") + 3;
    bad[at] = 0xff;
    let (found, error) = every_way(&bad);
    assert_eq!(found.len(), 0);
    let error = error.expect("refused");
    assert_eq!(error.offset, at as u64, "{error:?}");
}

#[test]
fn a_piece_of_xml_over_2_mib_is_refused_however_it_is_read() {
    let ns = EXPORT_NAMESPACE;
    let head = format!("<contacts xmlns=\"{ns}\"><new><member contactId=\"{ID1}\">");
    let tail = "</member></new></contacts>";
    let limit = 2usize << 20;
    // Around the limit, the answer must not depend on buffer sizes; well over it, a refusal.
    for size in [limit - 2, limit - 1, limit, limit + 1, limit + 2, 3 << 20] {
        let pieces = [
            format!("{head}<!--{}-->{tail}", "c".repeat(size - 7)),
            format!("{head}<x><![CDATA[{}]]></x>{tail}", "d".repeat(size - 12)),
            format!("{head}{}{tail}", " ".repeat(size)),
            format!("{head}<x a=\"{}\"/>{tail}", "v".repeat(size - 8)),
            format!("<contacts xmlns=\"{ns}\"/>{}", " ".repeat(size)),
        ];
        for (i, doc) in pieces.iter().enumerate() {
            let (_, error) = every_way_through(doc.as_bytes(), &[1000, 256 << 10]);
            if size == 3 << 20 {
                let error = error.expect("refused");
                assert!(
                    error.message.contains("larger than 2 MiB"),
                    "piece {i} of {size} bytes: {error:?}"
                );
            }
        }
    }
}

#[test]
fn file_parser_reads_small_files_whole_and_streams_large_ones() {
    let map = BTreeMap::new();
    let member = |i: usize| {
        format!("<member><contactId>1c277c0a-0000-4e6b-93dc-{i:012}</contactId><note>{}</note></member>", "n".repeat(1000))
    };
    let body: String = (0..9_000).map(member).collect();
    let doc = format!("<contacts xmlns=\"{EXPORT_NAMESPACE}\"><new>{body}</new></contacts>");
    assert!(doc.len() as u64 > WHOLE_DOCUMENT_MAX);
    let count = |p: ExportParser<'_>| {
        let (members, error) = all(p);
        assert_eq!(error, None);
        members.len()
    };
    let mut whole = Vec::new();
    // Large: streamed (nothing kept whole), whatever size the caller thought it had.
    for size in [doc.len() as u64, 1000] {
        let p = file_parser(doc.as_bytes(), size, &mut whole, &map, 4096).expect("reads");
        assert_eq!(count(p), 9_000);
        assert!(whole.is_empty());
    }
    // Small: read whole.
    let small = &doc.as_bytes()[..doc
        .find("<member><contactId>1c277c0a-0000-4e6b-93dc-000000000100")
        .expect("member 100")];
    let small = [small, b"</new></contacts>"].concat();
    let p = file_parser(&small[..], small.len() as u64, &mut whole, &map, 4096).expect("reads");
    assert_eq!(count(p), 100);
    assert_eq!(whole, small);
}

#[test]
fn line_and_column_are_counted_in_characters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.xml");
    std::fs::write(&path, "ab\nåäö<x").expect("write");
    // offset of '<' = 3 + 6 bytes
    assert_eq!(line_column(&path, 9).expect("reads"), (2, 4));
}

/// A file starting with a byte-order mark: the error's line and column are where the error
/// is, not three bytes before it.
#[test]
fn line_and_column_after_a_byte_order_mark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("f.xml");
    let doc = format!(
        "\u{feff}<?xml version=\"1.0\"?>\n<contacts xmlns=\"{EXPORT_NAMESPACE}\">\n\
         <new>\n  <member><contactId>{ID1}</contactId><city>Umeå</cty></member>\n</new></contacts>"
    );
    std::fs::write(&path, &doc).expect("write");
    let (_, error) = every_way(doc.as_bytes());
    let error = error.expect("refused");
    let line = doc.lines().nth(3).expect("line 4");
    // The error is reported at the start of the mismatched end tag or just after it.
    let tag = line.find("</cty>").expect("tag");
    let (l, c) = line_column(&path, error.offset).expect("reads");
    assert_eq!(l, 4, "{error:?}");
    let tag_column = line[..tag].chars().count() as u64 + 1;
    assert!(
        (tag_column..=tag_column + 6).contains(&c),
        "column {c}, the tag is at {tag_column}: {error:?}"
    );
    // Without the mark, the same place.
    let plain = dir.path().join("g.xml");
    let doc = doc.trim_start_matches('\u{feff}');
    std::fs::write(&plain, doc).expect("write");
    let (_, error) = every_way(doc.as_bytes());
    assert_eq!(
        line_column(&plain, error.expect("refused").offset).expect("reads"),
        (l, c)
    );
}

/// A bad namespace declaration is reported at its tag, not at the start of the file.
#[test]
fn a_bad_namespace_declaration_is_located_at_its_tag() {
    let doc = format!(
        "<contacts xmlns=\"{EXPORT_NAMESPACE}\">\n<new>\n<member xmlns:xml=\"urn:not-xml\">\
         <contactId>{ID1}</contactId></member></new></contacts>"
    );
    let (_, error) = every_way(doc.as_bytes());
    let error = error.expect("refused");
    assert_eq!(
        error.offset,
        doc.find("<member").expect("member") as u64,
        "{error:?}"
    );
    assert!(error.message.contains("not well-formed"), "{error:?}");
}

#[test]
fn a_single_valued_field_given_twice_differently_is_malformed() {
    let ns = EXPORT_NAMESPACE;
    let doc = |section: &str, member: &str| {
        format!(r#"<contacts xmlns="{ns}"><{section}>{member}</{section}></contacts>"#)
    };
    let refused = [
        (
            "new",
            format!("<member><contactId>{ID1}</contactId><contactId>{ID2}</contactId></member>"),
            "two contactId elements",
        ),
        (
            "new",
            format!("<member><contactId>{ID1}</contactId><contactId>{ID1}</contactId></member>"),
            "two contactId elements",
        ),
        (
            "deleted",
            format!("<member contactId=\"{ID1}\"><contactId>{ID2}</contactId></member>"),
            "contactId element and contactId attribute disagree",
        ),
        (
            "new",
            format!("<member ContactId=\"{ID1}\" contactid=\"{ID2}\"/>"),
            "two contactId attributes",
        ),
        (
            "new",
            format!("<member><contactId><id>{ID1}</id></contactId></member>"),
            "contactId is not text",
        ),
        (
            "updated",
            format!("<member contactId=\"{ID1}\"><email>a@b.se</email><city>U</city><email>c@d.se</email></member>"),
            "email twice",
        ),
        (
            "new",
            format!("<member contactId=\"{ID1}\" mobilePhone=\"+46701\"><mobilePhone>+46702</mobilePhone></member>"),
            "mobilePhone twice",
        ),
        (
            "new",
            format!("<member contactId=\"{ID1}\"><memberNumber><a>1</a></memberNumber></member>"),
            "memberNumber is not text",
        ),
    ];
    for (section, member, needle) in refused {
        let xml = doc(section, &member);
        let (members, err) = every_way(xml.as_bytes());
        assert!(members.is_empty(), "{member}");
        let err = err.unwrap_or_else(|| panic!("{member}: refused"));
        assert!(err.message.contains(needle), "{member}: {err:?}");
        assert!(!err.message.contains("a@b") && !err.message.contains("4670"));
    }
    // Reported at the second value.
    let xml = doc(
        "new",
        &format!("<member><contactId>{ID1}</contactId>\n<contactId>{ID2}</contactId></member>"),
    );
    let err = parse(&xml).expect_err("refused");
    assert_eq!(err.offset, xml.find('\n').expect("newline") as u64 + 1);

    // The same value twice, an agreeing attribute, and repeated free fields are fine.
    let xml = doc(
        "new",
        &format!(
            "<member contactId=\"{ID1}\"><contactId>{}</contactId><email>a@b.se</email>\
             <email>a@b.se</email><tag>x</tag><tag>y</tag></member>",
            ID1.to_lowercase()
        ),
    );
    let members = parse(&xml).expect("valid");
    assert_eq!(field(&members[0], "email"), Some(&Value::from("a@b.se")));
    assert_eq!(
        field(&members[0], "tag"),
        Some(&Value::from(vec!["x", "y"]))
    );
}

#[test]
fn a_foreign_namespace_member_names_the_namespace() {
    let ns = EXPORT_NAMESPACE;
    for xml in [
        format!(
            r#"<contacts xmlns="{ns}" xmlns:o="urn:other"><new><o:member contactId="{ID1}"/></new></contacts>"#
        ),
        format!(
            r#"<contacts xmlns="{ns}" xmlns:o="urn:other"><o:new><member contactId="{ID1}"/></o:new></contacts>"#
        ),
    ] {
        let err = parse(&xml).expect_err("foreign");
        assert!(err.message.contains("\"urn:other\""), "{err:?}");
        assert!(err.message.contains(ns), "{err:?}");
    }
}
