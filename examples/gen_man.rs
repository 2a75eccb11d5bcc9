//! Regenerates the man pages in `man/` from the clap definitions:
//! `cargo run --example gen_man`. The test `man_pages` fails when they are stale.

#[path = "../tests/support/man.rs"]
mod man;

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    std::fs::create_dir_all(&dir)?;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1") {
            std::fs::remove_file(path)?;
        }
    }
    for (name, roff) in man::render_all() {
        std::fs::write(dir.join(&name), roff)?;
        println!("wrote man/{name}");
    }
    Ok(())
}
