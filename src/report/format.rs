//! `--format`: the report formats, and the writer interface each one implements.
//!
//! Adding a format is a new module with a [`ReportWriter`], a [`Format`] variant, and
//! its arm in [`Format::open`] (which the compiler asks for). The `--format` name,
//! parsing, `all` and the list of valid names in error messages all follow from the
//! variant.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use clap::ValueEnum;

use super::atomic::Sealed;
use super::columns::FindingsFilter;
use super::{csv::CsvWriter, html::HtmlWriter, json::JsonWriter, xlsx::XlsxWriter};
use super::{ReportError, RunEnd, RunMeta, Summary};
use crate::model::LineReport;
use crate::policy::PolicySet;

/// The `--format` entry that means every format.
const ALL: &str = "all";

/// One report format of `--format`; its name is the variant's name in lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Format {
    /// `STEM.json`.
    Json,
    /// `STEM-findings.csv` and `STEM-lines.csv`.
    Csv,
    /// `STEM.xlsx`: one workbook, a sheet per table.
    Xlsx,
    /// `STEM.html`: one self-contained page for people.
    Html,
}

impl Format {
    /// Parses a `--format` list such as `json,csv`: entries case-insensitive and trimmed,
    /// `all` for every format, duplicates dropped (first position kept).
    pub fn parse_list(list: &str) -> Result<Vec<Format>, FormatError> {
        if list.trim().is_empty() {
            return Err(FormatError::Empty);
        }
        let mut out = Vec::new();
        for entry in list.split(',') {
            let some: Vec<Format> = if entry.trim().eq_ignore_ascii_case(ALL) {
                Format::value_variants().to_vec()
            } else {
                vec![entry.parse()?]
            };
            for f in some {
                if !out.contains(&f) {
                    out.push(f);
                }
            }
        }
        Ok(out)
    }

    /// Whether the format's writer costs enough per line to get a thread of its own
    /// (see `background`): the xlsx and HTML writers make several times more output
    /// per line than they receive.
    pub(crate) fn is_slow(self) -> bool {
        matches!(self, Format::Xlsx | Format::Html)
    }

    /// Opens this format's writer on temporary files named after `o.stem` in `o.dir`.
    pub(crate) fn open(self, o: &Opening<'_>) -> Result<Box<dyn ReportWriter>, ReportError> {
        Ok(match self {
            Format::Json => Box::new(JsonWriter::create(o)?),
            Format::Csv => Box::new(CsvWriter::create(o)?),
            Format::Xlsx => Box::new(XlsxWriter::create(o)?),
            Format::Html => Box::new(HtmlWriter::create(o)?),
        })
    }
}

/// How the reports are written, besides which formats: the options every writer may
/// look at (`--findings`, `--csv-bom`, `--warn-expiring`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Which rows the findings CSV and the xlsx Findings sheet hold.
    pub findings: FindingsFilter,
    /// Start each CSV with a UTF-8 byte-order mark.
    pub csv_bom: bool,
    /// Waivers that expire within this many days are called out.
    pub warn_expiring_days: u32,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            findings: FindingsFilter::All,
            csv_bom: false,
            warn_expiring_days: crate::settings::DEFAULT_WARN_EXPIRING_DAYS,
        }
    }
}

/// What a writer is opened with.
pub(crate) struct Opening<'a> {
    /// The report folder.
    pub(crate) dir: &'a Path,
    /// The chosen stem.
    pub(crate) stem: &'a str,
    /// The run as it starts.
    pub(crate) meta: &'a RunMeta,
    /// The policies the results refer to.
    pub(crate) policies: &'a Arc<PolicySet>,
    /// How to write.
    pub(crate) options: &'a WriteOptions,
}

/// What a writer is finished with: everything known once every line is written.
pub(crate) struct Closing<'a> {
    /// The counts, waivers and changes of the whole run.
    pub(crate) summary: &'a Summary,
    /// How the run ended.
    pub(crate) end: &'a RunEnd,
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

/// The valid `--format` values for error messages.
fn expected() -> String {
    let names: Vec<String> = Format::value_variants()
        .iter()
        .map(Format::to_string)
        .collect();
    format!(
        "{} or {ALL} (every format), alone or comma-separated such as json,csv",
        names.join(", ")
    )
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
    /// renames every format's files together).
    fn finish(self: Box<Self>, closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError>;
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
        let every = vec![Format::Json, Format::Csv, Format::Xlsx, Format::Html];
        assert_eq!(Format::parse_list("all"), Ok(every.clone()));
        assert_eq!(Format::parse_list(" ALL "), Ok(every));
        assert_eq!(
            Format::parse_list("html,all"),
            Ok(vec![Format::Html, Format::Json, Format::Csv, Format::Xlsx])
        );
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
        let valid = "json, csv, xlsx, html or all (every format), alone or comma-separated \
                     such as json,csv";
        assert_eq!(
            FormatError::Unknown("xml".into()).to_string(),
            format!("unknown report format \"xml\" in --format: expected {valid}")
        );
        assert_eq!(
            FormatError::Empty.to_string(),
            format!("--format is empty: expected {valid}")
        );
    }

    #[test]
    fn names_round_trip() {
        for f in Format::value_variants() {
            assert_eq!(f.to_string().parse::<Format>(), Ok(*f));
        }
        assert_eq!(Format::Json.to_string(), "json");
        assert_eq!(Format::Csv.to_string(), "csv");
        assert_eq!(Format::Xlsx.to_string(), "xlsx");
        assert_eq!(Format::Html.to_string(), "html");
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
