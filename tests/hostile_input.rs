//! Hostile input: a corpus of bad export files, receipts and command-line values, each run through
//! the real binary against a replica that holds contacts, tombstones, a ledger and both outboxes.
//! Every input must end with its documented exit code (docs/contract.md §8) and a message that
//! names what is wrong and where, and must change nothing: the `contacts` view, the ledger,
//! tombstones, the outboxes and the key sequence are compared before and after.
//!
//! This extends tests/malformed.rs (one file per malformed kind) with many more variants per
//! kind. Large inputs are generated here, never committed. Each test prints how many inputs it
//! tried, by kind (`cargo test --test integration hostile_input:: -- --nocapture` shows the counts).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::{json, Value};

/// Tables whose content a refused input must leave exactly as it was. `run` and
/// `quarantined_file` are left out on purpose: recording a failed run and a quarantined file is
/// what a refusal does.
const DATA_TABLES: [&str; 9] = [
    "contacts",
    "applied_file",
    "tombstone",
    "contact_outbox",
    "receipt_outbox",
    "outbox_batch",
    "local_key_seq",
    "local_key_link",
    "sync_cursor",
];

/// Every row of every data table, as text, sorted.
fn snapshot(ws: &Workspace) -> Vec<String> {
    if !ws.db().exists() {
        return Vec::new();
    }
    table_rows(&ws.conn(), &DATA_TABLES)
}

/// Counts of inputs tried, by kind; printed at the end of each test.
#[derive(Default)]
struct Tally(BTreeMap<&'static str, usize>);

impl Tally {
    fn add(&mut self, kind: &'static str) {
        *self.0.entry(kind).or_default() += 1;
    }

    fn print(&self, what: &str) -> usize {
        let total: usize = self.0.values().sum();
        println!("{what}: {total} hostile inputs tried");
        for (kind, n) in &self.0 {
            println!("  {n:>5}  {kind}");
        }
        total
    }
}

/// A replica with something in every data table: three contacts and a tombstone from an
/// export file, a contact registered at the till (contact outbox, key sequence) and a
/// buffered receipt.
fn seeded() -> Workspace {
    let ws = Workspace::new();
    std::fs::write(
        ws.path().join("engage-sync.toml"),
        "[local]\nstore_external_id = \"0600\"\n",
    )
    .expect("config");
    let good = ws.write_export(
        "20260101100000_0_c.xml",
        &export(
            &[member(1, "a"), member(2, "a"), member(3, "a")],
            &[],
            &[deleted(9)],
        ),
    );
    let out = ws.cmd().arg("delta").arg(&good).output().expect("runs");
    assert!(out.status.success(), "seed delta: {}", stderr_of(&out));
    let out = ws
        .cmd()
        .args(["contact", "add", "--email", "till@example.com"])
        .output()
        .expect("runs");
    assert!(out.status.success(), "seed contact: {}", stderr_of(&out));
    let out = ws
        .cmd()
        .args(["receipt", "add"])
        .write_stdin(receipt("SEED-1").to_string())
        .output()
        .expect("runs");
    assert!(out.status.success(), "seed receipt: {}", stderr_of(&out));
    for table in DATA_TABLES.iter().take(5) {
        let sql = format!("SELECT count(*) FROM {table}");
        assert!(ws.count(&sql) > 0, "seeded {table}");
    }
    ws
}

/// A valid receipt for contact 1.
fn receipt(id: &str) -> Value {
    common::receipt(
        id,
        json!({"matchKeyType": "contactId", "matchKey": guid(1)}),
    )
}

fn nsdoc(body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{NS}\">{body}</contacts>\n"
    )
}

fn one_member(fields: &str) -> String {
    nsdoc(&format!(
        "<new><member source=\"POS\"><contactId>{}</contactId>{fields}</member></new>",
        guid(50)
    ))
}

/// CRC-32 (IEEE), for a real gzip file.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// `data` gzip-compressed with stored (uncompressed) deflate blocks: a valid .gz file, as an
/// SFTP job that forgot to unpack would leave it.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    let chunks: Vec<&[u8]> = data.chunks(65_535).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

fn utf16(text: &str, big_endian: bool) -> Vec<u8> {
    let mut out = if big_endian {
        vec![0xFE, 0xFF]
    } else {
        vec![0xFF, 0xFE]
    };
    for unit in text.encode_utf16() {
        let bytes = if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        };
        out.extend_from_slice(&bytes);
    }
    out
}

