//! `delta`'s import: the inputs through the export-set pipeline ([`apply_export_set`]), with
//! bad files quarantined and the summary kept.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::summary::DeltaSummary;
use super::Ctx;
use crate::cli::DeltaArgs;
use crate::commands::exit::exit_code_for;
use crate::error::PartialFailure;
use crate::export_xml::ImportError;
use crate::import::{
    apply_export_set, gap_warnings, refuse_file, split_names, ExportSet, FileReport, Flow,
    ImportOptions, Importer, Inputs, Loader, Refusal, SetEnd, SetObserver, SetOptions,
};
use crate::replica::Replica;

/// Applies the inputs in order; stops at the first bad file unless `--keep-going`.
pub(super) fn import_all(
    ctx: &Ctx,
    args: &DeltaArgs,
    replica: &mut Replica,
    inputs: Inputs,
    summary: &mut DeltaSummary,
) -> anyhow::Result<()> {
    let total = inputs.files.len() + inputs.not_utf8.len();
    let not_utf8 = summary.refuse_not_utf8(&inputs.not_utf8);
    summary.skip_young(&inputs.young, ctx.settings.inbox_min_age);
    let (set, bad_names) = split_names(inputs.files);
    let mut import = DeltaImport::new(ctx, args, summary);
    import.refuse_bad_names(replica, bad_names, set.len())?;
    let end = import.apply(replica, &set)?;
    let DeltaImport {
        touched,
        first_failure,
        ..
    } = import;
    if let SetEnd::Finished {
        not_tried,
        resolved,
    } = end
    {
        summary.files_not_tried = not_tried as u64;
        // A first import counts a contact loaded again as new until its load is resolved.
        let superseded = resolved.superseded.min(summary.inserted);
        summary.inserted -= superseded;
        summary.updated += superseded;
    }
    for warning in gap_warnings(replica, &touched)? {
        tracing::warn!("{warning}");
        summary.warnings.push(warning);
    }
    match first_failure {
        None => not_utf8.map_or(Ok(()), Err),
        Some(e) if !args.keep_going => Err(e),
        Some(e) => Err(PartialFailure {
            failed: summary.files_failed as usize,
            total,
            what: "files",
            code: exit_code_for(&e),
        }
        .into()),
    }
}

/// `delta`'s side of the export-set pipeline: the summary, the quarantine and the export
/// timestamps and file numbers seen (for the gap check).
struct DeltaImport<'a> {
    ctx: &'a Ctx,
    args: &'a DeltaArgs,
    summary: &'a mut DeltaSummary,
    touched: BTreeMap<String, BTreeSet<u32>>,
    /// The first refused file's error: it decides the exit code.
    first_failure: Option<anyhow::Error>,
}

impl<'a> DeltaImport<'a> {
    fn new(ctx: &'a Ctx, args: &'a DeltaArgs, summary: &'a mut DeltaSummary) -> Self {
        DeltaImport {
            ctx,
            args,
            summary,
            touched: BTreeMap::new(),
            first_failure: None,
        }
    }

    /// Refuses the files whose names are not an export file's, before any file is applied;
    /// the first ends the run unless `--keep-going` (with the `set_len` files of the set not
    /// tried).
    fn refuse_bad_names(
        &mut self,
        replica: &mut Replica,
        bad_names: Vec<ImportError>,
        set_len: usize,
    ) -> anyhow::Result<()> {
        for err in bad_names {
            let path = match &err {
                ImportError::BadName { file, .. } => file.clone(),
                _ => continue,
            };
            let error = self.refuse(replica, &path, err.into())?;
            if !self.args.keep_going {
                self.summary.files_not_tried = set_len as u64;
                return Err(error);
            }
            self.first_failure.get_or_insert(error);
        }
        Ok(())
    }

    /// Applies the export set through the replica's indexes, archiving what is committed.
    fn apply(&mut self, replica: &mut Replica, set: &ExportSet) -> anyhow::Result<SetEnd> {
        let (s, dry_run) = (&self.ctx.settings, self.args.write.dry_run);
        let importer = Importer::new(ImportOptions {
            dry_run,
            archive: s.archive.clone(),
        });
        let opts = SetOptions {
            label: "delta",
            show_progress: !self.ctx.json && self.ctx.verbosity >= 0 && !dry_run,
            settings: s,
            deadline: None,
        };
        apply_export_set(replica, Loader::Sorted(importer), set, &opts, self)
    }

    /// Refuses a bad file (quarantined, not in a dry run) and lists it in the summary; returns
    /// the error that decides the exit code.
    fn refuse(
        &mut self,
        replica: &mut Replica,
        path: &Path,
        err: anyhow::Error,
    ) -> anyhow::Result<anyhow::Error> {
        let refusal = match self.args.write.dry_run {
            true => Refusal::DryRun,
            false => Refusal::MoveTo(&self.ctx.settings.quarantine),
        };
        let (failure, error) = refuse_file(replica, path, err, refusal)?;
        if self.args.keep_going {
            tracing::error!("{error:#}");
        }
        self.summary.failures.push(failure);
        self.summary.files_failed += 1;
        Ok(error)
    }
}

impl SetObserver for DeltaImport<'_> {
    fn committed(&mut self, reports: Vec<FileReport>) {
        for report in reports {
            self.touched
                .entry(report.ledger.export_timestamp.clone())
                .or_default()
                .insert(report.ledger.file_number);
            self.summary.add_report(report);
        }
    }

    fn warnings(&mut self, warnings: Vec<String>) {
        self.summary.add_file_warnings(warnings);
    }

    fn refused(
        &mut self,
        replica: &mut Replica,
        path: &Path,
        error: anyhow::Error,
    ) -> anyhow::Result<Flow> {
        let error = self.refuse(replica, path, error)?;
        self.first_failure.get_or_insert(error);
        Ok(if self.args.keep_going {
            Flow::Continue
        } else {
            Flow::Stop
        })
    }

    fn failed(&mut self, path: &Path, not_tried: usize, error: anyhow::Error) -> anyhow::Error {
        self.summary.files_not_tried = not_tried as u64;
        error.context(format!(
            "cannot apply {} to the replica {}",
            path.display(),
            self.ctx.settings.db.display()
        ))
    }
}
