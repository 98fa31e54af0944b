//! Report file names (`CONTRACT.md` §6): every file of a run is `STEM` plus a suffix,
//! the stem being `ptt-audit-YYYYMMDDTHHMMSSZ` (UTC start time), then `-2`, `-3`… when
//! an earlier run in the same second already has files of that stem.

use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::ReportError;

/// The highest suffix tried before giving up on finding a free stem.
pub(crate) const MAX_SUFFIX: u32 = 1000;

/// What every report stem starts with.
const STEM_PREFIX: &str = "ptt-audit-";

/// The unsuffixed report stem for a run started at `t`: `ptt-audit-YYYYMMDDTHHMMSSZ`.
pub(crate) fn base_stem(t: &DateTime<Utc>) -> String {
    format!("{STEM_PREFIX}{}", t.format("%Y%m%dT%H%M%SZ"))
}

/// What follows the unsuffixed stem in `name` (`-2.json`, `-lines.csv`, `.json`), when
/// `name` starts with a stem as [`base_stem`] makes them and the rest starts with `.`
/// or `-` as [`file_name`] makes them; `None` for any other name.
pub(crate) fn after_stem(name: &str) -> Option<&str> {
    let time = name.strip_prefix(STEM_PREFIX)?;
    let shape = b"ddddddddTddddddZ";
    let bytes = time.as_bytes();
    if bytes.len() <= shape.len() {
        return None;
    }
    let fits = shape.iter().zip(bytes).all(|(&want, &got)| match want {
        b'd' => got.is_ascii_digit(),
        want => got == want,
    });
    if !fits {
        return None;
    }
    // The first bytes are ASCII, so this is a character boundary.
    let rest = &time[shape.len()..];
    rest.starts_with(['.', '-']).then_some(rest)
}

/// The file `STEM` + `suffix`, e.g. `suffix` `.json` or `-lines.csv`.
///
/// The suffix must start with `.` or `-`: those are what [`belongs_to_stem`] looks
/// for, so any other file would not keep a later run from reusing its stem.
pub(crate) fn file_name(stem: &str, suffix: &str) -> String {
    debug_assert!(
        suffix.starts_with(['.', '-']),
        "report file suffix {suffix:?} must start with '.' or '-'"
    );
    format!("{stem}{suffix}")
}

/// The names in `dir` that belong to `base` or to any of its suffixed stems, listed
/// once so that choosing a stem does not list the folder per candidate.
pub(crate) fn names_claiming(dir: &Path, base: &str) -> Result<Vec<String>, ReportError> {
    let dir_err = |source| ReportError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(dir_err)? {
        let entry = entry.map_err(dir_err)?;
        if let Some(name) = entry.file_name().to_str() {
            if belongs_to_stem(name, base) {
                names.push(name.to_string());
            }
        }
    }
    Ok(names)
}

/// The stems to try, in order: `base`, `base-2`, … `base-MAX_SUFFIX`, leaving out
/// those that some name in `taken` belongs to.
pub(crate) fn free_stems<'a>(
    base: &'a str,
    taken: &'a [String],
) -> impl Iterator<Item = String> + 'a {
    (1..=MAX_SUFFIX)
        .map(move |n| {
            if n == 1 {
                base.to_string()
            } else {
                format!("{base}-{n}")
            }
        })
        .filter(move |stem| !taken.iter().any(|name| belongs_to_stem(name, stem)))
}

/// Whether a file named `name` belongs to `stem`: `STEM`, `STEM.…`, `STEM-…`, or the
/// same hidden (temporary) names.
///
/// Deliberately broad: `STEM-2.json` also claims `STEM`, which only means a later run
/// skips a stem that an earlier run's suffix already implies is taken.
fn belongs_to_stem(name: &str, stem: &str) -> bool {
    let name = name.strip_prefix('.').unwrap_or(name);
    match name.strip_prefix(stem) {
        Some(rest) => rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn stem_is_utc_start_time() {
        let t = Utc.with_ymd_and_hms(2026, 11, 29, 3, 20, 56).unwrap();
        assert_eq!(base_stem(&t), "ptt-audit-20261129T032056Z");
        assert_eq!(super::super::rfc3339(&t), "2026-11-29T03:20:56Z");
    }

    #[test]
    fn stem_ownership() {
        let s = "ptt-audit-20261129T032056Z";
        assert!(belongs_to_stem("ptt-audit-20261129T032056Z.json", s));
        assert!(belongs_to_stem("ptt-audit-20261129T032056Z-lines.csv", s));
        assert!(belongs_to_stem(".ptt-audit-20261129T032056Z.json.tmp", s));
        assert!(belongs_to_stem("ptt-audit-20261129T032056Z", s));
        assert!(!belongs_to_stem("ptt-audit-20261129T032056Zx.json", s));
        assert!(!belongs_to_stem("ptt-audit-20261129T032057Z.json", s));
        assert!(!belongs_to_stem(
            "ptt-audit-20261129T032056Z-2.json",
            "ptt-audit-20261129T032056Z-3"
        ));
    }

    #[test]
    fn after_stem_accepts_report_names_only() {
        let s = "ptt-audit-20261129T032056Z";
        assert_eq!(after_stem(&format!("{s}.json")), Some(".json"));
        assert_eq!(
            after_stem(&format!("{s}-2-lines.csv")),
            Some("-2-lines.csv")
        );
        for other in [
            s,
            "ptt-audit-2026112xT032056Z.json",
            "ptt-audit-20261129T032056.json",
            "ptt-audit-20261129T032056Zx.json",
            "ptt-audit-notes.json",
            "xptt-audit-20261129T032056Z.json",
            "",
        ] {
            assert_eq!(after_stem(other), None, "{other:?}");
        }
    }

    #[test]
    fn free_stems_skip_taken_ones_and_stop_at_the_last_suffix() {
        let base = "ptt-audit-20261129T032056Z";
        let taken = vec![
            format!("{base}.json"),
            format!(".{base}-2-lines.csv.tmp"),
            format!("{base}-4.json"),
        ];
        let stems: Vec<String> = free_stems(base, &taken).collect();
        assert_eq!(stems[..2], [format!("{base}-3"), format!("{base}-5")]);
        assert_eq!(stems.last(), Some(&format!("{base}-{MAX_SUFFIX}")));
        assert_eq!(stems.len(), MAX_SUFFIX as usize - 3);
    }
}