/// (kind, file name, content, a word the error must contain) for every hostile export file.
fn hostile_exports() -> Vec<(&'static str, String, Vec<u8>, &'static str)> {
    let name = |i: usize| format!("20260201100000_{i}_c.xml");
    let valid = export(&[member(20, "h"), member(21, "h")], &[], &[]);
    let mut cases: Vec<(&'static str, String, Vec<u8>, &'static str)> = Vec::new();
    let mut add = |kind, content: Vec<u8>, needle| {
        let i = cases.len();
        cases.push((kind, name(i), content, needle));
    };

    // Deep nesting.
    let deep = |n: usize, tag: &str| format!("<{tag}>").repeat(n) + &format!("</{tag}>").repeat(n);
    add(
        "deep nesting",
        one_member(&deep(100_000, "a")).into_bytes(),
        "nested deeper than 8",
    );
    add(
        "deep nesting",
        one_member(&deep(9, "a")).into_bytes(),
        "nested deeper than 8",
    );
    add(
        "deep nesting",
        nsdoc(&deep(50_000, "new")).into_bytes(),
        "unexpected element <new>",
    );
    add(
        "deep nesting",
        nsdoc(&deep(50_000, "x")).into_bytes(),
        "unexpected element <x>",
    );
    add(
        "deep nesting",
        nsdoc(&format!("<new>{}</new>", deep(50_000, "member"))).into_bytes(),
        "nested deeper than 8",
    );
    add(
        "deep nesting",
        format!(
            "<contacts xmlns=\"{NS}\">{}",
            "<new><member>".repeat(20_000)
        )
        .into_bytes(),
        "nested deeper than 8",
    );

    // Huge pieces of XML (the 50 MB text node has its own test, which measures memory).
    let big = "x".repeat(3 << 20);
    add(
        "huge token",
        one_member(&format!("<note>{big}</note>")).into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        nsdoc(&format!(
            "<new><member contactId=\"{}\" note=\"{big}\"/></new>",
            guid(50)
        ))
        .into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        one_member(&format!("<!--{}-->", "a>".repeat(2 << 20))).into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        nsdoc(&format!(
            "<new>{}{}</new>",
            " ".repeat(3 << 20),
            member(20, "h")
        ))
        .into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        format!("<!DOCTYPE contacts [{}]>{}", " ".repeat(3 << 20), nsdoc("")).into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        one_member(&format!("<note><![CDATA[{big}]]></note>")).into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge token",
        nsdoc(&format!("<new><{}/></new>", "m".repeat(3 << 20))).into_bytes(),
        "larger than 2 MiB",
    );
    add(
        "huge field",
        one_member(&format!("<note>{}</note>", "y".repeat(1_500_000))).into_bytes(),
        "larger than 1 MiB",
    );
    add(
        "huge field",
        one_member(&format!(
            "<note>{}</note>",
            "abcdefghijklmnopqrstuvwxyz&amp;".repeat(45_000)
        ))
        .into_bytes(),
        "larger than 1 MiB",
    );
    add(
        "huge field",
        one_member(&format!(
            "<note>{}</note>",
            "<![CDATA[zzzzzzzz]]>".repeat(140_000)
        ))
        .into_bytes(),
        "larger than 1 MiB",
    );
    let field_900k = format!("<a>{}</a>", "w".repeat(900_000));
    add(
        "huge member",
        one_member(&field_900k.repeat(3)).into_bytes(),
        "more than 2 MiB of text",
    );
    let many_fields: String = (0..200_000).map(|i| format!("<f{i}/>")).collect();
    add(
        "huge member",
        one_member(&many_fields).into_bytes(),
        "more than 1024 fields",
    );
    add(
        "huge member",
        one_member(&"<tag>v</tag>".repeat(5_000)).into_bytes(),
        "more than 1024 fields",
    );
    let attrs: String = (0..100_000).map(|i| format!(" a{i}=\"\"")).collect();
    add(
        "huge member",
        nsdoc(&format!("<new><member{attrs}/></new>")).into_bytes(),
        "more than 64 attributes",
    );
    let ns_decls: String = (0..50_000)
        .map(|i| format!(" xmlns:p{i}=\"urn:{i}\""))
        .collect();
    add(
        "huge member",
        format!("<contacts xmlns=\"{NS}\"{ns_decls}><new/></contacts>").into_bytes(),
        "more than 64 attributes",
    );

    // Entities.
    let laughs = "<!ENTITY lol \"lol\">\
        <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\
        <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\
        <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\
        <!ENTITY lol9 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">";
    add(
        "entities",
        format!(
            "<?xml version=\"1.0\"?><!DOCTYPE contacts [{laughs}]>{}",
            one_member("<note>&lol9;</note>")
        )
        .into_bytes(),
        "DOCTYPE with entity",
    );
    add(
        "entities",
        format!(
            "<!DOCTYPE contacts [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>{}",
            one_member("<note>&xxe;</note>")
        )
        .into_bytes(),
        "DOCTYPE with entity",
    );
    add(
        "entities",
        format!(
            "<!DOCTYPE contacts [<!ENTITY % p SYSTEM \"http://example.com/x.dtd\"> %p;]>{}",
            one_member("")
        )
        .into_bytes(),
        "DOCTYPE with entity",
    );
    add(
        "entities",
        one_member("<note>&lol9;</note>").into_bytes(),
        "undefined entity",
    );
    add(
        "entities",
        one_member("<note>&#0;</note>").into_bytes(),
        "character reference",
    );
    add(
        "entities",
        one_member("<note>&#x110000;</note>").into_bytes(),
        "character reference",
    );

    // Invalid UTF-8, in every kind of place.
    let with_bytes = |before: &str, bad: &[u8], after: &str| {
        let mut b = before.as_bytes().to_vec();
        b.extend_from_slice(bad);
        b.extend_from_slice(after.as_bytes());
        b
    };
    let id = guid(50);
    let head = format!("<contacts xmlns=\"{NS}\"><new><member><contactId>{id}</contactId>");
    let tail = "</member></new></contacts>";
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("{head}<fi"),
            &[0xFF],
            &format!("rst>x</fi\u{FF}rst>{tail}"),
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("{head}<note>"),
            &[0xC0, 0xAF],
            &format!("</note>{tail}"),
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("{head}<note>"),
            &[0xED, 0xA0, 0x80],
            &format!("</note>{tail}"),
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("{head}<note>a"),
            &[0xE2, 0x82],
            &format!("</note>{tail}"),
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("{head}<!-- "),
            &[0x80, 0x80],
            &format!(" -->{tail}"),
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("<contacts xmlns=\"{NS}\"><new><member contactId=\"{id}\" source=\""),
            &[0xFE],
            "\"/></new></contacts>",
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        with_bytes(
            &format!("<contacts xmlns=\"{NS}\"><deleted><member><contactId>{id}"),
            &[0xFF],
            "</contactId></member></deleted></contacts>",
        ),
        "UTF-8",
    );
    add(
        "invalid UTF-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>{}",
            one_member("<city>Ume</city>")
        )
        .into_bytes(),
        "encoding",
    );
    {
        // 5,000 good members, then one bad byte: none of the 5,000 may be applied.
        let members: Vec<String> = (100..5_100).map(|n| member(n, "u")).collect();
        let mut b = export(&members, &[], &[]).into_bytes();
        let at = b.len() - 40;
        b.splice(at..at, [0xC3, 0x28]);
        add("invalid UTF-8", b, "");
    }

    // Empty or nearly empty.
    add("empty", b"   \n\t\r\n  ".to_vec(), "no root element");
    add("empty", b"\xEF\xBB\xBF".to_vec(), "no root element");
    add(
        "empty",
        b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n".to_vec(),
        "no root element",
    );
    add(
        "empty",
        b"<!-- nothing here -->".to_vec(),
        "no root element",
    );
    add("empty", vec![0u8; 4096], "");

    // Truncated at each kind of place.
    let cut = |marker: &str, extra: usize| {
        let at = valid.find(marker).expect("marker") + extra;
        valid.as_bytes()[..at].to_vec()
    };
    add("truncated", cut("<member source=\"POS\">", 4), "");
    add("truncated", cut("source=\"POS\"", 10), "");
    add("truncated", cut("<firstName>", 14), "");
    add("truncated", cut("</member>", 4), "");
    add("truncated", cut("</member>", 9), "ends");
    add("truncated", cut("</new>", 6), "ends");
    add("truncated", cut("</contacts>", 0), "ends");
    add("truncated", cut("Åsa", 1), "");

    // Mismatched tags and duplicate roots.
    add(
        "mismatched tags",
        one_member("<firstName>x</lastName>").into_bytes(),
        "not well-formed",
    );
    add(
        "mismatched tags",
        one_member("<firstName>x</member>").into_bytes(),
        "not well-formed",
    );
    add(
        "mismatched tags",
        nsdoc(&format!("<new>{}</new></contacts>", member(20, "h"))).into_bytes(),
        "",
    );
    add(
        "mismatched tags",
        nsdoc("<new></deleted>").into_bytes(),
        "not well-formed",
    );
    add(
        "mismatched tags",
        format!("<contacts xmlns=\"{NS}\"><new></new>").into_bytes(),
        "ends",
    );
    add(
        "duplicate root",
        format!("{}{}", nsdoc(""), nsdoc("")).into_bytes(),
        "after the end of the root",
    );
    add(
        "duplicate root",
        format!("{}<contacts/>", valid).into_bytes(),
        "after the end of the root",
    );

    // Namespaces.
    add(
        "wrong namespace",
        b"<c:contacts xmlns:c=\"urn:other\"><c:new/></c:contacts>".to_vec(),
        "namespace",
    );
    add(
        "wrong namespace",
        b"<contacts><new/></contacts>".to_vec(),
        "no namespace",
    );
    add(
        "wrong namespace",
        b"<x:contacts><x:new/></x:contacts>".to_vec(),
        "not declared",
    );
    add(
        "wrong namespace",
        valid
            .replace(NS, "http://eclub.schemas.exportmember")
            .into_bytes(),
        "namespace",
    );
    add(
        "wrong namespace",
        valid.replace(NS, &format!("{NS}/")).into_bytes(),
        "namespace",
    );
    add(
        "wrong namespace",
        nsdoc(&format!(
            "<new><o:member xmlns:o=\"urn:other\"><contactId>{id}</contactId></o:member></new>"
        ))
        .into_bytes(),
        "<member> is in namespace \"urn:other\"",
    );
    add(
        "wrong namespace",
        nsdoc(&format!(
            "<o:new xmlns:o=\"urn:other\">{}</o:new>",
            member(20, "h")
        ))
        .into_bytes(),
        "<new> is in namespace \"urn:other\"",
    );

    // Not XML at all.
    add("not XML", noise(64 * 1024, 0x9E37_79B9_7F4A_7C15), "");
    add("not XML", noise(100, 7), "");
    add("not XML", gzip(valid.as_bytes()), "");
    add(
        "not XML",
        b"PK\x03\x04\x14\x00\x00\x00\x08\x00"
            .iter()
            .copied()
            .chain(noise(500, 3))
            .collect(),
        "",
    );
    add(
        "not XML",
        b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n".to_vec(),
        "",
    );
    add(
        "not XML",
        serde_json::to_vec(&json!({"contacts": {"new": [{"contactId": guid(1)}]}})).expect("json"),
        "not XML",
    );
    add(
        "not XML",
        b"contactId;email\n6f1c2e4a;a@b.se\n".to_vec(),
        "not XML",
    );
    add(
        "not XML",
        b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>".to_vec(),
        "root element is <html>",
    );
    add("not XML", utf16(&valid, false), "");
    add("not XML", utf16(&valid, true), "");
    add(
        "not XML",
        [&[0u8, 0, 0xFE, 0xFF][..], valid.as_bytes()].concat(),
        "",
    );
    cases
}

