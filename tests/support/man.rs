//! Renders the man pages from the clap definitions: one for `engage-sync` and one per
//! command (`engage-sync-delta.1`, …). Shared by `examples/gen_man.rs` (which writes `man/`)
//! and `tests/man_pages.rs` (which fails when `man/` is stale).
//!
//! clap_mangen renders NAME, SYNOPSIS, DESCRIPTION, the options, the subcommands and the
//! `after_help` text (the exit codes, as EXIT STATUS here); ENVIRONMENT, FILES and EXAMPLES
//! are added from this file, before VERSION.

use clap::CommandFactory;
use clap_mangen::roff::{bold, italic, roman, Roff};

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
    let name = man.get_filename();
    let page = with_sections(roff, name.trim_end_matches(".1"));
    pages.push((name, page));
}

/// The page with EXIT STATUS in place of EXTRA (the exit codes), and ENVIRONMENT, FILES and EXAMPLES inserted
/// before VERSION (or at the end).
fn with_sections(page: Vec<u8>, page_name: &str) -> Vec<u8> {
    let mut text = String::from_utf8(page).expect("clap_mangen writes UTF-8");
    // clap's after_help is the exit-code table (EXTRA); pages of commands without it (contact,
    // receipt) get the same table, so every page has EXIT STATUS, rendered below.
    if let Some(start) = text.find(".SH EXTRA\n") {
        let end = text[start + 1..]
            .find("\n.SH ")
            .map_or(text.len(), |i| start + i + 2);
        text.replace_range(start..end, "");
    }
    let mut roff = Roff::new();
    exit_status(&mut roff);
    environment(&mut roff);
    files(&mut roff);
    examples(&mut roff, page_name);
    // The page already starts with roff's apostrophe preamble; do not repeat it.
    let preamble = Roff::new().render();
    let rendered = roff.render();
    let extra = rendered.strip_prefix(&preamble).unwrap_or(&rendered);
    let at = text.find(".SH VERSION").unwrap_or(text.len());
    text.insert_str(at, extra);
    text.into_bytes()
}

/// One `.TP` entry: a bold term and its text.
fn entry(roff: &mut Roff, term: &str, text: &str) {
    roff.control("TP", []);
    roff.text([bold(term)]);
    roff.text([roman(text)]);
}

/// The exit-code table of `--help`, preformatted (no filling) as there.
fn exit_status(roff: &mut Roff) {
    roff.control("SH", ["EXIT STATUS"]);
    roff.control("nf", []);
    for line in engage_sync::cli::EXIT_CODES_HELP.lines() {
        roff.text([roman(line)]);
    }
    roff.control("fi", []);
}

