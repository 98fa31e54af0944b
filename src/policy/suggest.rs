//! "Did you mean" hints: which valid name a misspelt one most likely stands for.

use std::collections::BTreeMap;

/// The candidate `name` most likely misspells, if any is close enough: the same when
/// case, `_` and `-` are ignored, or within an edit or two (one for short names).
///
/// Edits are counted as optimal string alignment, so a swap of neighbours (`tpye`)
/// costs one, like an insertion, deletion or substitution: the typos people make.
/// Ties go to the closest candidate, then to the first one given.
pub(crate) fn closest<'a>(
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let n = norm(name);
    // On a short name two edits change most of it: `id` would "fix" to anything.
    let limit = if name.chars().count() <= 4 { 1 } else { 2 };
    let mut best: BTreeMap<usize, &'a str> = BTreeMap::new();
    for c in candidates {
        if c == name {
            continue;
        }
        let d = if norm(c) == n {
            0
        } else {
            strsim::osa_distance(name, c)
        };
        if d <= limit {
            best.entry(d).or_insert(c);
        }
    }
    best.into_values().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fields::{top_names, MEMBER_FIELDS};
    use crate::policy::schema::RULE_KEYS;

    #[test]
    fn closest_finds_typos_and_case_slips_only() {
        assert_eq!(
            closest("sevrity", RULE_KEYS.iter().copied()),
            Some("severity")
        );
        assert_eq!(closest("tpye", MEMBER_FIELDS.iter().copied()), Some("type"));
        assert_eq!(
            closest("connection_type", top_names()),
            Some("connectionType")
        );
        assert_eq!(closest("pttRecording", top_names()), None);
        assert_eq!(closest("severity", RULE_KEYS.iter().copied()), None);
    }
}
