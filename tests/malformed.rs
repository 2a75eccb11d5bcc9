//! Malformed export files change nothing, are quarantined, and exit 65 with file:line:column.

use crate::common;

use common::*;

/// (what, file name, content) for every kind of malformed file the spec names.
fn cases() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let good_member = member(10, "x");
    vec![
        (
            "truncated",
            "20260201100000_0_c.xml",
            export(&[member(10, "x"), member(11, "x")], &[], &[]).as_bytes()[..300].to_vec(),
        ),
        (
            "not well-formed",
            "20260201100000_0_c.xml",
            format!("<contacts xmlns=\"{NS}\"><new>{good_member}</updated></contacts>").into_bytes(),
        ),
        (
            "wrong root",
            "20260201100000_0_c.xml",
            format!("<members xmlns=\"{NS}\"><new>{good_member}</new></members>").into_bytes(),
        ),
        (
            "wrong namespace",
            "20260201100000_0_c.xml",
            format!("<contacts xmlns=\"http://eClub.Schemas.ImportContact\"><new>{good_member}</new></contacts>")
                .into_bytes(),
        ),
        ("invalid UTF-8", "20260201100000_0_c.xml", {
            let mut b = format!("<contacts xmlns=\"{NS}\">\n<new>{good_member}\n<member><contactId>{}</contactId><firstName>", guid(11)).into_bytes();
            b.extend_from_slice(&[0xC3, 0x28, 0xFF]);
            b.extend_from_slice(b"</firstName></member></new></contacts>");
            b
        }),
        (
            "DOCTYPE with entities",
            "20260201100000_0_c.xml",
            format!(
                "<?xml version=\"1.0\"?>\n<!DOCTYPE contacts [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;\">]>\n\
                 <contacts xmlns=\"{NS}\"><new>{good_member}</new></contacts>"
            )
            .into_bytes(),
        ),
        ("empty file", "20260201100000_0_c.xml", Vec::new()),
        (
            "name not matching the pattern",
            "customers-latest.xml",
            export(&[member(10, "x")], &[], &[]).into_bytes(),
        ),
    ]
}

#[test]
fn each_kind_of_malformed_file_changes_nothing_and_is_quarantined() {
    for (what, name, content) in cases() {
        let ws = Workspace::new();
        let good = ws.write_export(
            "20260101100000_0_c.xml",
            &export(&[member(1, "a")], &[], &[]),
        );
        let out = ws.cmd().arg("delta").arg(&good).output().expect("runs");
        assert!(out.status.success(), "{what}: setup");
        let before = ws.contacts();
        let ledger_before = ws.count("SELECT count(*) FROM applied_file");

        let bad = ws.write_export_bytes(name, &content);
        let out = ws.cmd().arg("delta").arg(&bad).output().expect("runs");
        let err = stderr_of(&out);
        assert_eq!(
            out.status.code(),
            Some(65),
            "{what}: exit code; stderr: {err}"
        );
        assert_eq!(ws.contacts(), before, "{what}: replica unchanged");
        assert_eq!(
            ws.count("SELECT count(*) FROM applied_file"),
            ledger_before,
            "{what}"
        );
        assert!(!bad.exists(), "{what}: moved out of the inbox");
        assert_eq!(
            ws.quarantined(),
            vec![name.to_string()],
            "{what}: quarantined"
        );
        assert!(err.contains(name), "{what}: error names the file: {err}");
        assert!(
            err.contains("quarantine"),
            "{what}: error says where it went: {err}"
        );
        if name.starts_with("2026") {
            let located = err.contains(&format!("{name}:"))
                && err.split(&format!("{name}:")).nth(1).is_some_and(|rest| {
                    rest.split(':')
                        .take(2)
                        .all(|n| n.trim().parse::<u64>().is_ok())
                });
            assert!(located, "{what}: error has file:line:column: {err}");
        }
        assert_eq!(
            ws.count("SELECT count(*) FROM quarantined_file"),
            1,
            "{what}: recorded for status"
        );
    }
}

#[test]
fn line_and_column_point_at_the_problem() {
    let ws = Workspace::new();
    let content = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<contacts xmlns=\"{NS}\">\n<new>\n  <member>\n    <firstName>Åsa</firstName>\n  </member>\n</new>\n</contacts>\n"
    );
    let bad = ws.write_export("20260201100000_0_c.xml", &content);
    let out = ws.cmd().arg("delta").arg(&bad).output().expect("runs");
    let err = stderr_of(&out);
    assert!(err.contains("20260201100000_0_c.xml:4:3:"), "{err}");
    assert!(err.contains("no contactId"), "{err}");
}

#[test]
fn a_contact_id_in_the_name_of_a_missing_key_is_not_personal_data_leaked() {
    // Errors quote structure, never field values.
    let ws = Workspace::new();
    let content = format!(
        "<contacts xmlns=\"{NS}\"><new><member contactId=\"not-a-guid\"><email>secret.person@example.com</email></member></new></contacts>"
    );
    let bad = ws.write_export("20260201100000_0_c.xml", &content);
    let out = ws.cmd().arg("delta").arg(&bad).output().expect("runs");
    assert_eq!(out.status.code(), Some(65));
    assert!(
        !stderr_of(&out).contains("secret.person"),
        "{}",
        stderr_of(&out)
    );
}
