//! No stray replica: a writing command run where there is no replica (the wrong working
//! directory, the wrong config) refuses with exit 78 and creates nothing, unless it is `init`,
//! `full` (the initial download), or `delta`/`changes`/`purge` asked with `--create-replica`,
//! `ENGAGE_SYNC_CREATE_REPLICA` or `create_replica = true`. Run the way an operator does: the
//! real binary in a folder of its own, with no --db (the default `./engage-sync.db`).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An empty working folder plus an empty XDG config folder and home outside it.
struct Folder {
    dir: tempfile::TempDir,
}

impl Folder {
    fn new() -> Folder {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["cwd", "xdg", "home"] {
            std::fs::create_dir(dir.path().join(d)).expect("folder");
        }
        Folder { dir }
    }

    fn cwd(&self) -> PathBuf {
        self.dir.path().join("cwd")
    }

    /// The binary in `cwd`, with no setting from the environment (and none asking to create).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engage-sync"));
        cmd.current_dir(self.cwd())
            .env_remove("ENGAGE_SYNC_DB")
            .env_remove("ENGAGE_SYNC_CONFIG")
            .env_remove("ENGAGE_SYNC_CREATE_REPLICA")
            .env_remove("ENGAGE_BASE_URL")
            .env_remove("ENGAGE_API_KEY")
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"))
            .env("HOME", self.dir.path().join("home"))
            .args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("runs")
    }

    /// Every path under the temp folder (files and folders), relative to it.
    fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        out.push(
            path.strip_prefix(root)
                .expect("under root")
                .display()
                .to_string(),
        );
        if path.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// Runs `args` in `f` and checks the refusal: exit 78, one error naming the command, the path
/// looked for and where it came from, the config search, what to do, and that the folder
/// tree is exactly as before.
fn assert_refused(f: &Folder, args: &[&str], command: &str, remedy: &str) -> String {
    let before = f.tree();
    let out = f.run(args);
    let err = common::stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{args:?}: {err}");
    let db = f.cwd().join("engage-sync.db");
    for needle in [
        format!("error: {command}: no replica at {}", db.display()),
        remedy.to_string(),
        "engage-sync init".to_string(),
        "Nothing was created".to_string(),
    ] {
        assert!(
            err.contains(&needle),
            "{args:?}: {needle:?} missing from: {err}"
        );
    }
    assert_eq!(f.tree(), before, "{args:?} left files behind: {err}");
    err
}

#[test]
fn sync_jobs_refuse_to_create_a_replica_unless_asked_and_leave_no_file() {
    let f = Folder::new();
    let asked = "--create-replica (ENGAGE_SYNC_CREATE_REPLICA=1, or `create_replica = true`";
    for (args, command) in [
        (&["delta"][..], "delta"),
        (&["delta", "--min-age", "0s", "some/exports"][..], "delta"),
        (&["delta", "--dry-run"][..], "delta"),
        (&["changes", "--since", "2026-11-01"][..], "changes"),
        (&["purge", "--older-than", "30d"][..], "purge"),
        (&["delta", "--create-replica=false"][..], "delta"),
    ] {
        let err = assert_refused(&f, args, command, asked);
        let xdg = f.dir.path().join("xdg/engage-sync/engage-sync.toml");
        for needle in [
            "the default, engage-sync.db in the current folder".to_string(),
            format!(
                "config file: none (looked for ./engage-sync.toml, {}, \
                 /etc/engage-sync/engage-sync.toml, in that order)",
                xdg.display()
            ),
        ] {
            assert!(
                err.contains(&needle),
                "{args:?}: {needle:?} missing from: {err}"
            );
        }
    }
}