/// Runs `delta` on one hostile file and checks the refusal.
fn refuse_export(ws: &Workspace, kind: &str, name: &str, content: &[u8], needle: &str) {
    let before = snapshot(ws);
    let path = ws.write_export_bytes(name, content);
    let out = ws.cmd().arg("delta").arg(&path).output().expect("runs");
    let err = stderr_of(&out);
    let what = format!("{kind} ({name}, {} bytes)", content.len());
    assert_eq!(
        out.status.code(),
        Some(65),
        "{what}: exit code; stderr: {err}"
    );
    assert_eq!(snapshot(ws), before, "{what}: the replica changed");
    assert!(
        err.contains(name),
        "{what}: the error names the file: {err}"
    );
    assert!(
        err.contains(needle),
        "{what}: the error says {needle:?}: {err}"
    );
    assert!(
        err.contains("quarantine"),
        "{what}: says where the file went: {err}"
    );
    let located = err.split(&format!("{name}:")).skip(1).any(|rest| {
        rest.split(':')
            .take(2)
            .all(|n| n.trim().parse::<u64>().is_ok())
    });
    assert!(located, "{what}: the error has file:line:column: {err}");
    assert!(!path.exists(), "{what}: moved out of the inbox");
    assert!(
        ws.path().join("quarantine").join(name).exists(),
        "{what}: quarantined"
    );
    assert!(
        err.len() < 2_000,
        "{what}: the error quotes no bulk: {} bytes",
        err.len()
    );
}

#[test]
fn hostile_export_files_are_refused_whole_and_change_nothing() {
    let ws = seeded();
    let mut tally = Tally::default();
    for (kind, name, content, needle) in hostile_exports() {
        refuse_export(&ws, kind, &name, &content, needle);
        tally.add(kind);
    }
    // Names that do not follow Engage's pattern: refused before the content is read.
    let valid = export(&[member(20, "h")], &[], &[]);
    for name in [
        "20261301100000_0_c.xml",
        "20260230100000_0_c.xml",
        "20260201250000_0_c.xml",
        "20260201100000_4294967296_c.xml",
        "20260201100000_-1_c.xml",
        "20260201100000_0x1_c.xml",
        "20260201100000_0_.xml",
        "20260201100000_0_c.xml.gz",
        "20260201100000_0_c.txt",
        "２０２６０２０１１０００００_0_c.xml",
        "20260201100000 _0_c.xml",
        ".xml",
        "c.xml",
    ] {
        let before = snapshot(&ws);
        let path = ws.write_export(name, &valid);
        let out = ws.cmd().arg("delta").arg(&path).output().expect("runs");
        let err = stderr_of(&out);
        assert_eq!(out.status.code(), Some(65), "name {name:?}: {err}");
        assert!(
            err.contains("not an export file name") && err.contains("expected [YYYYMMDDHHmmss]"),
            "{name:?}: {err}"
        );
        assert!(err.contains(name), "{name:?}: {err}");
        assert_eq!(snapshot(&ws), before, "{name:?}");
        assert!(!path.exists(), "{name:?}: quarantined");
        tally.add("bad file name");
    }
    #[cfg(unix)]
    {
        // A name that is not UTF-8 at all.
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"2026020110\xFF000_0_c.xml");
        let path = ws.inbox().join(name);
        std::fs::write(&path, &valid).expect("write");
        let before = snapshot(&ws);
        let out = ws.cmd().arg("delta").arg(&path).output().expect("runs");
        assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
        // Refused with the name escaped, and left where it is (issue 18): stored lossily in
        // the ledger or quarantine record, two such names could read the same.
        assert!(
            stderr_of(&out).contains("not UTF-8") && stderr_of(&out).contains("0110\\xFF000"),
            "{}",
            stderr_of(&out)
        );
        assert_eq!(snapshot(&ws), before);
        assert!(path.exists(), "left in place");
        tally.add("bad file name");
    }
    let total = tally.print("export files");
    assert!(total >= 85, "{total}");
}

