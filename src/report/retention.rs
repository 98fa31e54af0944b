//! The report sets a folder holds, newest first: for `--keep N` (delete all but the
//! newest N) and for `--previous latest` (the newest complete one).
//!
//! Only files named exactly as a report set names them count: `STEM` + one of
//! [`REPORT_SUFFIXES`], where `STEM` is `ptt-audit-YYYYMMDDTHHMMSSZ` with an optional
//! `-N`. Anything else in the folder, hidden temporary files and the lock included, is
//! never touched.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::naming::after_stem;

/// What follows a stem in the name of each report file a run may write (every format
/// of `CONTRACT.md` §6 and §9).
pub(crate) const REPORT_SUFFIXES: [&str; 5] =
    [".json", "-findings.csv", "-lines.csv", ".xlsx", ".html"];

/// The files of one run in a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReportSet {
    /// `ptt-audit-YYYYMMDDTHHMMSSZ` or `…Z-N`.
    pub(crate) stem: String,
    /// Sorts like the runs' start: the stem's time, then its suffix number.
    order: (String, u32),
    /// Its files, in name order.
    pub(crate) files: Vec<PathBuf>,
}

impl ReportSet {
    /// The set's `STEM.json`, if it has one.
    fn json(&self) -> Option<&PathBuf> {
        self.files.iter().find(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.strip_prefix(&self.stem) == Some(".json"))
        })
    }
}

/// Splits a report file's name into its stem and the stem's sort key; `None` for any
/// name that is not exactly a report file's.
fn parse_name(name: &str) -> Option<(String, (String, u32))> {
    let rest = after_stem(name)?;
    let base = &name[..name.len() - rest.len()];
    let time = base.strip_prefix("ptt-audit-")?.to_string();
    // `-N` right after the time, then the format's suffix.
    let (n, suffix) = match rest.strip_prefix('-') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 && after[digits..].starts_with(['.', '-']) {
                let n: u32 = after[..digits].parse().ok()?;
                (n, &after[digits..])
            } else {
                (1, rest)
            }
        }
        None => (1, rest),
    };
    if n < 2 && suffix.len() != rest.len() {
        // `-0` and `-1` are never written: not a report.
        return None;
    }
    if !REPORT_SUFFIXES.contains(&suffix) {
        return None;
    }
    let stem = format!("{base}{}", &rest[..rest.len() - suffix.len()]);
    Some((stem, (time, n)))
}

/// The report sets in `dir`, newest first. Only plain files (no links, no folders)
/// named like reports count.
pub(crate) fn report_sets(dir: &Path) -> io::Result<Vec<ReportSet>> {
    let mut sets: Vec<ReportSet> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some((stem, order)) = parse_name(&name) else {
            continue;
        };
        if !fs::symlink_metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            continue;
        }
        match sets.iter_mut().find(|s| s.stem == stem) {
            Some(set) => set.files.push(entry.path()),
            None => sets.push(ReportSet {
                stem,
                order,
                files: vec![entry.path()],
            }),
        }
    }
    for set in &mut sets {
        set.files.sort();
    }
    sets.sort_by(|a, b| b.order.cmp(&a.order));
    Ok(sets)
}

/// What [`keep_newest`] did.
#[derive(Debug, Default)]
pub(crate) struct Retention {
    /// Sets removed (whole or in part).
    pub(crate) sets: usize,
    /// Files removed.
    pub(crate) removed: Vec<PathBuf>,
    /// Files that could not be removed, and why.
    pub(crate) failed: Vec<(PathBuf, io::Error)>,
}

/// Deletes every report set in `dir` but the newest `keep` (at least 1), never the set
/// named `current` (this run's, kept whatever the clock did).
fn keep_newest(dir: &Path, keep: usize, current: &str) -> io::Result<Retention> {
    let sets = report_sets(dir)?;
    let others_kept = keep.max(1) - 1;
    let mut retention = Retention::default();
    for set in sets.iter().filter(|s| s.stem != current).skip(others_kept) {
        retention.sets += 1;
        for file in &set.files {
            match fs::remove_file(file) {
                Ok(()) => retention.removed.push(file.clone()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => retention.failed.push((file.clone(), e)),
            }
        }
    }
    Ok(retention)
}

/// `--keep`: removes the older report sets of `dir`, logging what it did. A file that
/// cannot be removed costs disk space, not the run: a warning.
pub(crate) fn apply(dir: &Path, keep: usize, current: &str) {
    match keep_newest(dir, keep, current) {
        Ok(r) => {
            if r.sets > 0 {
                tracing::info!(
                    folder = %dir.display(),
                    sets = r.sets,
                    files = r.removed.len(),
                    keep,
                    "removed older report sets (--keep)"
                );
            }
            for file in &r.removed {
                tracing::debug!(file = %file.display(), "removed an older report file");
            }
            for (file, e) in &r.failed {
                tracing::warn!(file = %file.display(), "cannot remove an older report file: {e}");
            }
        }
        Err(e) => {
            tracing::warn!(folder = %dir.display(), "cannot list the report folder for --keep: {e}")
        }
    }
}

/// The newest `STEM.json` in `dir` whose `run.complete` is true (a run cut short by a
/// 401 or a signal is never a baseline); `None` when there is none. A JSON that cannot
/// be read is passed over (with a warning).
pub(crate) fn latest_complete(dir: &Path) -> io::Result<Option<PathBuf>> {
    #[derive(serde::Deserialize)]
    struct Head {
        run: Run,
    }
    #[derive(serde::Deserialize)]
    struct Run {
        complete: bool,
    }
    for set in report_sets(dir)? {
        let Some(json) = set.json() else {
            continue;
        };
        let head = fs::File::open(json)
            .map_err(|e| e.to_string())
            .and_then(|f| {
                serde_json::from_reader::<_, Head>(io::BufReader::new(f)).map_err(|e| e.to_string())
            });
        match head {
            Ok(head) if head.run.complete => return Ok(Some(json.clone())),
            Ok(_) => {
                tracing::debug!(file = %json.display(), "not a baseline: that run was incomplete")
            }
            Err(e) => tracing::warn!(
                file = %json.display(),
                "cannot read this earlier report, passing over it: {e}"
            ),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_names_and_nothing_else() {
        let s = "ptt-audit-20261129T032056Z";
        let key = |n| (String::from("20261129T032056Z"), n);
        assert_eq!(parse_name(&format!("{s}.json")), Some((s.into(), key(1))));
        assert_eq!(
            parse_name(&format!("{s}-lines.csv")),
            Some((s.into(), key(1)))
        );
        assert_eq!(
            parse_name(&format!("{s}-12-findings.csv")),
            Some((format!("{s}-12"), key(12)))
        );
        assert_eq!(
            parse_name(&format!("{s}-2.html")),
            Some((format!("{s}-2"), key(2)))
        );
        for other in [
            format!("{s}.json.tmp"),
            format!(".{s}.json.tmp"),
            format!("{s}-notes.txt"),
            format!("{s}.csv"),
            format!("{s}-1.json"),
            format!("{s}-2"),
            format!("{s}-lines.csv.bak"),
            format!("{s}x.json"),
            ".ptt-audit.lock".into(),
            "README.md".into(),
        ] {
            assert_eq!(parse_name(&other), None, "{other}");
        }
    }
}
