//! The examples an operator copies: `examples/systemd/` passes `systemd-analyze verify` with no
//! warning about our units, every unit a timer or `OnFailure=` names exists, and every command
//! line in the units and in `examples/crontab` is one the binary accepts.

use std::path::{Path, PathBuf};
use std::process::Command;

const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";
/// How the units start the binary: a plain name, which systemd (239 and later) looks up in
/// /usr/local/bin, then /usr/bin, so the same units serve `cargo install --root /usr/local`
/// and the .deb.
const EXEC_START: &str = "ExecStart=engage-sync ";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// The unit files (`*.service`, `*.timer`) of examples/systemd, by file name.
fn units() -> Vec<(String, String)> {
    let mut units: Vec<(String, String)> = std::fs::read_dir(examples().join("systemd"))
        .expect("examples/systemd")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("service" | "timer")
            )
        })
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("unit"))
        })
        .collect();
    units.sort();
    units
}

/// The values of `key=` lines in a unit.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        println!("note: {SYSTEMD_ANALYZE} not found; systemd units not verified");
        return;
    }
    // verify checks that the binary is executable where systemd would find it: point the units
    // at the one cargo built.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Vec::new();
    for (name, text) in units() {
        let built = format!("ExecStart={} ", env!("CARGO_BIN_EXE_engage-sync"));
        let text = text.replace(EXEC_START, &built);
        std::fs::write(dir.path().join(&name), text).expect("copy");
        files.push(name);
    }
    let out = Command::new(SYSTEMD_ANALYZE)
        .arg("verify")
        .args(&files)
        .current_dir(dir.path())
        .output()
        .expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are warnings with exit 0: none may name our units.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("engage-sync"))
        .collect();
    assert!(out.status.success() && ours.is_empty(), "{stderr}");
}

#[test]
fn every_timer_and_on_failure_names_a_unit_that_exists() {
    let units = units();
    let exists = |name: &str| units.iter().any(|(n, _)| n == name);
    let mut timers = 0;
    for (name, text) in &units {
        if let Some(stem) = name.strip_suffix(".timer") {
            timers += 1;
            assert!(exists(&format!("{stem}.service")), "{name} has no service");
            assert_eq!(
                values(text, "OnCalendar").len(),
                1,
                "{name}: one OnCalendar="
            );
        }
        for target in values(text, "OnFailure") {
            let template = target.split('@').next().expect("name").to_string() + "@.service";
            assert!(
                exists(&template),
                "{name}: OnFailure={target}: no {template}"
            );
        }
    }
    assert_eq!(timers, 5, "delta, changes, push-local, purge, status");
    let status = &units
        .iter()
        .find(|(n, _)| n == "engage-sync-status.service")
        .expect("status unit")
        .1;
    assert!(values(status, "ExecStart")[0].contains("status --check"));
    assert!(!values(status, "OnFailure").is_empty(), "status alerts");
}

/// `engage-sync ARGS --help` exits 0 only when ARGS parse (flags and their values), without
/// running anything.
fn assert_accepted(args: &[&str], origin: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_engage-sync"))
        .args(args)
        .arg("--help")
        .env_remove("ENGAGE_SYNC_CONFIG")
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{origin}: {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn every_example_command_line_is_accepted() {
    let mut seen = 0;
    for (name, text) in units() {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(EXEC_START) {
                assert_accepted(&rest.split_whitespace().collect::<Vec<_>>(), &name);
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 5, "one engage-sync ExecStart per job unit");
    let crontab = std::fs::read_to_string(examples().join("crontab")).expect("crontab");
    let mut lines = 0;
    for line in crontab
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains('='))
    {
        // Five time fields, then the command; each `engage-sync …` of it (up to a redirect or
        // `||`) must parse.
        let command: Vec<&str> = line.split_whitespace().skip(5).collect();
        for part in command.join(" ").split("||") {
            let words: Vec<&str> = part
                .split_whitespace()
                .take_while(|w| !w.starts_with('>'))
                .collect();
            if let Some(("engage-sync", args)) = words.split_first().map(|(h, t)| (*h, t)) {
                assert_accepted(args, "crontab");
                lines += 1;
            }
        }
    }
    assert!(lines >= 5, "crontab has the jobs: {lines}");
}

#[test]
fn crontab_sets_path_and_staggers_the_writers() {
    let crontab = std::fs::read_to_string(examples().join("crontab")).expect("crontab");
    assert!(
        crontab.lines().any(|l| l.starts_with("PATH=")),
        "PATH= line"
    );
    let minute_of = |job: &str| {
        crontab
            .lines()
            .find(|l| !l.starts_with('#') && l.contains(&format!("engage-sync -q {job} ")))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no {job} line"))
            .to_string()
    };
    let (delta, changes, push) = (
        minute_of("delta"),
        minute_of("changes"),
        minute_of("push-local"),
    );
    assert_ne!(
        delta, changes,
        "delta and changes share the lock: not the same minute"
    );
    assert_ne!(push, delta);
    assert_ne!(push, changes);
}

#[test]
fn sysusers_snippet_creates_the_user_with_its_home_in_the_state_directory() {
    let sysusers = Path::new("/usr/bin/systemd-sysusers");
    if !sysusers.exists() {
        println!(
            "note: {} not found; sysusers snippet not checked",
            sysusers.display()
        );
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join("etc")).expect("etc");
    let snippet = examples().join("systemd/engage-sync.sysusers");
    let out = Command::new(sysusers)
        .arg(format!("--root={}", root.path().display()))
        .arg(&snippet)
        .output()
        .expect("systemd-sysusers runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("passwd");
    let user: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("engage-sync:"))
        .expect("user engage-sync")
        .split(':')
        .collect();
    assert_eq!(user[5], "/var/lib/engage-sync", "home: the StateDirectory=");
}