fn environment(roff: &mut Roff) {
    roff.control("SH", ["ENVIRONMENT"]);
    // The flags' variables, from the clap definitions (each overrides the config file).
    // Global flags first, then the commands' own (named with their commands), each once.
    let cmd = engage_sync::cli::Cli::command();
    let mut seen = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut order = Vec::new();
    let subs = cmd.get_subcommands().map(|s| (Some(s.get_name()), s));
    for (sub, c) in std::iter::once((None, &cmd)).chain(subs) {
        for arg in c.get_arguments() {
            let (Some(env), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let key = (env.to_string_lossy().into_owned(), long.to_string());
            let users = seen.entry(key.0.clone()).or_default();
            if users.is_empty() {
                order.push(key);
            }
            users.extend(sub.map(str::to_string));
        }
    }
    for (env, long) in order {
        let text = match seen[&env].as_slice() {
            [] => format!("The same as --{long} (which wins over it)."),
            subs => format!(
                "The same as --{long} of {} (which wins over it).",
                subs.join(", ")
            ),
        };
        entry(roff, &env, &text);
    }
    // Every fixed-name variable has a flag (clap reads it), so it is listed above; these are
    // the standard ones the config file search reads.
    let others = [(
        "XDG_CONFIG_HOME, HOME",
        "Where the config file is searched (see FILES).",
    )];
    for (name, text) in others {
        entry(roff, name, text);
    }
}

fn files(roff: &mut Roff) {
    roff.control("SH", ["FILES"]);
    let entries = [
        (
            "./engage-sync.toml",
            "The config file when neither --config nor ENGAGE_SYNC_CONFIG names one, if it \
             exists; else the next two.",
        ),
        (
            "$XDG_CONFIG_HOME/engage-sync/engage-sync.toml",
            "Else this (~/.config/engage-sync/engage-sync.toml without XDG_CONFIG_HOME).",
        ),
        (
            engage_sync::config::search::SYSTEM_CONFIG_FILE,
            "Else this; without any of them, the defaults apply.",
        ),
        (
            "DB",
            "The replica (--db, db in the config file; default engage-sync.db). Mode 0600.",
        ),
        (
            "DB.till",
            "The till store: what the tills registered and bought that Engage does not have \
             yet. Back up, move or delete it together with DB.",
        ),
        (
            "DB.lock, DB.push.lock",
            "The writers' lock and push-local's lock (released by the kernel when a process \
             dies).",
        ),
        (
            "inbox, archive, quarantine",
            "Folders named in the config file: export files to import, applied ones, refused \
             ones (mode 0700).",
        ),
    ];
    for (name, text) in entries {
        entry(roff, name, text);
    }
}

/// Example command lines per page (by page name), each with what it does.
pub fn examples_for(page_name: &str) -> &'static [(&'static str, &'static str)] {
    match page_name {
        "engage-sync" => &[
            (
                "engage-sync init --mode keys",
                "Create the replica, keys only.",
            ),
            (
                "engage-sync -q delta --deadline 90s",
                "From cron: import new export files.",
            ),
            (
                "engage-sync lookup --mobile \"070-123 45 67\"",
                "Find a member at the till.",
            ),
            (
                "engage-sync status --check --max-age 2h",
                "Monitoring: exit 75 when stale.",
            ),
        ],
        "engage-sync-init" => &[
            (
                "engage-sync init",
                "Create the replica (mode full), or migrate it.",
            ),
            (
                "engage-sync init --mode keys --dry-run",
                "Say what init would do.",
            ),
        ],
        "engage-sync-delta" => &[
            (
                "engage-sync delta",
                "Import the files in the inbox (or fetch them by SFTP).",
            ),
            (
                "engage-sync delta --dry-run exports/",
                "Report per contact, write nothing.",
            ),
            (
                "engage-sync -q delta --deadline 90s",
                "From cron: silent when all is well.",
            ),
        ],
        "engage-sync-changes" => &[
            (
                "engage-sync changes",
                "Pull what changed since the stored cursor.",
            ),
            (
                "engage-sync changes --since 2026-11-01",
                "Pull again from a date.",
            ),
        ],
        "engage-sync-full" => &[
            (
                "engage-sync full",
                "Build a complete replica from Engage's API.",
            ),
            (
                "engage-sync full --from-xml exports/",
                "Build it from a full export.",
            ),
        ],
        "engage-sync-lookup" => &[
            (
                "engage-sync lookup --mobile \"070-123 45 67\"",
                "Find a member by phone.",
            ),
            (
                "engage-sync --json lookup --email anna@example.com",
                "The same as JSON.",
            ),
        ],
        "engage-sync-status" => &[
            (
                "engage-sync status",
                "Freshness, counts, runs, failures, quarantine.",
            ),
            (
                "engage-sync status --check --max-age 2h --max-pending-age 1h",
                "One line; exit 75 when stale or pushes wait too long.",
            ),
        ],
        "engage-sync-purge" => &[
            (
                "engage-sync purge --older-than 30d --wait",
                "Nightly GDPR purge.",
            ),
            (
                "engage-sync purge --older-than 30d --dry-run",
                "List what would go.",
            ),
        ],
        "engage-sync-publish" => &[
            (
                "engage-sync -q publish --to /srv/engage-hub/out",
                "On the hub, after changes: publish what changed for the stores.",
            ),
            (
                "engage-sync publish --snapshot --to /srv/engage-hub/snapshot",
                "The whole replica, for a new store's full --from-xml.",
            ),
        ],
        "engage-sync-contact" | "engage-sync-contact-add" => &[
            (
                "engage-sync contact add --email anna@example.com --mobile \"070-123 45 67\"",
                "Register a member at the till.",
            ),
            (
                "engage-sync contact add --from contacts.jsonl",
                "Several, all or none.",
            ),
        ],
        "engage-sync-contact-update" => &[(
            "engage-sync contact update --local-key L0600-000001 --field city=Umeå",
            "Change a field.",
        )],
        "engage-sync-receipt" | "engage-sync-receipt-add" => &[
            (
                "engage-sync receipt add fixtures/receipt.json",
                "Buffer a purchase.",
            ),
            (
                "engage-sync receipt add - < receipts.jsonl",
                "Several, from stdin.",
            ),
        ],
        "engage-sync-push-local" => &[
            (
                "engage-sync push-local --deadline 4m",
                "Deliver what the tills buffered.",
            ),
            (
                "engage-sync push-local --dry-run",
                "Show what would be sent.",
            ),
        ],
        _ => &[],
    }
}

fn examples(roff: &mut Roff, page_name: &str) {
    let examples = examples_for(page_name);
    if examples.is_empty() {
        return;
    }
    roff.control("SH", ["EXAMPLES"]);
    for (line, what) in examples {
        roff.control("TP", []);
        roff.text([italic(*line)]);
        roff.text([roman(*what)]);
    }
}
