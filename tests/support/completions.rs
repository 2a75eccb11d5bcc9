//! Renders the shell completions (bash, zsh, fish) from the clap definitions. Shared by
//! `examples/gen_completions.rs` (which writes `completions/`) and `tests/completions.rs`
//! (which fails when `completions/` is stale).

use clap::CommandFactory;
use clap_complete::Shell;

/// The binary name the completions complete.
const BIN: &str = "engage-sync";

/// (file name, script bytes) for every shell, named as each shell looks them up:
/// `engage-sync.bash`, `_engage-sync` (zsh), `engage-sync.fish`.
pub fn render_all() -> Vec<(String, Vec<u8>)> {
    [Shell::Bash, Shell::Zsh, Shell::Fish]
        .into_iter()
        .map(|shell| {
            let mut cmd = engage_sync::cli::Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, BIN, &mut script);
            let name = match shell {
                Shell::Zsh => format!("_{BIN}"),
                other => format!("{BIN}.{other}"),
            };
            (name, script)
        })
        .collect()
}
