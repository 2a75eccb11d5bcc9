//! Regenerates the shell completions in `completions/` from the clap definitions:
//! `cargo run --example gen_completions`. The test `completions` fails when they are stale.

#[path = "../tests/support/completions.rs"]
mod completions;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    std::fs::create_dir_all(&dir)?;
    for (name, script) in completions::render_all() {
        std::fs::write(dir.join(&name), script)?;
        println!("wrote completions/{name}");
    }
    Ok(())
}
