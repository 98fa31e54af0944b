//! The reports of one run: every chosen format written side by side, committed
//! together or not at all.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::atomic::{remove_stale_temps, Sealed};
use super::naming::{base_stem, free_stems, names_claiming, MAX_SUFFIX};
use super::{Format, ReportError, ReportWriter, RunEnd, RunMeta, Summary};
use crate::model::LineReport;
use crate::policy::PolicySet;

/// The reports of one run: a writer per chosen format, and the summary counts.
pub struct Reports {
    stem: String,
    writers: Vec<Box<dyn ReportWriter>>,
    summary: Summary,
    policies: Arc<PolicySet>,
    /// Per waiver: did it turn some `fail` into `waived` (for its state at the end).
    waivers_applied: Vec<bool>,
    /// The day waivers are judged by: the run's start, as in evaluation.
    today: chrono::NaiveDate,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports")
            .field("stem", &self.stem)
            .field("writers", &self.writers.len())
            .field("summary", &self.summary)
            .finish()
    }
}

impl Reports {
    /// Creates `out_dir` if missing, removes the temporary report files that killed
    /// runs left in it (see `atomic::remove_stale_temps`), picks a free stem
    /// (`ptt-audit-YYYYMMDDTHHMMSSZ` from `meta.started_at`, then `-2`, `-3`… while any
    /// file of that stem exists) and opens the temporary files of every format in
    /// `formats` (duplicates ignored).
    pub fn create(
        out_dir: &Path,
        formats: &[Format],
        meta: RunMeta,
        policies: Arc<PolicySet>,
    ) -> Result<Reports, ReportError> {
        fs::create_dir_all(out_dir).map_err(|source| ReportError::Dir {
            path: out_dir.to_path_buf(),
            source,
        })?;
        clean_up(out_dir);
        let base = base_stem(&meta.started_at);
        let taken = names_claiming(out_dir, &base)?;
        let mut unique = Vec::new();
        for f in formats {
            if !unique.contains(f) {
                unique.push(*f);
            }
        }
        for stem in free_stems(&base, &taken) {
            match open_writers(out_dir, &stem, &unique, &meta, &policies) {
                Ok(writers) => {
                    return Ok(Reports {
                        stem,
                        writers,
                        summary: Summary::default(),
                        waivers_applied: vec![false; policies.waivers.len()],
                        today: meta.started_at.date_naive(),
                        policies,
                    })
                }
                // Another run created one of our names since we listed the folder.
                Err(e) if e.is_already_exists() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(ReportError::NoFreeStem {
            dir: out_dir.to_path_buf(),
            stem: base,
            last: MAX_SUFFIX,
        })
    }

    /// The chosen file stem, e.g. `ptt-audit-20261129T032056Z` or `…Z-2`.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    /// Counts the line and writes it to every format.
    pub fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        self.summary.add(line, &self.policies);
        crate::eval::mark_applied(&mut self.waivers_applied, &line.findings);
        for w in &mut self.writers {
            w.write_line(line)?;
        }
        Ok(())
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Completes every report and renames it to its final name.
    ///
    /// All or nothing: every file is completed and synced first, and only when all of
    /// them are does any get its final name, so the JSON and the CSVs of one run never
    /// disagree (or exist one without the other) after a full disk.
    pub fn finish(self, end: RunEnd) -> Result<(Summary, Vec<PathBuf>), ReportError> {
        // Waivers expire by the date the run started, as evaluation judged them.
        let waiver_states =
            crate::eval::waiver_states(&self.policies, &self.waivers_applied, self.today);
        let mut sealed = Vec::new();
        for w in self.writers {
            // On error, dropping what was sealed removes those temporary files too.
            sealed.extend(w.finish(&self.summary, &end, &waiver_states)?);
        }
        let paths = sealed
            .into_iter()
            .map(Sealed::commit)
            .collect::<Result<Vec<_>, _>>()?;
        let mut summary = self.summary;
        summary.waivers = waiver_states;
        Ok((summary, paths))
    }
}

/// Removes what killed runs left in `dir`, and says so. A file that cannot be removed
/// only costs disk space: a warning, not a reason to stop this run.
fn clean_up(dir: &Path) {
    let cleanup = remove_stale_temps(dir);
    if !cleanup.removed.is_empty() {
        tracing::info!(
            folder = %dir.display(),
            files = cleanup.removed.len(),
            "removed temporary report files that an interrupted earlier run left behind"
        );
    }
    for path in &cleanup.removed {
        tracing::debug!(file = %path.display(), "removed a stale temporary report file");
    }
    for (path, e) in &cleanup.failed {
        tracing::warn!(
            file = %path.display(),
            "cannot remove a stale temporary report file: {e}"
        );
    }
}

/// Opens every format's writer under `stem`; on an error, the writers opened so far
/// are dropped, which removes their temporary files.
fn open_writers(
    dir: &Path,
    stem: &str,
    formats: &[Format],
    meta: &RunMeta,
    policies: &Arc<PolicySet>,
) -> Result<Vec<Box<dyn ReportWriter>>, ReportError> {
    formats
        .iter()
        .map(|f| f.open(dir, stem, meta, policies))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_can_move_between_threads() {
        // The audit driver owns the reports inside a tokio task.
        fn assert_send<T: Send>() {}
        assert_send::<Reports>();
    }
}
