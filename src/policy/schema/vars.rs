//! `[vars]` tables: merged across files into the JSON that CEL sees as `vars`.

use std::path::Path;

use super::Schema;
use crate::policy::raw::{RawTable, RawValue};

impl Schema {
    /// Merges one `[vars]` table. A var may be defined once across all files, so that
    /// which value a rule sees never depends on the order files are loaded in.
    pub(super) fn add_vars(&mut self, file: &Path, table: &RawTable) {
        for entry in &table.entries {
            if let Some((first_file, first_pos)) = self.var_pos.get(&entry.key).cloned() {
                self.problems.add(
                    file,
                    entry.key_pos,
                    None,
                    format!(
                        "duplicate var `{}` (first defined at {}:{}:{})",
                        entry.key,
                        first_file.display(),
                        first_pos.line,
                        first_pos.column
                    ),
                );
                continue;
            }
            self.var_pos
                .insert(entry.key.clone(), (file.to_path_buf(), entry.key_pos));
            match to_json(&entry.value) {
                Ok(v) => {
                    self.vars.insert(entry.key.clone(), v);
                }
                Err(why) => self.problems.add(
                    file,
                    entry.value_pos,
                    None,
                    format!("var `{}`: {why}", entry.key),
                ),
            }
        }
    }
}

/// A TOML value as JSON, for `[vars]`.
fn to_json(v: &RawValue) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        RawValue::String(s) => J::String(s.clone()),
        RawValue::Integer(i) => J::from(*i),
        RawValue::BigInteger(s) => return Err(format!("integer {s} is too large")),
        RawValue::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => J::Number(n),
            None => return Err(format!("{f} cannot be used (not a finite number)")),
        },
        RawValue::Boolean(b) => J::Bool(*b),
        // CEL has no date type bound here: a date is compared as its ISO text.
        RawValue::Datetime(d) => J::String(d.to_string()),
        RawValue::Array(items) => J::Array(
            items
                .iter()
                .map(|i| to_json(&i.value))
                .collect::<Result<_, _>>()?,
        ),
        RawValue::Table(t) => J::Object(
            t.entries
                .iter()
                .map(|e| to_json(&e.value).map(|v| (e.key.clone(), v)))
                .collect::<Result<_, _>>()?,
        ),
    })
}
