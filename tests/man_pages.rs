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
