//! `[vars]` tables: merged across files into the JSON that CEL sees as `vars`.
//!
//! Files load in name order, and a var set again in a later file replaces the earlier
//! value: a site file (`policies/site.toml`) tunes the baseline without editing it.
//! The whole value is replaced, tables and arrays included (no deep merge), so what a
//! rule sees is always one value written in one place, which `check-policies` shows.
//! Within one file TOML itself refuses a key set twice.

use std::path::Path;

use super::Schema;
use crate::policy::raw::{RawTable, RawValue};
use crate::policy::VarOrigin;

impl Schema {
    /// Merges one `[vars]` table over the ones read before it.
    pub(super) fn add_vars(&mut self, file: &Path, table: &RawTable) {
        for entry in &table.entries {
            let value = match to_json(&entry.value) {
                Ok(v) => v,
                Err(why) => {
                    self.problems.add(
                        file,
                        entry.value_pos,
                        None,
                        format!("var `{}`: {why}", entry.key),
                    );
                    continue;
                }
            };
            let mut origin = VarOrigin {
                file: file.to_path_buf(),
                line: entry.key_pos.line,
                overrides: Vec::new(),
            };
            if let Some(earlier) = self.var_origins.remove(&entry.key) {
                if let Some(old) = self.vars.get(&entry.key) {
                    let (was, is) = (json_type(old), json_type(&value));
                    if was != is {
                        self.problems.warn(
                            file,
                            entry.key_pos,
                            None,
                            format!(
                                "var `{}` is {is} here but {was} at {}:{}, which it overrides: \
                                 rules written for the earlier value may now be error",
                                entry.key,
                                earlier.file.display(),
                                earlier.line
                            ),
                        );
                    }
                }
                origin.overrides = earlier.overrides;
                origin.overrides.push((earlier.file, earlier.line));
            }
            self.var_origins.insert(entry.key.clone(), origin);
            self.vars.insert(entry.key.clone(), value);
        }
    }
}

/// The JSON type of a var's value, for a sentence.
fn json_type(v: &serde_json::Value) -> &'static str {
    use serde_json::Value as J;
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        J::Number(_) => "a float",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "a table",
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