#[test]
fn odd_but_valid_exports_are_applied_not_refused() {
    // The other side of the coin: what Engage or an SFTP hop may plausibly produce is applied.
    let ws = seeded();
    let body = format!(
        "<new>{}</new><new>{}</new><updated/><deleted></deleted>",
        member(70, "o"),
        member(71, "o")
    );
    let with_bom = format!("\u{feff}{}", nsdoc(&body));
    let crlf = export(&[member(72, "o")], &[], &[]).replace('\n', "\r\n");
    let prefixed = format!(
        "<e:contacts xmlns:e=\"{NS}\"><e:new><e:member><e:contactId>{}</e:contactId>\
         <e:firstName>P</e:firstName></e:member></e:new></e:contacts>",
        guid(73)
    );
    let deep_ok = one_member(&("<a>".repeat(8) + "v" + &"</a>".repeat(8)));
    let before = ws.contacts().len();
    for (i, doc) in [with_bom, crlf, prefixed, deep_ok].iter().enumerate() {
        let path = ws.write_export(&format!("20260701100000_{i}_c.xml"), doc);
        let out = ws.cmd().arg("delta").arg(&path).output().expect("runs");
        assert!(out.status.success(), "case {i}: {}", stderr_of(&out));
    }
    assert_eq!(
        ws.contacts().len(),
        before + 5,
        "duplicate sections, BOM, CRLF, prefixes, 8 levels"
    );
}

#[test]
fn a_hostile_file_among_good_ones_stops_the_run_and_keep_going_applies_only_the_good() {
    let ws = seeded();
    let good_a = export(&[member(30, "k")], &[], &[]);
    let good_b = export(&[member(31, "k")], &[], &[]);
    ws.write_export("20260301100000_0_c.xml", &good_a);
    ws.write_export(
        "20260301100000_1_c.xml",
        &one_member(&format!("<n>{}</n>", "x".repeat(3 << 20))),
    );
    ws.write_export("20260301100000_2_c.xml", &good_b);
    let before = ws.contacts().len();
    let out = ws.cmd().args(["delta", "inbox"]).output().expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert_eq!(
        ws.contacts().len(),
        before + 1,
        "the file before the bad one only"
    );
    assert!(
        stderr_of(&out).contains("20260301100000_1_c.xml"),
        "{}",
        stderr_of(&out)
    );
    // Another bad file before the one not tried: --keep-going passes it and applies the rest.
    ws.write_export(
        "20260301100000_1_d.xml",
        "\u{feff}<contacts xmlns=\"urn:x\"/>",
    );
    let out = ws
        .cmd()
        .args(["delta", "--keep-going", "inbox"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(65), "{}", stderr_of(&out));
    assert_eq!(ws.contacts().len(), before + 2);
    assert_eq!(
        ws.quarantined(),
        vec![
            "20260301100000_1_c.xml".to_string(),
            "20260301100000_1_d.xml".to_string()
        ]
    );
}

#[test]
fn every_prefix_of_an_export_is_refused_by_the_parser() {
    // In-process: every truncation of a small document, through the library's parser (the
    // binary would take minutes for so many runs). Only the complete document is valid.
    let doc = export(
        &[member(1, "t"), member(2, "t")],
        &[member(3, "t")],
        &[deleted(4)],
    );
    let end = doc.rfind("</contacts>").expect("root end") + "</contacts>".len();
    let map = BTreeMap::new();
    let count = |mut p: engage_sync::export_xml::ExportParser<'_>| {
        let mut n = 0;
        loop {
            match p.next_member() {
                Ok(Some(_)) => n += 1,
                Ok(None) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    };
    // Streamed, and in memory (as `delta` parses a small file): the same either way.
    let parse = |bytes: &[u8]| {
        let streamed = count(engage_sync::export_xml::ExportParser::new(bytes, &map));
        let in_memory = count(engage_sync::export_xml::ExportParser::from_slice(
            bytes, &map,
        ));
        assert_eq!(streamed, in_memory, "{} bytes", bytes.len());
        streamed
    };
    assert_eq!(parse(doc.as_bytes()).expect("whole document"), 4);
    let mut tried = 0;
    for len in 0..end {
        let err = parse(&doc.as_bytes()[..len]).expect_err("a prefix is not a document");
        assert!(
            err.offset <= len as u64,
            "offset {} beyond {len}",
            err.offset
        );
        assert!(!err.message.is_empty());
        tried += 1;
    }
    println!("export prefixes: {tried} hostile inputs tried (truncated, in-process parser)");
}

/// Peak resident memory of a finished child, from the kernel (`wait4`), in KiB.
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by wait4, which std's Child does not know about
fn run_measured(mut cmd: Command) -> (Option<i32>, String, u64) {
    let stderr = tempfile::NamedTempFile::new().expect("temp");
    cmd.stdout(Stdio::null())
        .stderr(stderr.reopen().expect("reopen"));
    let child = cmd.spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 reaps our own child by pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    // SAFETY: plain FFI call with valid pointers.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4");
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    let err = std::fs::read_to_string(stderr.path()).expect("stderr");
    (code, err, usage.ru_maxrss as u64)
}

#[cfg(target_os = "linux")]
#[test]
fn a_50_mb_text_node_is_refused_in_bounded_memory() {
    let ws = seeded();
    let small = ws.write_export("20260401100000_0_c.xml", &one_member("<note>short</note>"));
    let (code, err, small_kib) = run_measured({
        let mut c = ws.std_cmd();
        c.arg("delta").arg(&small);
        c
    });
    assert_eq!(code, Some(0), "{err}");
    let name = "20260401100000_1_c.xml";
    let path = ws.inbox().join(name);
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        f.write_all(
            format!(
                "<contacts xmlns=\"{NS}\"><new><member><contactId>{}</contactId><note>",
                guid(60)
            )
            .as_bytes(),
        )
        .expect("write");
        let block = vec![b'x'; 1 << 20];
        for _ in 0..50 {
            f.write_all(&block).expect("write");
        }
        f.write_all(b"</note></member></new></contacts>")
            .expect("write");
    }
    let before = snapshot(&ws);
    let (code, err, big_kib) = run_measured({
        let mut c = ws.std_cmd();
        c.arg("delta").arg(&path);
        c
    });
    println!(
        "50 MB text node: refused with exit {code:?}; peak RSS {big_kib} KiB (a 1 KB file: \
         {small_kib} KiB)"
    );
    assert_eq!(code, Some(65), "{err}");
    assert!(err.contains("larger than 2 MiB"), "{err}");
    assert!(err.contains(&format!("{name}:1:")), "{err}");
    assert_eq!(snapshot(&ws), before);
    // Before the token limit this was 113 MB (the text buffered whole, then copied).
    assert!(
        big_kib < small_kib + 16 * 1024,
        "peak RSS {big_kib} KiB vs {small_kib} KiB for a small file"
    );
}

/// Runs a command with optional stdin; returns the output.
fn run_with(ws: &Workspace, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = if args.contains(&"--db") {
        // The case names its own --db: the binary without the workspace's.
        let mut c = assert_cmd::Command::cargo_bin("engage-sync").expect("binary");
        c.current_dir(ws.path())
            .env_remove("ENGAGE_SYNC_DB")
            .env_remove("ENGAGE_SYNC_CONFIG")
            .env_remove("ENGAGE_SYNC_DEFAULT_COUNTRY")
            .env("ENGAGE_SYNC_INBOX_MIN_AGE", "0s");
        c
    } else {
        ws.cmd()
    };
    cmd.args(args);
    if let Some(bytes) = stdin {
        cmd.write_stdin(bytes.to_vec());
    }
    cmd.output().expect("runs")
}

/// Checks one refused command: exit code, message, nothing changed.
fn refuse(
    ws: &Workspace,
    tally: &mut Tally,
    kind: &'static str,
    args: &[&str],
    stdin: Option<&[u8]>,
    code: i32,
    needles: &[&str],
) {
    let before = snapshot(ws);
    let out = run_with(ws, args, stdin);
    let err = stderr_of(&out);
    let what = format!("{kind}: {args:?}");
    assert_eq!(out.status.code(), Some(code), "{what}: stderr: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "{what}: the error says {needle:?}: {err}"
        );
    }
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert_eq!(snapshot(ws), before, "{what}: the replica changed");
    tally.add(kind);
}