#[test]
fn till_commands_and_push_local_never_create_a_replica() {
    let f = Folder::new();
    std::fs::write(f.cwd().join("receipt.json"), "{}").expect("receipt");
    let never = "This command never creates one";
    for (args, command) in [
        (
            &["contact", "add", "--email", "a@example.com"][..],
            "contact add",
        ),
        (
            &[
                "contact",
                "update",
                "--email",
                "a@example.com",
                "--first-name",
                "A",
            ][..],
            "contact update",
        ),
        (&["receipt", "add", "receipt.json"][..], "receipt add"),
        (&["push-local"][..], "push-local"),
        (&["push-local", "--dry-run"][..], "push-local"),
        (&["publish", "--to", "published"][..], "publish"),
        (
            &["publish", "--to", "published", "--snapshot"][..],
            "publish",
        ),
    ] {
        assert_refused(&f, args, command, never);
        // Being asked changes nothing for them.
        let out = f
            .cmd(args)
            .env("ENGAGE_SYNC_CREATE_REPLICA", "true")
            .output()
            .expect("runs");
        assert_eq!(out.status.code(), Some(78), "{args:?} with create_replica");
        assert!(!f.cwd().join("engage-sync.db").exists());
    }
}

#[test]
fn the_refusal_names_the_config_file_that_set_the_path() {
    let f = Folder::new();
    let conf_dir = f.dir.path().join("xdg/engage-sync");
    std::fs::create_dir_all(&conf_dir).expect("conf dir");
    std::fs::write(conf_dir.join("engage-sync.toml"), "db = \"data/r.db\"\n").expect("config");
    let before = f.tree();
    let out = f.run(&["contact", "add", "--email", "a@example.com"]);
    let err = common::stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    let conf = conf_dir.join("engage-sync.toml");
    for needle in [
        format!("no replica at {}", conf_dir.join("data/r.db").display()),
        format!("(`db` in {})", conf.display()),
        format!(
            "config file: {} (found by the search: ./ first, then the XDG config folder",
            conf.display()
        ),
    ] {
        assert!(err.contains(&needle), "{needle:?} missing from: {err}");
    }
    assert_eq!(f.tree(), before);
}

#[test]
fn asked_by_flag_env_or_config_delta_creates_the_replica() {
    let exports = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    let exports = exports.to_str().expect("utf-8 path");
    let delta = ["delta", "--min-age", "0s", exports];
    let flag = Folder::new();
    let out = flag
        .cmd(&delta)
        .arg("--create-replica")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    assert!(flag.cwd().join("engage-sync.db").exists());
    assert!(flag.cwd().join("engage-sync.db.till").exists());

    let env = Folder::new();
    let out = env
        .cmd(&delta)
        .env("ENGAGE_SYNC_CREATE_REPLICA", "1")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    assert!(env.cwd().join("engage-sync.db").exists());

    let file = Folder::new();
    std::fs::write(
        file.cwd().join("engage-sync.toml"),
        "create_replica = true\n",
    )
    .expect("config");
    // The flag wins over the file: refused.
    let refused = file
        .cmd(&delta)
        .arg("--create-replica=false")
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(78));
    assert!(common::stderr_of(&refused).contains("engage-sync.toml (found by the search"));
    let out = file.run(&delta);
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    let db = file.cwd().join("engage-sync.db");
    let n: i64 = common::pos_connection(&db)
        .query_row("SELECT count(*) FROM contacts", [], |r| r.get(0))
        .expect("count");
    assert!(n > 0, "the fixtures were imported into the new replica");
}

#[test]
fn a_full_from_the_api_without_engage_settings_leaves_nothing_behind() {
    let f = Folder::new();
    let before = f.tree();
    let out = f.run(&["full"]);
    let err = common::stderr_of(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("no Engage base URL"), "{err}");
    assert_eq!(f.tree(), before, "full left files behind: {err}");
}

#[test]
fn init_and_the_initial_full_create_the_replica_without_being_asked() {
    let f = Folder::new();
    let out = f.run(&["init"]);
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    assert!(f.cwd().join("engage-sync.db").exists());
    // Once it exists, every writing command works on it.
    let out = f.run(&["purge", "--older-than", "30d"]);
    assert!(out.status.success(), "{}", common::stderr_of(&out));

    let g = Folder::new();
    let exports = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/exports");
    let out = g
        .cmd(&["full", "--from-xml"])
        .arg(&exports)
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", common::stderr_of(&out));
    assert!(g.cwd().join("engage-sync.db").exists());
}
