use super::super::tests::{ids, parse};
use super::*;

#[test]
fn csv_picks_id_column_case_insensitively_and_name() {
    let text = "# exported\nrun_id,Line_ID,line_name,status\nr1,abc,Lobby,compliant\nr1,\"d,e\",\"Zoë\",x\n";
    let got = parse(Path::new("f.csv"), text).unwrap();
    assert_eq!(ids(&got), ["abc", "d,e"]);
    assert_eq!(got[0].identity.name.as_deref(), Some("Lobby"));
    assert_eq!(got[1].identity.name.as_deref(), Some("Zoë"));
    assert_eq!(got[0].origin.to_string(), "f.csv:3");
    assert_eq!(got[1].invalid, None);
}

#[test]
fn identity_columns_of_the_inventory_and_the_reports_read_back() {
    let text = "id,name,location_id,location_name,phone_number,extension\n\
                L1,'=Lobby,LOC1,HQ,'+19845550100,2002\nL2,,,,,\n";
    let got = parse(Path::new("lines.csv"), text).unwrap();
    assert_eq!(
        got[0].identity.values(),
        [
            Some("=Lobby"),
            Some("LOC1"),
            Some("HQ"),
            Some("+19845550100"),
            Some("2002")
        ]
    );
    assert!(got[1].identity.is_unknown());
    // A lines report: line_id first of the ID names, identity columns at the end.
    let text = "run_id,line_id,line_name,status,location_id,location_name,phone_number,extension\n\
                r,L3,Dock,compliant,LOC2,Berlin,,7\n";
    let got = parse(Path::new("r.csv"), text).unwrap();
    assert_eq!(ids(&got), ["L3"]);
    assert_eq!(got[0].identity.label().as_deref(), Some("Dock (Berlin)"));
    assert_eq!(got[0].identity.phone_number, None);
    assert_eq!(got[0].identity.extension.as_deref(), Some("7"));
}

#[test]
fn csv_without_id_column_is_an_error_naming_the_header() {
    let err = parse(Path::new("f.csv"), "name,status\nx,y\n").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("f.csv:1"), "{msg}");
    assert!(msg.contains("virtualLineId"), "{msg}");
    assert!(msg.contains("name,status"), "{msg}");
}

/// The error message for `text`, which must be refused.
fn refused(text: &str) -> String {
    match parse(Path::new("in.csv"), text) {
        Err(e @ InputError::Csv { .. }) => e.to_string(),
        other => panic!("{text:?} should be refused as malformed CSV, got {other:?}"),
    }
}

#[test]
fn an_unclosed_quote_is_an_error_at_the_line_where_its_record_starts() {
    let msg = refused("# ids\nid,name\na,A\nb,\"B\nc,C\nd,D\n");
    assert!(msg.starts_with("in.csv:4: "), "{msg}");
    assert!(msg.contains("opened on line 4 is never closed"), "{msg}");
    // In the ID column, with CRLF line ends.
    let msg = refused("id,name\r\na,A\r\n\"b,B\r\nc,C\r\n");
    assert!(msg.starts_with("in.csv:3: "), "{msg}");
}

#[test]
fn a_quote_closed_by_the_next_quoted_value_is_an_error_too() {
    // Every name quoted: the missing quote on line 2 is "closed" on line 3.
    let msg = refused("id,name\na,\"A\nb,\"B\"\nc,\"C\"\n");
    assert!(msg.starts_with("in.csv:2: "), "{msg}");
    assert!(msg.contains("opened on line 2 ends on line 3"), "{msg}");
    let msg = refused("id,name\na,\"A\" x\n");
    assert!(msg.starts_with("in.csv:2: "), "{msg}");
    assert!(msg.contains("followed by `x`"), "{msg}");
}

#[test]
fn quoted_values_that_are_well_formed_still_read() {
    let got = parse(
        Path::new("f.csv"),
        "id,name\n\"a\" ,\"Say \"\"hi\"\"\"\nb,\"two\nlines\"\n\"c\",\"x,y\"  \n",
    )
    .unwrap();
    assert_eq!(ids(&got), ["a", "b", "c"]);
    assert_eq!(got[0].identity.name.as_deref(), Some("Say \"hi\""));
    assert_eq!(got[1].identity.name.as_deref(), Some("two\nlines"));
    assert_eq!(got[2].origin.to_string(), "f.csv:5");
}

#[test]
fn a_row_with_more_or_fewer_fields_than_the_header_is_an_error() {
    let msg = refused("id,name\na,A\nb,Lobby, north\n");
    assert!(msg.starts_with("in.csv:3: "), "{msg}");
    assert!(msg.contains("3 fields where the header has 2"), "{msg}");
    let msg = refused("id,name,site\na,A,x\n\nb,B\n");
    assert!(msg.starts_with("in.csv:4: "), "{msg}");
    assert!(msg.contains("2 fields where the header has 3"), "{msg}");
    // Blank and blank-looking lines are not rows.
    let got = parse(Path::new("f.csv"), "id,name\na,A\n   \n\n# c\nb,B\n").unwrap();
    assert_eq!(ids(&got), ["a", "b"]);
    assert_eq!(got[1].origin.to_string(), "f.csv:6");
    // A comment ending the file without a line end (read as an empty record).
    let got = parse(Path::new("f.csv"), "id,name\na,A\n#").unwrap();
    assert_eq!(ids(&got), ["a"]);
}

#[test]
fn a_non_utf8_byte_is_an_error_naming_its_line() {
    let mut out = Vec::new();
    let err = super::super::parse_from(
        Path::new("in.csv"),
        &b"id,name\na,A\nb,\xff\n"[..],
        &mut out,
    )
    .unwrap_err();
    assert!(
        matches!(err, InputError::NotUtf8 { line: 3, .. }),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("in.csv:3: "), "{err}");
}

proptest::proptest! {
    /// The quote watcher sees the records the csv crate sees: one start per
    /// record, so that the line numbers it gives belong to the right records.
    #[test]
    fn the_watcher_counts_the_records_the_csv_crate_reads(
        text in "[a,\"\n\r# \t]{0,40}"
    ) {
        let mut quotes = Quotes::new(1);
        let accepted = quotes.feed(text.as_bytes()) && {
            quotes.end();
            quotes.problem.is_none()
        };
        let records = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes())
            .byte_records()
            .count();
        if accepted {
            proptest::prop_assert_eq!(quotes.starts.len(), records);
        }
    }
}

#[test]
fn a_nul_makes_its_id_invalid_and_nothing_else() {
    let got = parse(Path::new("f.csv"), "id,name\na\0x,A\nb,B\0\n").unwrap();
    assert_eq!(ids(&got), ["a\0x", "b"]);
    assert!(got[0].invalid.is_some());
    assert_eq!(got[1].invalid, None);
    assert_eq!(got[1].identity.name.as_deref(), Some("B\0"));
}
