//! Where the config file is looked for when neither `--config` nor `ENGAGE_SYNC_CONFIG` names
//! one. Written out rather than taken from a directories crate: those answer the platform's
//! convention (`~/Library/Application Support` on macOS), while the documented order is the
//! XDG one on every Unix, and the function must take the environment as arguments to be tested.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::DEFAULT_CONFIG_FILE;

/// The system-wide config file, last in the search order.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/engage-sync/engage-sync.toml";

/// The candidates in the order they are tried, the first that exists winning:
/// `./engage-sync.toml`, then `$XDG_CONFIG_HOME/engage-sync/engage-sync.toml` (or
/// `$HOME/.config/engage-sync/engage-sync.toml` when `XDG_CONFIG_HOME` is unset, empty or
/// relative, as the XDG base directory specification says), then [`SYSTEM_CONFIG_FILE`].
pub fn candidates(xdg_config_home: Option<&OsStr>, home: Option<&OsStr>) -> Vec<PathBuf> {
    let user_dir = match absolute(xdg_config_home) {
        Some(xdg) => Some(xdg.to_path_buf()),
        None => absolute(home).map(|h| h.join(".config")),
    };
    let mut paths = vec![PathBuf::from(DEFAULT_CONFIG_FILE)];
    if let Some(dir) = user_dir {
        paths.push(dir.join("engage-sync").join(DEFAULT_CONFIG_FILE));
    }
    paths.push(PathBuf::from(SYSTEM_CONFIG_FILE));
    paths
}

/// The value as a path when it is an absolute one (XDG ignores relative values).
fn absolute(value: Option<&OsStr>) -> Option<&Path> {
    value.map(Path::new).filter(|p| p.is_absolute())
}

/// The first candidate for this process's environment that exists. A candidate whose
/// existence cannot be checked (a folder without search permission) counts as found, so that
/// reading it reports the problem instead of silently using another file.
pub fn find() -> Option<PathBuf> {
    current_candidates()
        .into_iter()
        .find(|p| p.try_exists().unwrap_or(true))
}

/// [`candidates`] for this process's environment.
pub fn current_candidates() -> Vec<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME");
    let home = std::env::var_os("HOME");
    candidates(xdg.as_deref(), home.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(paths: Vec<PathBuf>) -> Vec<String> {
        paths.iter().map(|p| p.display().to_string()).collect()
    }

    #[test]
    fn current_directory_then_xdg_config_home_then_etc() {
        let got = candidates(Some(OsStr::new("/x/conf")), Some(OsStr::new("/home/u")));
        assert_eq!(
            strings(got),
            [
                "engage-sync.toml",
                "/x/conf/engage-sync/engage-sync.toml",
                "/etc/engage-sync/engage-sync.toml"
            ]
        );
    }

    #[test]
    fn home_dot_config_when_xdg_config_home_is_unset_empty_or_relative() {
        for xdg in [None, Some(""), Some("relative/conf")] {
            let got = candidates(xdg.map(OsStr::new), Some(OsStr::new("/home/u")));
            assert_eq!(
                strings(got),
                [
                    "engage-sync.toml",
                    "/home/u/.config/engage-sync/engage-sync.toml",
                    "/etc/engage-sync/engage-sync.toml"
                ],
                "XDG_CONFIG_HOME={xdg:?}"
            );
        }
    }

    #[test]
    fn no_user_folder_without_home_or_xdg_config_home() {
        for home in [None, Some(""), Some("rel")] {
            let got = candidates(None, home.map(OsStr::new));
            assert_eq!(
                strings(got),
                ["engage-sync.toml", "/etc/engage-sync/engage-sync.toml"],
                "HOME={home:?}"
            );
        }
    }
}
