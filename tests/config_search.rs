//! The config file search when neither `--config` nor `ENGAGE_SYNC_CONFIG` names one:
//! `./engage-sync.toml`, then `$XDG_CONFIG_HOME/engage-sync/engage-sync.toml` (or
//! `~/.config/engage-sync/…`), then `/etc/engage-sync/engage-sync.toml`; the first found wins.
//! (The /etc step cannot be staged without root; `config::search`'s unit tests cover the order.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temp folder with a working directory `cwd`, an XDG folder `xdg` and a home `home`.
struct Dirs {
    dir: tempfile::TempDir,
}

impl Dirs {
    fn new() -> Dirs {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["cwd", "xdg", "home"] {
            std::fs::create_dir(dir.path().join(d)).expect("folder");
        }
        Dirs { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a config file at `rel` whose database is `db` (relative to the file's folder).
    fn config(&self, rel: &str, db: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
        std::fs::write(&path, format!("db = \"{db}\"\n")).expect("config");
        path
    }

    /// `engage-sync --json init` in `cwd`, with no --db, and the given XDG_CONFIG_HOME and HOME.
    fn init(&self, xdg: Option<&Path>, home: &Path) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_engage-sync"));
        cmd.current_dir(self.path("cwd"))
            .env_remove("ENGAGE_SYNC_DB")
            .env_remove("ENGAGE_SYNC_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", home)
            .args(["--json", "init"]);
        if let Some(xdg) = xdg {
            cmd.env("XDG_CONFIG_HOME", xdg);
        }
        cmd.output().expect("runs")
    }
}

/// The database `init` used, from its JSON report.
fn db_of(out: &Output) -> PathBuf {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    PathBuf::from(doc["db"].as_str().expect("db"))
}

#[test]
fn the_xdg_config_folder_is_used_when_the_current_directory_has_none() {
    let d = Dirs::new();
    d.config("xdg/engage-sync/engage-sync.toml", "xdg.db");
    d.config("home/.config/engage-sync/engage-sync.toml", "home.db");
    let db = db_of(&d.init(Some(&d.path("xdg")), &d.path("home")));
    assert_eq!(db, d.path("xdg/engage-sync/xdg.db"));
    assert!(
        db.exists(),
        "relative paths are relative to the file's folder"
    );
}

#[test]
fn home_dot_config_is_used_when_xdg_config_home_is_unset() {
    let d = Dirs::new();
    d.config("home/.config/engage-sync/engage-sync.toml", "home.db");
    let db = db_of(&d.init(None, &d.path("home")));
    assert_eq!(db, d.path("home/.config/engage-sync/home.db"));
}

#[test]
fn the_current_directory_wins_over_the_xdg_folder() {
    let d = Dirs::new();
    d.config("cwd/engage-sync.toml", "cwd.db");
    d.config("xdg/engage-sync/engage-sync.toml", "xdg.db");
    let db = db_of(&d.init(Some(&d.path("xdg")), &d.path("home")));
    assert_eq!(
        db,
        Path::new("./cwd.db"),
        "relative to the working directory"
    );
    assert!(d.path("cwd/cwd.db").exists());
    assert!(!d.path("xdg/engage-sync/xdg.db").exists());
}

#[test]
fn config_flag_and_environment_win_over_the_search() {
    let d = Dirs::new();
    d.config("cwd/engage-sync.toml", "cwd.db");
    let named = d.config("named/engage-sync.toml", "named.db");
    let out = Command::new(env!("CARGO_BIN_EXE_engage-sync"))
        .current_dir(d.path("cwd"))
        .env_remove("ENGAGE_SYNC_DB")
        .env("ENGAGE_SYNC_CONFIG", &named)
        .args(["--json", "init"])
        .output()
        .expect("runs");
    assert_eq!(db_of(&out), d.path("named/named.db"));
}

#[test]
fn an_invalid_found_file_is_a_config_error_naming_it() {
    let d = Dirs::new();
    let path = d.path("xdg/engage-sync/engage-sync.toml");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("folders");
    std::fs::write(&path, "no_such_key = 1\n").expect("config");
    let out = d.init(Some(&d.path("xdg")), &d.path("home"));
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
}
