//! `--format`: the report formats, and the writer interface each one implements.
//!
//! Adding a format is a new module with a [`ReportWriter`], a [`Format`] variant, and
//! its arm in [`Format::open`] (which the compiler asks for). The `--format` name,
//! parsing and the list of valid names in error messages all follow from the variant.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use clap::ValueEnum;

use super::atomic::Sealed;
use super::{csv::CsvWriter, json::JsonWriter};
use super::{ReportError, RunEnd, RunMeta, Summary, WaiverState};
use crate::model::LineReport;
use crate::policy::PolicySet;

/// One report format of `--format`; its name is the variant's name in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Format {
    /// `STEM.json`.
    Json,
    /// `STEM-findings.csv` and `STEM-lines.csv`.
    Csv,
}

impl Format {
    /// Parses a `--format` list such as `json,csv`: entries case-insensitive and trimmed,
    /// duplicates dropped (first position kept).
    pub fn parse_list(list: &str) -> Result<Vec<Format>, FormatError> {
        if list.trim().is_empty() {
            return Err(FormatError::Empty);
        }
        let mut out = Vec::new();
        for entry in list.split(',') {
            let f: Format = entry.parse()?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// Opens this format's writer on temporary files named after `stem` in `dir`.
    pub(crate) fn open(
        self,
        dir: &Path,
        stem: &str,
        meta: &RunMeta,
        policies: &Arc<PolicySet>,
    ) -> Result<Box<dyn ReportWriter>, ReportError> {
        let policies = Arc::clone(policies);
        Ok(match self {
            Format::Json => Box::new(JsonWriter::create(dir, stem, meta.clone(), policies)?),
            Format::Csv => Box::new(CsvWriter::create(dir, stem, meta, policies)?),
        })
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Format, FormatError> {
        let t = s.trim();
        <Format as ValueEnum>::from_str(t, true).map_err(|_| FormatError::Unknown(t.to_string()))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Every variant has a name: none is `#[value(skip)]`.
        match self.to_possible_value() {
            Some(v) => f.write_str(v.get_name()),
            None => Err(std::fmt::Error),
        }
    }
}

/// The valid `--format` values for error messages, e.g. `json, csv or json,csv`.
fn expected() -> String {
    let names: Vec<String> = Format::value_variants()
        .iter()
        .map(Format::to_string)
        .collect();
    match names.len() {
        1 => names.join(""),
        _ => format!("{} or {}", names.join(", "), names.join(",")),
    }
}

/// A bad `--format` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// An entry that names no format.
    #[error("unknown report format {0:?} in --format: expected {expected}", expected = expected())]
    Unknown(String),
    /// Nothing at all.
    #[error("--format is empty: expected {expected}", expected = expected())]
    Empty,
}

/// One format's streaming writer.
pub(crate) trait ReportWriter: Send {
    /// Writes one line (and its results), in input order.
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError>;

    /// Completes and syncs the files, still under their temporary names (the caller
    /// renames every format's files together). `waivers` holds one state per
    /// `PolicySet::waivers` entry, same order.
    fn finish(
        self: Box<Self>,
        summary: &Summary,
        end: &RunEnd,
        waivers: &[WaiverState],
    ) -> Result<Vec<Sealed>, ReportError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_list_parses_case_insensitive_trimmed_and_dedups() {
        assert_eq!(
            Format::parse_list("json,csv"),
            Ok(vec![Format::Json, Format::Csv])
        );
        assert_eq!(
            Format::parse_list(" CSV , Json ,csv"),
            Ok(vec![Format::Csv, Format::Json])
        );
        assert_eq!(Format::parse_list("json"), Ok(vec![Format::Json]));
    }

    #[test]
    fn format_list_error_names_the_bad_entry() {
        let e = Format::parse_list("json, xml").expect_err("xml is not a format");
        assert_eq!(e, FormatError::Unknown("xml".into()));
        assert!(e.to_string().contains("\"xml\""), "{e}");
        assert_eq!(Format::parse_list("  "), Err(FormatError::Empty));
        assert_eq!(
            Format::parse_list("json,"),
            Err(FormatError::Unknown(String::new()))
        );
    }

    #[test]
    fn errors_list_the_valid_names() {
        assert_eq!(
            FormatError::Unknown("xml".into()).to_string(),
            "unknown report format \"xml\" in --format: expected json, csv or json,csv"
        );
        assert_eq!(
            FormatError::Empty.to_string(),
            "--format is empty: expected json, csv or json,csv"
        );
    }

    #[test]
    fn names_round_trip() {
        for f in Format::value_variants() {
            assert_eq!(f.to_string().parse::<Format>(), Ok(*f));
        }
        assert_eq!(Format::Json.to_string(), "json");
        assert_eq!(Format::Csv.to_string(), "csv");
    }

    #[test]
    fn clap_parses_a_comma_separated_list() {
        use clap::Parser;

        #[derive(Parser)]
        struct Args {
            #[arg(long, value_enum, value_delimiter = ',')]
            format: Vec<Format>,
        }
        let a = Args::try_parse_from(["t", "--format", "csv,json"]).expect("parses");
        assert_eq!(a.format, [Format::Csv, Format::Json]);
        assert!(Args::try_parse_from(["t", "--format", "json,xml"]).is_err());
    }
}
