//! The reports of one run: every chosen format written side by side, committed
//! together or not at all. With a previous report, each line is compared with it on
//! the way in (the findings' `change`, lines added) and the lines it lost are named at
//! the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::atomic::{remove_stale_temps, Sealed};
use super::background::Background;
use super::drift::{waiver_entries, Changes};
use super::format::{Closing, Opening, WriteOptions};
use super::naming::{base_stem, free_stems, names_claiming, MAX_SUFFIX};
use super::{Format, ReportError, ReportWriter, RunEnd, RunMeta, Summary};
use crate::compare::Previous;
use crate::model::LineReport;
use crate::policy::PolicySet;

/// A format's writer: on the run's thread (cheap formats), or on its own.
enum Slot {
    Here(Box<dyn ReportWriter>),
    Away(Background),
}

/// The reports of one run: a writer per chosen format, and the summary counts.
pub struct Reports {
    stem: String,
    writers: Vec<Slot>,
    summary: Summary,
    policies: Arc<PolicySet>,
    /// Per waiver: did it turn some `fail` into `waived` (for its state at the end).
    waivers_applied: Vec<bool>,
    /// The day waivers are judged by: the run's start, as in evaluation.
    today: chrono::NaiveDate,
    /// The report to compare with (`--previous`).
    previous: Option<Previous>,
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
    /// `formats` (duplicates ignored), with the default [`WriteOptions`] and no previous
    /// report.
    pub fn create(
        out_dir: &Path,
        formats: &[Format],
        meta: RunMeta,
        policies: Arc<PolicySet>,
    ) -> Result<Reports, ReportError> {
        Reports::create_with(
            out_dir,
            formats,
            &WriteOptions::default(),
            meta,
            policies,
            None,
        )
    }

