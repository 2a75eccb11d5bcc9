//! The man pages in `man/` must match the clap definitions: regenerate them with
//! `cargo run --example gen_man` after changing the command line.

#[path = "support/man.rs"]
mod man;

#[test]
fn man_pages_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = man::render_all();
    let mut stale = Vec::new();
    for (name, roff) in &pages {
        match std::fs::read(dir.join(name)) {
            Ok(on_disk) if &on_disk == roff => {}
            _ => stale.push(name.clone()),
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".1"))
                .collect()
        })
        .unwrap_or_default();
    on_disk.retain(|n| !pages.iter().any(|(p, _)| p == n));
    assert!(
        stale.is_empty() && on_disk.is_empty(),
        "man/ is stale (changed or missing: {stale:?}; no longer generated: {on_disk:?}); \
         run `cargo run --example gen_man` and commit man/"
    );
    assert!(pages.iter().any(|(n, _)| n == "engage-sync-delta.1"));
}

/// The sections a man page is expected to have (issue 19), on every page.
#[test]
fn every_page_has_exit_status_environment_files_and_examples() {
    for (name, roff) in man::render_all() {
        let text = String::from_utf8(roff).expect("UTF-8");
        for section in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH FILES",
            ".SH EXAMPLES",
        ] {
            assert!(text.contains(section), "{name} lacks {section}");
        }
        assert!(!text.contains(".SH EXTRA"), "{name}");
        for needle in [
            "ENGAGE_API_KEY",
            "ENGAGE_SYNC_CONFIG",
            "/etc/engage\\-sync/engage\\-sync.toml",
        ] {
            assert!(text.contains(needle), "{name} lacks {needle}");
        }
    }
}

/// The words of an example line (double quotes group words), up to a redirection.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    for (i, part) in line.split('"').enumerate() {
        if i % 2 == 1 {
            words.push(part.to_string());
        } else {
            words.extend(part.split_whitespace().map(str::to_string));
        }
    }
    let end = words.iter().position(|w| w == "<").unwrap_or(words.len());
    words.truncate(end);
    words
}

/// Every example parses: `ARGS --help` exits 0 only when ARGS are valid flags and values.
#[test]
fn every_man_page_example_is_a_valid_command_line() {
    let mut checked = 0;
    for (name, _) in man::render_all() {
        for (line, _) in man::examples_for(name.trim_end_matches(".1")) {
            let args = words(line);
            assert_eq!(args[0], "engage-sync", "{line}");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_engage-sync"))
                .args(&args[1..])
                .arg("--help")
                .env_remove("ENGAGE_SYNC_CONFIG")
                .output()
                .expect("runs");
            assert!(
                out.status.success(),
                "{name}: {line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "{checked}");
}