/// `text` with `from` replaced by `to`; `from` must be there.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in {text}");
    text.replace(from, to)
}

/// Receipts with one required field removed, or with a wrong type in one place.
fn broken_receipts() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let base = receipt("H-1");
    for field in [
        "uniqueReceiptId",
        "createdDate",
        "currency",
        "totalGrossPrice",
        "paymentMethods",
        "items",
        "contact",
    ] {
        let mut r = base.clone();
        r.as_object_mut().expect("object").remove(field);
        out.push((field.to_string(), r));
    }
    for field in [
        "type",
        "sku",
        "articleNumber",
        "articleName",
        "quantity",
        "grossPaidPrice",
        "taxAmount",
        "taxPercent",
    ] {
        let mut r = base.clone();
        r["items"][0].as_object_mut().expect("item").remove(field);
        out.push((format!("items[0].{field}"), r));
    }
    for field in ["type", "value"] {
        let mut r = base.clone();
        r["paymentMethods"][0]
            .as_object_mut()
            .expect("pm")
            .remove(field);
        out.push((format!("paymentMethods[0].{field}"), r));
    }
    let wrong: Vec<(&str, &str, Value)> = vec![
        ("uniqueReceiptId", "uniqueReceiptId", json!("   ")),
        ("uniqueReceiptId", "uniqueReceiptId", json!(null)),
        ("uniqueReceiptId", "uniqueReceiptId", json!(["H-1"])),
        ("uniqueReceiptId", "uniqueReceiptId", json!({"id": "H-1"})),
        ("totalGrossPrice", "totalGrossPrice", json!("two hundred")),
        ("totalGrossPrice", "totalGrossPrice", json!(true)),
        ("totalGrossPrice", "totalGrossPrice", json!([200])),
        ("currency", "currency", json!("SE")),
        ("currency", "currency", json!("SEKR")),
        ("currency", "currency", json!("ÅÄÖ")),
        ("currency", "currency", json!(752)),
        (
            "createdDate",
            "createdDate",
            json!("2026-02-30T10:00:00+01:00"),
        ),
        ("createdDate", "createdDate", json!("2026-11-25 15:55:54")),
        ("createdDate", "createdDate", json!("yesterday")),
        ("createdDate", "createdDate", json!(20261125)),
        (
            "createdDate",
            "createdDate",
            json!("2026-11-25T15:55:54+25:00"),
        ),
        ("items", "items", json!([])),
        ("items", "items", json!({"type": "PURCHASE"})),
        ("items[0]", "items", json!([null])),
        ("items[0]", "items", json!(["socks"])),
        ("items[0].type", "items", json!([{"type": "GIFT"}])),
        ("paymentMethods", "paymentMethods", json!("card")),
        (
            "contact",
            "contact",
            json!("6f1c2e4a-3b1d-4c8e-9a0b-000000000001"),
        ),
        ("contact", "contact", json!({"matchKeyType": "contactId"})),
        (
            "contact.matchKey",
            "contact",
            json!({"matchKeyType": "contactId", "matchKey": "not-a-guid"}),
        ),
        (
            "contact.matchKey",
            "contact",
            json!({"matchKeyType": "contactId", "matchKey": null}),
        ),
        (
            "contact.matchKey",
            "contact",
            json!({"matchKeyType": "email", "matchKey": "no at sign"}),
        ),
        (
            "contact.matchKey",
            "contact",
            json!({"matchKeyType": "mobilePhone", "matchKey": "call me"}),
        ),
        (
            "contact.matchKeyType",
            "contact",
            json!({"matchKeyType": 5, "matchKey": "x"}),
        ),
        ("contact", "contact", json!({})),
        ("contact", "contact", json!({"firstName": "Only A Name"})),
    ];
    for (field, key, value) in wrong {
        let mut r = base.clone();
        r[key] = value;
        out.push((field.to_string(), r));
    }
    for (path, value) in [
        ("quantity", json!("two")),
        ("taxPercent", json!(null)),
        ("grossPaidPrice", json!({})),
    ] {
        let mut r = base.clone();
        r["items"][0][path] = value;
        out.push((format!("items[0].{path}"), r));
    }
    out
}

