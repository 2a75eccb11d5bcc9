//! What an import reads: the export files in the inbox or the paths given (see
//! [`collect_inputs`]), with those left for later or refused before they are read.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use super::ExportSet;
use crate::error::{ConfigError, ExitCode, UsageError};
use crate::export_xml::{ExportFileName, ImportError};

/// An input file: its path and, if the name is valid, the parsed name.
pub struct Input {
    /// Where it is.
    pub path: PathBuf,
    /// Its parsed name, or why the name is not an export file's.
    pub name: Result<ExportFileName, String>,
}

impl Input {
    /// The file at `path`, its name parsed.
    fn at(path: PathBuf) -> Input {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Input {
            name: ExportFileName::parse(&name),
            path,
        }
    }
}

/// What is in the inbox (or the paths given): the export files to import, and those left for
/// later or refused before they are read.
#[derive(Default)]
pub struct Inputs {
    /// Files to import.
    pub files: Vec<Input>,
    /// Files found in a folder that were changed less than the minimum age ago (still being
    /// written, perhaps), with their age: left for the next run.
    pub young: Vec<(PathBuf, Duration)>,
    /// Files whose names are not UTF-8: left where they are (a name must be stored exactly in
    /// the ledger, and two such names could read the same).
    pub not_utf8: Vec<PathBuf>,
}

/// The inputs: the export files in `paths` (files, or folders whose `*.xml` files are taken),
/// or in the inbox when none are given. Files listed from a folder that changed less than
/// `min_age` ago are left for later; a file named explicitly is taken as it is.
pub fn collect_inputs(
    paths: &[PathBuf],
    inbox: &Path,
    min_age: Option<Duration>,
) -> anyhow::Result<Inputs> {
    let default = [inbox.to_path_buf()];
    let (paths, from_config) = if paths.is_empty() {
        (&default[..], true)
    } else {
        (paths, false)
    };
    let mut files = BTreeSet::new();
    let mut inputs = Inputs::default();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if from_config && e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigError(format!(
                    "the inbox folder {} does not exist; create it, set `inbox` in the config \
                     file, or pass files to import",
                    path.display()
                ))
                .into())
            }
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())))
            }
        };
        if meta.is_dir() {
            list_folder(path, min_age, &mut files, &mut inputs)?;
        } else if meta.is_file() {
            if path.file_name().is_some_and(|n| n.to_str().is_none()) {
                inputs.not_utf8.push(path.clone());
            } else {
                files.insert(path.clone());
            }
        } else {
            // A FIFO would block the import forever, a device never ends.
            return Err(UsageError(format!(
                "{} is neither a regular file nor a folder (a FIFO, device or socket); pass \
                 export files or folders",
                path.display()
            ))
            .into());
        }
    }
    inputs.files = files.into_iter().map(Input::at).collect();
    Ok(inputs)
}

/// Adds the export files in the folder at `path` to `files` (or, if changed less than
/// `min_age` ago or named in other than UTF-8, to `inputs`' lists).
fn list_folder(
    path: &Path,
    min_age: Option<Duration>,
    files: &mut BTreeSet<PathBuf>,
    inputs: &mut Inputs,
) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(path)
        .with_context(|| format!("cannot list the folder {}", path.display()))?
    {
        let entry = entry.with_context(|| format!("cannot list {}", path.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_xml = name.to_ascii_lowercase().ends_with(".xml");
        if !is_xml || name.starts_with('.') {
            continue;
        }
        if !entry.file_type()?.is_file() {
            // A link's target would stay behind when the link is archived, and a FIFO
            // would block the import: say so instead of passing over it in silence.
            tracing::warn!(
                "skipped {}: not a regular file (a symbolic link, folder, FIFO, device \
                 or socket); put the export file itself into the folder",
                entry.path().display()
            );
        } else if entry.file_name().to_str().is_none() {
            inputs.not_utf8.push(entry.path());
        } else if let Some(age) = too_young(&entry.path(), min_age) {
            inputs.young.push((entry.path(), age));
        } else {
            files.insert(entry.path());
        }
    }
    Ok(())
}

/// The file's age, if it was changed less than `min_age` ago (or its time is in the future).
fn too_young(path: &Path, min_age: Option<Duration>) -> Option<Duration> {
    let min_age = min_age.filter(|a| !a.is_zero())?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    (age < min_age).then_some(age)
}

/// Export files whose names are not UTF-8 (exit 65): left where they are.
#[derive(Debug, thiserror::Error)]
#[error(
    "{count} file(s) not imported because their names are not UTF-8 (the first: {first}); \
     they were left where they are. Rename them (export file names are ASCII: \
     YYYYMMDDHHmmss_N_name.xml) and run again"
)]
pub struct NotUtf8Names {
    /// How many.
    pub count: usize,
    /// The first, escaped.
    pub first: String,
}

impl crate::error::Coded for NotUtf8Names {
    fn exit_code(&self) -> ExitCode {
        ExitCode::DataErr
    }
}

/// A path whose name is not UTF-8, with its bytes escaped (`caf\xE9.xml`).
pub fn escaped(path: &Path) -> String {
    let quoted = format!("{:?}", path.as_os_str());
    quoted.trim_matches('"').to_string()
}

/// The inputs' export files with valid names, as an export set, and the files whose names are
/// not an export file's ([`ImportError::BadName`]).
pub fn split_names(files: Vec<Input>) -> (ExportSet, Vec<ImportError>) {
    let (mut bad_names, mut named) = (Vec::new(), Vec::new());
    for input in files {
        match input.name {
            Ok(name) => named.push((name, input.path)),
            Err(reason) => bad_names.push(ImportError::BadName {
                file: input.path,
                reason,
            }),
        }
    }
    (ExportSet::new(named), bad_names)
}

/// The complete export set in `paths` (a `full` build): a file whose name is not UTF-8 or not
/// an export file's is an error, since a full set must be whole.
pub fn complete_export_set(paths: &[PathBuf]) -> anyhow::Result<ExportSet> {
    let inputs = collect_inputs(paths, &PathBuf::new(), None)?;
    if let Some(first) = inputs.not_utf8.first() {
        return Err(NotUtf8Names {
            count: inputs.not_utf8.len(),
            first: escaped(first),
        }
        .into());
    }
    let (set, bad_names) = split_names(inputs.files);
    match bad_names.into_iter().next() {
        Some(bad_name) => Err(bad_name.into()),
        None => Ok(set),
    }
}
