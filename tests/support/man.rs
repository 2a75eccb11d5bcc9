//! Renders the man pages from the clap definitions: one for `engage-sync` and one per
//! command (`engage-sync-delta.1`, …). Shared by `examples/gen_man.rs` (which writes `man/`)
//! and `tests/man_pages.rs` (which fails when `man/` is stale).

use clap::CommandFactory;

/// (file name, roff bytes) for every page.
pub fn render_all() -> Vec<(String, Vec<u8>)> {
    let mut cmd = engage_sync::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(&cmd, &mut pages);
    pages.sort();
    pages
}

fn walk(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, pages);
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let mut roff = Vec::new();
    man.render(&mut roff)
        .expect("rendering to memory cannot fail");
    pages.push((man.get_filename(), roff));
}