    /// [`Reports::create`] with options, and a previous report to compare with.
    pub fn create_with(
        out_dir: &Path,
        formats: &[Format],
        options: &WriteOptions,
        meta: RunMeta,
        policies: Arc<PolicySet>,
        previous: Option<Previous>,
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
            let opening = Opening {
                dir: out_dir,
                stem: &stem,
                meta: &meta,
                policies: &policies,
                options,
            };
            match open_writers(&opening, &unique) {
                Ok(writers) => {
                    let summary = Summary {
                        // With a previous report, changes are counted even when none.
                        changes: previous.as_ref().map(|_| Changes::default()),
                        ..Summary::default()
                    };
                    return Ok(Reports {
                        stem,
                        writers,
                        summary,
                        waivers_applied: vec![false; policies.waivers.len()],
                        today: meta.started_at.date_naive(),
                        policies,
                        previous,
                    });
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

    /// Compares the line with the previous report (if any), filling each result's
    /// `change`, then counts it and writes it to every format.
    pub fn write(&mut self, mut line: LineReport) -> Result<(), ReportError> {
        if let Some(previous) = &self.previous {
            previous.annotate(&mut line, &self.policies);
        }
        self.write_shared(Arc::new(line))
    }

    /// Counts the line and writes it to every format as it is (its results' `change`
    /// already filled in, or not: see [`Reports::write`]).
    pub fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        self.write_shared(Arc::new(line.clone()))
    }

    fn write_shared(&mut self, line: Arc<LineReport>) -> Result<(), ReportError> {
        if let Some(previous) = &mut self.previous {
            if !previous.mark_seen(&line.id) {
                if let Some(c) = &mut self.summary.changes {
                    c.lines_added += 1;
                }
            }
        }
        self.summary.add(&line, &self.policies);
        crate::eval::mark_applied(&mut self.waivers_applied, &line.findings);
        for w in &mut self.writers {
            match w {
                Slot::Here(w) => w.write_line(&line)?,
                Slot::Away(b) => b.send(Arc::clone(&line))?,
            }
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
    /// them are does any get its final name, so the reports of one run never disagree
    /// (or exist one without the other) after a full disk or a writer's failure.
    ///
    /// The formats finish side by side, one thread each: the slow ones (compressing
    /// the workbook, assembling the JSON) overlap instead of adding up.
    pub fn finish(self, end: RunEnd) -> Result<(Summary, Vec<PathBuf>), ReportError> {
        let Reports {
            writers,
            mut summary,
            policies,
            waivers_applied,
            today,
            previous,
            ..
        } = self;
        // Waivers expire by the date the run started, as evaluation judged them.
        summary.waivers = waiver_entries(&policies, &waivers_applied, today);
        if let Some(previous) = &previous {
            summary.removed_lines = previous.removed().map_err(ReportError::from)?;
            if let Some(c) = &mut summary.changes {
                c.lines_removed = summary.removed_lines.len() as u64;
            }
        }
        let closing = Closing {
            summary: &summary,
            end: &end,
        };
        let finished: Vec<Result<Vec<Sealed>, ReportError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = writers
                .into_iter()
                .map(|slot| {
                    scope.spawn(|| match slot {
                        Slot::Here(w) => w.finish(&closing),
                        Slot::Away(b) => b.into_writer()?.finish(&closing),
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| Err(ReportError::panicked(&p))))
                .collect()
        });
        // On an error, dropping what was sealed removes those temporary files too.
        let mut sealed = Vec::new();
        for f in finished {
            sealed.extend(f?);
        }
        let paths = sealed
            .into_iter()
            .map(Sealed::commit)
            .collect::<Result<Vec<_>, _>>()?;
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
fn open_writers(opening: &Opening<'_>, formats: &[Format]) -> Result<Vec<Slot>, ReportError> {
    formats
        .iter()
        .map(|f| {
            let w = f.open(opening)?;
            Ok(if f.is_slow() {
                Slot::Away(Background::spawn(&f.to_string(), w)?)
            } else {
                Slot::Here(w)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::LineStatus;
    use crate::report::Format;

    /// A writer that fails: on its `fail_at`-th line, or when finishing.
    struct Failing {
        fail_at: Option<usize>,
        seen: usize,
    }

    impl ReportWriter for Failing {
        fn write_line(&mut self, _: &LineReport) -> Result<(), ReportError> {
            self.seen += 1;
            match self.fail_at {
                Some(n) if n == self.seen => Err(ReportError::Internal("disk full".into())),
                _ => Ok(()),
            }
        }

        fn finish(self: Box<Self>, _: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
            Err(ReportError::Internal("cannot compress".into()))
        }
    }

    fn meta() -> RunMeta {
        RunMeta {
            run_id: "r".into(),
            started_at: chrono::Utc::now(),
            org_id: None,
            base_url: "http://127.0.0.1:9/v1".into(),
            tool_version: "0".into(),
            source_report: None,
        }
    }

    fn line(index: usize) -> LineReport {
        LineReport {
            index,
            id: format!("L{index}"),
            identity: crate::model::LineIdentity::unknown(),
            status: LineStatus::Compliant,
            read_at: None,
            settings: Some(serde_json::json!({})),
            findings: vec![],
            error: None,
        }
    }

    fn policies() -> Arc<PolicySet> {
        Arc::new(
            crate::policy::load_str(
                Path::new("t.toml"),
                "[[rule]]\nid = \"A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"true\"\n",
            )
            .expect("loads"),
        )
    }

    fn end() -> RunEnd {
        RunEnd {
            finished_at: chrono::Utc::now(),
            complete: true,
            exit_code: 0,
            discovery: None,
        }
    }

    #[test]
    fn a_slow_writer_that_fails_leaves_no_report_at_all() {
        // Failing while writing a line (seen on a later line or at the end), or while
        // finishing: in either case no file of the run gets its final name, and the
        // temporary files of every format are gone.
        for (fail_at, lines) in [(Some(2), 50), (Some(50), 50), (None, 3)] {
            for away in [true, false] {
                let dir = tempfile::tempdir().expect("tempdir");
                let formats = [Format::Json, Format::Csv, Format::Xlsx, Format::Html];
                let mut r =
                    Reports::create(dir.path(), &formats, meta(), policies()).expect("create");
                let failing = Box::new(Failing { fail_at, seen: 0 });
                r.writers.push(if away {
                    Slot::Away(Background::spawn("failing", failing).expect("spawn"))
                } else {
                    Slot::Here(failing)
                });
                let written = (0..lines).try_for_each(|i| r.write(line(i)));
                let result = written.and_then(|()| r.finish(end()).map(|_| ()));
                let err = result.expect_err("the failing writer fails the set");
                assert!(
                    matches!(&err, ReportError::Internal(m) if m == "disk full" || m == "cannot compress"),
                    "{err}"
                );
                let left: Vec<_> = fs::read_dir(dir.path())
                    .expect("ls")
                    .map(|e| e.expect("entry").file_name())
                    .collect();
                assert!(
                    left.is_empty(),
                    "fail_at {fail_at:?}, away {away}: {left:?}"
                );
            }
        }
    }

    #[test]
    fn every_format_commits_together() {
        let dir = tempfile::tempdir().expect("tempdir");
        let formats = [Format::Json, Format::Csv, Format::Xlsx, Format::Html];
        let mut r = Reports::create(dir.path(), &formats, meta(), policies()).expect("create");
        for i in 0..3 {
            r.write(line(i)).expect("write");
        }
        let (summary, paths) = r.finish(end()).expect("finish");
        assert_eq!(summary.lines.total, 3);
        assert_eq!(paths.len(), 5);
        assert_eq!(
            fs::read_dir(dir.path()).expect("ls").count(),
            5,
            "no temporary file left"
        );
    }

    #[test]
    fn reports_can_move_between_threads() {
        // The audit driver owns the reports inside a tokio task.
        fn assert_send<T: Send>() {}
        assert_send::<Reports>();
    }
}
