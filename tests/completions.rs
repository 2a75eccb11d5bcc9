//! The shell completions in `completions/` must match the clap definitions: regenerate them
//! with `cargo run --example gen_completions` after changing the command line.

#[path = "support/completions.rs"]
mod render;

use std::path::Path;

#[test]
fn completions_are_up_to_date() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let scripts = render::render_all();
    let stale: Vec<&str> = scripts
        .iter()
        .filter(|(name, script)| std::fs::read(dir.join(name)).ok().as_ref() != Some(script))
        .map(|(name, _)| name.as_str())
        .collect();
    let mut extra: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    extra.retain(|n| !scripts.iter().any(|(s, _)| s == n));
    assert!(
        stale.is_empty() && extra.is_empty(),
        "completions/ is stale (changed or missing: {stale:?}; no longer generated: {extra:?}); \
         run `cargo run --example gen_completions` and commit completions/"
    );
}

/// The scripts complete every command and its flags (fish names flags without `--`).
#[test]
fn completions_name_the_commands_and_their_flags() {
    for (name, script) in render::render_all() {
        let text = String::from_utf8(script).expect("UTF-8");
        for word in [
            "push-local",
            "delta",
            "older-than",
            "max-age",
            "max-pending-age",
        ] {
            assert!(text.contains(word), "{name} lacks {word}");
        }
    }
}

/// bash parses the bash script (where bash is installed).
#[test]
fn bash_completion_is_valid_bash() {
    let bash = Path::new("/bin/bash");
    if !bash.exists() {
        println!("note: /bin/bash not found; bash completion not checked");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions/engage-sync.bash");
    let out = std::process::Command::new(bash)
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p engage-sync",
            script.display()
        ))
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