#[test]
fn hostile_receipts_are_refused_whole_and_change_nothing() {
    let ws = seeded();
    let mut tally = Tally::default();
    let add = &["receipt", "add"];
    for (field, r) in broken_receipts() {
        let needle = if field == "uniqueReceiptId" {
            "uniqueReceiptId".to_string()
        } else {
            field.clone()
        };
        let stdin = r.to_string();
        refuse(
            &ws,
            &mut tally,
            "receipt: missing or wrong field",
            add,
            Some(stdin.as_bytes()),
            65,
            &[&needle],
        );
        // The same receipt after a good one, as an array and as JSON Lines: all or nothing.
        let batch = format!("[{}, {r}]", receipt("H-OK"));
        refuse(
            &ws,
            &mut tally,
            "receipt: bad one in a batch",
            add,
            Some(batch.as_bytes()),
            65,
            &[&needle],
        );
    }
    let good = receipt("H-2").to_string();
    let mut docs: Vec<(&'static str, Vec<u8>, &str)> = vec![
        ("not JSON", Vec::new(), "is empty"),
        ("not JSON", b" \n\t ".to_vec(), "is empty"),
        ("not JSON", b"\xEF\xBB\xBF".to_vec(), "is empty"),
        ("not JSON", b"null".to_vec(), "must be a JSON object"),
        ("not JSON", b"\"receipt\"".to_vec(), "must be a JSON object"),
        ("not JSON", b"42".to_vec(), "must be a JSON object"),
        ("not JSON", b"[1, 2]".to_vec(), "must be a JSON object"),
        ("not JSON", b"[[]]".to_vec(), "must be a JSON object"),
        ("not JSON", b"<receipt/>".to_vec(), "not valid JSON"),
        ("not JSON", gzip(good.as_bytes()), "not valid JSON"),
        ("not JSON", noise(4096, 11), "not valid JSON"),
        ("not JSON", utf16(&good, false), "not valid JSON"),
        (
            "not JSON",
            b"{'uniqueReceiptId': 'H-3'}".to_vec(),
            "not valid JSON",
        ),
        (
            "not JSON",
            format!("{good} trailing").into_bytes(),
            "not valid JSON",
        ),
        (
            "not JSON",
            format!("[{good}").into_bytes(),
            "not valid JSON",
        ),
        (
            "not JSON",
            format!("[{good},]").into_bytes(),
            "not valid JSON",
        ),
        (
            "not JSON",
            format!("{good}\n{}", &good[..good.len() / 2]).into_bytes(),
            "not valid JSON",
        ),
        (
            "deep nesting",
            "[".repeat(100_000).into_bytes(),
            "recursion limit",
        ),
        (
            "deep nesting",
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
            "recursion limit",
        ),
        (
            "huge numbers",
            swap(
                &good,
                "\"totalGrossPrice\":200.0",
                "\"totalGrossPrice\":1e400",
            )
            .into_bytes(),
            "out of range",
        ),
        (
            "huge numbers",
            swap(&good, "\"quantity\":2", "\"quantity\":-1e999").into_bytes(),
            "out of range",
        ),
        (
            "huge numbers",
            swap(
                &good,
                "\"totalGrossPrice\":200.0",
                &format!("\"totalGrossPrice\":{}", "9".repeat(400)),
            )
            .into_bytes(),
            "out of range",
        ),
        (
            "huge numbers",
            swap(&good, "\"H-2\"", "1e400").into_bytes(),
            "out of range",
        ),
        (
            "bad string",
            swap(&good, "Socks", "So\u{1}cks").into_bytes(),
            "control character",
        ),
        (
            "bad string",
            swap(&good, "\"H-2\"", "\"\\ud800\"").into_bytes(),
            "not valid JSON",
        ),
        (
            "bad string",
            swap(&good, "\"H-2\"", "\"H\\x41\"").into_bytes(),
            "not valid JSON",
        ),
    ];
    {
        let mut bytes = good.clone().into_bytes();
        let at = good.find("Socks").expect("name");
        bytes.splice(at..at, [0xFF, 0xFE]);
        docs.push(("non-UTF-8", bytes, "not valid JSON"));
        let mut bytes = good.clone().into_bytes();
        bytes.splice(at..at, [0xC3]);
        docs.push(("non-UTF-8", bytes, "not valid JSON"));
    }
    for (kind, stdin, needle) in &docs {
        refuse(&ws, &mut tally, kind, add, Some(stdin), 65, &[needle]);
    }
    // A different receipt under an id already buffered: refused, the buffered one kept.
    let mut changed = receipt("SEED-1");
    changed["totalGrossPrice"] = json!(999.0);
    let stdin = changed.to_string();
    refuse(
        &ws,
        &mut tally,
        "receipt: id conflict",
        add,
        Some(stdin.as_bytes()),
        65,
        &["SEED-1", "already"],
    );
    // Input files that are not there or not files.
    let missing = ws.path().join("no-such-receipt.json");
    let missing = missing.to_string_lossy().into_owned();
    refuse(
        &ws,
        &mut tally,
        "receipt: input file",
        &["receipt", "add", &missing],
        None,
        74,
        &["cannot open", "no-such-receipt.json"],
    );
    let dir = ws.path().to_string_lossy().into_owned();
    refuse(
        &ws,
        &mut tally,
        "receipt: input file",
        &["receipt", "add", &dir],
        None,
        74,
        &["cannot read"],
    );
    let total = tally.print("receipts");
    assert!(total >= 100, "{total}");
}

/// A folder nobody may write to, or `None` when this process may write anyway (root).
fn read_only_dir(parent: &Path) -> Option<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent.join("read-only");
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        if std::fs::write(dir.join("probe"), b"x").is_ok() {
            return None;
        }
        Some(dir)
    }
    #[cfg(not(unix))]
    {
        let _ = parent;
        None
    }
}

#[test]
fn hostile_command_lines_are_refused_and_change_nothing() {
    let ws = seeded();
    let mut t = Tally::default();
    let t = &mut t;
    let db = ws.db().to_string_lossy().into_owned();
    let w = &ws;

    // Durations.
    for (args, needle) in [
        (vec!["purge", "--older-than", "30x"], "unknown time unit"),
        (vec!["purge", "--older-than", ""], "empty"),
        (vec!["purge", "--older-than", "-5d"], "unexpected argument"),
        (vec!["purge", "--older-than", "5"], "--older-than"),
        (
            vec!["purge", "--older-than", "99999999999999999999d"],
            "too large",
        ),
        (
            vec!["purge", "--older-than", "600000y"],
            "longer than 100 years",
        ),
        (vec!["purge", "--older-than", "30 days ago"], "--older-than"),
        (vec!["purge"], "--older-than"),
        (vec!["status", "--check", "--max-age", "abc"], "--max-age"),
        (
            vec!["status", "--check", "--max-pending-age", "1fortnight"],
            "--max-pending-age",
        ),
        (
            vec!["changes", "--deadline", "500000000000y"],
            "longer than 100 years",
        ),
        (
            vec!["push-local", "--deadline", "500000000000y"],
            "longer than 100 years",
        ),
        (
            vec!["full", "--deadline", "500000000000y"],
            "longer than 100 years",
        ),
        (vec!["push-local", "--deadline", "soon"], "--deadline"),
    ] {
        refuse(w, t, "bad duration", &args, None, 64, &[needle]);
    }
    // Dates.
    for since in [
        "notadate",
        "2026-13-01",
        "2026-02-30",
        "2026-1-1x",
        "2026-11-01T25:00:00Z",
        "",
        "0",
    ] {
        refuse(
            w,
            t,
            "bad date",
            &["changes", "--since", since],
            None,
            64,
            &["--since"],
        );
    }
    refuse(
        w,
        t,
        "bad date",
        &["full", "--since", "2026-02-30"],
        None,
        64,
        &["--since"],
    );
    // Phone numbers, e-mail and ids for lookup.
    let long = "7".repeat(10_000);
    for (flag, value) in [
        ("--mobile", "+"),
        ("--mobile", "0"),
        ("--mobile", "call me"),
        ("--mobile", long.as_str()),
        // Arabic-Indic digits are digits (libphonenumber reads them): not refused. A number
        // the plan does not have, and one broken by a bidi override in the middle, are.
        ("--mobile", "1234567"),
        ("--mobile", "\u{202E}+46 70 1\u{2066}"),
        ("--mobile", "+46 70 123 45 67 ext 9"),
        ("--mobile", ""),
        ("--email", ""),
        ("--email", "   "),
        ("--contact-id", "123"),
        ("--contact-id", "{6f1c2e4a-3b1d-4c8e-9a0b-000000000001"),
        ("--contact-id", "6f1c2e4a-3b1d-4c8e-9a0b-00000000000g"),
    ] {
        refuse(
            w,
            t,
            "bad key value",
            &["lookup", flag, value],
            None,
            64,
            &[flag],
        );
    }
    refuse(w, t, "bad key value", &["lookup"], None, 64, &["--mobile"]);
    refuse(
        w,
        t,
        "bad key value",
        &["lookup", "--email", "a@b.se", "--mobile", "070"],
        None,
        64,
        &["cannot be used"],
    );
    // Countries.
    for country in ["XX", "", "Sweden", "S", "SE;DROP TABLE contact"] {
        refuse(
            w,
            t,
            "bad country",
            &[
                "--default-country",
                country,
                "lookup",
                "--mobile",
                "0701234567",
            ],
            None,
            78,
            &["default_country"],
        );
    }
    let out = ws
        .cmd()
        .env("ENGAGE_SYNC_DEFAULT_COUNTRY", "ZZ")
        .args(["lookup", "--mobile", "0701234567"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", stderr_of(&out));
    t.add("bad country");
    // Other flag values.
    refuse(
        w,
        t,
        "bad flag value",
        &["--log-format", "xml", "status"],
        None,
        64,
        &["--log-format"],
    );
    refuse(
        w,
        t,
        "bad flag value",
        &["init", "--mode", "half"],
        None,
        64,
        &["--mode"],
    );
    refuse(
        w,
        t,
        "bad flag value",
        &["init", "--mode", "keys"],
        None,
        78,
        &["full mode", "keys mode"],
    );
    refuse(
        w,
        t,
        "bad flag value",
        &["nonsense"],
        None,
        64,
        &["nonsense"],
    );
    refuse(
        w,
        t,
        "bad flag value",
        &["delta", "--keep-going=maybe"],
        None,
        64,
        &["--keep-going"],
    );
    // Contact values at the till.
    for (args, code, needle) in [
        (vec!["contact", "add", "--email", "notanemail"], 65, "email"),
        (vec!["contact", "add", "--mobile", "abc"], 65, "mobilePhone"),
        (
            vec!["contact", "add", "--email", "a@b.se", "--field", "noequals"],
            64,
            "NAME=VALUE",
        ),
        (
            vec!["contact", "add", "--email", "a@b.se", "--field", "=x"],
            64,
            "name is empty",
        ),
        (
            vec![
                "contact",
                "add",
                "--email",
                "a@b.se",
                "--contact-type",
                "Alien",
            ],
            65,
            "contactType",
        ),
        (
            vec!["contact", "add", "--first-name", "NoKeys"],
            65,
            "needs at least one of these keys",
        ),
        (
            vec!["contact", "add", "--email", "user1@example.com"],
            65,
            "already has a contact",
        ),
        (
            vec![
                "contact",
                "update",
                "--email",
                "nobody@example.com",
                "--first-name",
                "X",
            ],
            65,
            "no contact in the replica matches email n***@example.com",
        ),
        (
            vec![
                "contact",
                "update",
                "--contact-id",
                "nope",
                "--first-name",
                "X",
            ],
            64,
            "--contact-id",
        ),
        (
            vec!["contact", "update", "--first-name", "X"],
            64,
            "required",
        ),
    ] {
        refuse(w, t, "bad contact value", &args, None, code, &[needle]);
    }
    for stdin in [
        &b"[]x"[..],
        b"{\"email\": 5}",
        b"[{\"email\": \"a@b.se\"}, {\"email\": \"bad\"}]",
        b"\xFF\xFE{}",
    ] {
        refuse(
            w,
            t,
            "bad contact value",
            &["contact", "add", "--from", "-"],
            Some(stdin),
            65,
            &[],
        );
    }

    // --db paths.
    let not_db = ws.path().join("not-a-db.db");
    std::fs::write(&not_db, b"hello, this is not SQLite\n").expect("write");
    let not_db = not_db.to_string_lossy().into_owned();
    let a_file = ws.path().join("a-file");
    std::fs::write(&a_file, b"x").expect("write");
    let under_file = a_file.join("x.db").to_string_lossy().into_owned();
    let a_dir = ws.path().join("a-dir");
    std::fs::create_dir(&a_dir).expect("mkdir");
    let a_dir = a_dir.to_string_lossy().into_owned();
    let missing = ws
        .path()
        .join("missing")
        .join("x.db")
        .to_string_lossy()
        .into_owned();
    for (args, code, needle) in [
        (
            vec!["--db", &not_db, "lookup", "--email", "a@b.se"],
            74,
            "not-a-db.db",
        ),
        (vec!["--db", &not_db, "status"], 74, "not-a-db.db"),
        (vec!["--db", &not_db, "init"], 74, "not-a-db.db"),
        (vec!["--db", &not_db, "delta", "inbox"], 74, "not-a-db.db"),
        (vec!["--db", &a_dir, "init"], 73, "a-dir"),
        (vec!["--db", &a_dir, "status"], 74, "a-dir"),
        (vec!["--db", &under_file, "init"], 74, "a-file"),
        (
            vec!["--db", &under_file, "lookup", "--email", "a@b.se"],
            78,
            "no replica",
        ),
        (
            vec!["--db", &missing, "lookup", "--email", "a@b.se"],
            78,
            "no replica",
        ),
        (
            vec!["--db", "/proc/engage-sync-hostile/x.db", "init"],
            73,
            "/proc/engage-sync-hostile",
        ),
        (vec!["--db", "", "init"], 64, "--db"),
    ] {
        refuse(w, t, "bad --db path", &args, None, code, &[needle]);
        assert!(
            !Path::new(&not_db).with_extension("db-wal").exists()
                || std::fs::read(&not_db).expect("read").starts_with(b"hello")
        );
    }
    assert_eq!(
        std::fs::read(&not_db).expect("read"),
        b"hello, this is not SQLite\n",
        "a foreign file is never overwritten"
    );
    // Config files.
    let bad_toml = ws.path().join("bad.toml");
    std::fs::write(&bad_toml, b"[local\nkey_prefix = ").expect("write");
    let binary_toml = ws.path().join("binary.toml");
    std::fs::write(&binary_toml, noise(2048, 5)).expect("write");
    for cfg in [
        bad_toml.to_string_lossy().into_owned(),
        binary_toml.to_string_lossy().into_owned(),
        a_dir.clone(),
        "missing.toml".to_string(),
    ] {
        refuse(
            w,
            t,
            "bad config",
            &["--config", &cfg, "--db", &db, "status"],
            None,
            78,
            &["config"],
        );
    }

    // Inputs that are not regular files: a FIFO would block delta forever.
    #[cfg(unix)]
    {
        let fifo = ws.inbox().join("20260501100000_0_c.xml");
        let made = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let fifo = fifo.to_string_lossy().into_owned();
            refuse(
                w,
                t,
                "not a regular file",
                &["delta", &fifo],
                None,
                64,
                &["neither a regular file nor a folder"],
            );
            refuse(
                w,
                t,
                "not a regular file",
                &["full", "--from-xml", &fifo],
                None,
                64,
                &["neither a regular file nor a folder"],
            );
            std::fs::remove_file(&fifo).expect("rm fifo");
        }
        // In a folder, a link or FIFO named like an export is passed over with a warning.
        let odd = ws.path().join("odd-inbox");
        std::fs::create_dir_all(&odd).expect("odd inbox");
        let target = ws.path().join("elsewhere.xml");
        std::fs::write(&target, "<not read/>").expect("target");
        std::os::unix::fs::symlink(&target, odd.join("20260501100000_0_c.xml")).expect("link");
        let out = ws
            .cmd()
            .args(["delta", &odd.to_string_lossy()])
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
        let err = stderr_of(&out);
        assert!(
            err.contains("skipped") && err.contains("not a regular file"),
            "a link in the inbox is not reported: {err}"
        );
        t.add("not a regular file");
        refuse(
            w,
            t,
            "not a regular file",
            &["delta", "/dev/zero"],
            None,
            64,
            &["/dev/zero"],
        );
        refuse(
            w,
            t,
            "not a regular file",
            &["delta", "/dev/null"],
            None,
            64,
            &["/dev/null"],
        );
        let missing_file = ws
            .inbox()
            .join("20260501100000_9_c.xml")
            .to_string_lossy()
            .into_owned();
        refuse(
            w,
            t,
            "not a regular file",
            &["delta", &missing_file],
            None,
            74,
            &["20260501100000_9_c.xml"],
        );
    }

    // Unwritable folders. A bad file whose quarantine cannot be created stays in the inbox.
    let bad = ws.write_export("20260601100000_0_c.xml", "<contacts>");
    let quarantine = a_file.join("q").to_string_lossy().into_owned();
    let bad_s = bad.to_string_lossy().into_owned();
    refuse(
        w,
        t,
        "unwritable folder",
        &["delta", "--quarantine", &quarantine, &bad_s],
        None,
        74,
        &["could not be moved to quarantine", "a-file"],
    );
    assert!(bad.exists(), "the file stays where it was");
    let good = ws.write_export(
        "20260601100000_1_c.xml",
        &export(&[member(40, "z")], &[], &[]),
    );
    let good_s = good.to_string_lossy().into_owned();
    let archive = a_file.join("archive").to_string_lossy().into_owned();
    let out = run_with(w, &["delta", "--archive", &archive, &good_s], None);
    // The import itself is fine; only moving it to the archive failed: the file is applied
    // (in the ledger), stays in the inbox (the next run skips it as already applied) and the
    // run warns.
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("applied but not archived"),
        "{}",
        stderr_of(&out)
    );
    assert!(good.exists());
    assert_eq!(
        ws.count("SELECT count(*) FROM applied_file WHERE name = '20260601100000_1_c.xml'"),
        1
    );
    t.add("unwritable folder");
    match read_only_dir(ws.path()) {
        Some(dir) => {
            let db_in = dir.join("x.db").to_string_lossy().into_owned();
            refuse(
                w,
                t,
                "unwritable folder",
                &["--db", &db_in, "init"],
                None,
                77,
                &["read-only"],
            );
            let q = dir.join("q").to_string_lossy().into_owned();
            refuse(
                w,
                t,
                "unwritable folder",
                &["delta", "--quarantine", &q, &bad_s],
                None,
                77,
                &["quarantine"],
            );
        }
        None => println!("(running as root: the permission-denied cases were skipped)"),
    }

    let total = t.print("command lines");
    assert!(total >= 80, "{total}");
}
