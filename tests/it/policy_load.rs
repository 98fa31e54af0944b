//! Loading policies: every kind of problem is reported with its file, exact line and
//! rule ID, all problems at once, and the shipped baseline pack loads clean.

use std::path::{Path, PathBuf};

use ptt_audit::policy::{self, Diagnostic, PolicySet};

use crate::common::write;

/// The problems `load_str` finds in `text`, as file `p.toml`.
fn problems(text: &str) -> Vec<Diagnostic> {
    match policy::load_str(Path::new("p.toml"), text) {
        Ok(_) => panic!("expected problems in:\n{text}"),
        Err(e) => e.diagnostics,
    }
}

/// The one problem in `text`.
fn problem(text: &str) -> Diagnostic {
    let all = problems(text);
    assert_eq!(all.len(), 1, "expected exactly one problem, got {all:#?}");
    all.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn assert_at(d: &Diagnostic, file: &str, line: usize, rule: Option<&str>, needle: &str) {
    assert_eq!(d.file, PathBuf::from(file), "{d}");
    assert_eq!(d.line, Some(line), "{d}");
    assert_eq!(d.rule.as_deref(), rule, "{d}");
    assert!(d.message.contains(needle), "`{needle}` not in: {d}");
}

const GOOD_RULE: &str = r#"
[[rule]]
id = "PTT-OK"
title = "Two-way needs an allow list"
severity = "high"
when = "connectionType == 'TWO_WAY'"
require = "accessType == 'ALLOW_MEMBERS'"
"#;

#[test]
fn toml_syntax_error_has_line_and_column() {
    let d = problem("[[rule]]\nid = \"PTT-A\"\ntitle = \n");
    assert_at(&d, "p.toml", 3, None, "TOML syntax error");
    assert_eq!(d.column, Some(9), "{d}");
}

#[test]
fn unknown_key_in_rule_suggests_the_closest_valid_key() {
    let d = problem(
        r#"[[rule]]
id = "PTT-A"
title = "t"
severity = "high"
require = "true"
sevrity = "high"
"#,
    );
    assert_at(&d, "p.toml", 6, Some("PTT-A"), "unknown key `sevrity`");
    assert!(d.message.contains("did you mean `severity`?"), "{d}");
    assert!(
        d.message.contains("`message_expr`"),
        "lists the valid keys: {d}"
    );
    assert_eq!(d.column, Some(1));
}

#[test]
fn unknown_top_level_and_waiver_keys_are_reported() {
    let all = problems(&format!(
        "{GOOD_RULE}\n[[waiver]]\nrule = \"PTT-OK\"\nline = \"L1\"\nreason = \"r\"\nexpires = 2027-01-31\nexpiry = 2027-01-31\n\n[settings]\nx = 1\n"
    ));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_at(
        &all[0],
        "p.toml",
        14,
        Some("PTT-OK"),
        "unknown key `expiry`",
    );
    assert!(all[0].message.contains("did you mean `expires`?"));
    assert_at(&all[1], "p.toml", 16, None, "unknown key `settings`");
}

#[test]
fn bad_severity_lists_the_valid_ones() {
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"urgent\"\nrequire = \"true\"\n",
    );
    assert_at(&d, "p.toml", 4, Some("PTT-A"), "bad severity `urgent`");
    assert!(d.message.contains("low, medium, high, critical"), "{d}");
}

#[test]
fn wrong_types_and_invalid_ids_are_reported() {
    let all = problems(
        "[[rule]]\nid = \"PTT A\"\ntitle = 7\nseverity = \"low\"\nrequire = \"true\"\nenabled = \"yes\"\nreferences = [\"https://x\", 3]\n",
    );
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_at(
        &all[0],
        "p.toml",
        2,
        Some("PTT A"),
        "invalid rule ID `PTT A`",
    );
    assert_at(
        &all[1],
        "p.toml",
        3,
        Some("PTT A"),
        "`title` must be a string, found an integer",
    );
    assert_at(
        &all[2],
        "p.toml",
        6,
        Some("PTT A"),
        "`enabled` must be a boolean",
    );
    assert_at(
        &all[3],
        "p.toml",
        7,
        Some("PTT A"),
        "must hold only strings",
    );
}

#[test]
fn missing_required_keys_point_at_the_rule_header() {
    let all = problems("\n[[rule]]\nid = \"PTT-A\"\nwhen = \"true\"\n");
    let messages: Vec<&str> = all.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "missing required key `title`",
            "missing required key `severity`",
            "missing required key `require`"
        ]
    );
    for d in &all {
        assert_at(d, "p.toml", 2, Some("PTT-A"), "missing required key");
    }
}

#[test]
fn duplicate_rule_id_across_two_files_names_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.toml", GOOD_RULE);
    write(dir.path(), "b.toml", &format!("# second copy\n{GOOD_RULE}"));
    let errors = policy::load(dir.path()).expect_err("duplicate");
    assert_eq!(errors.diagnostics.len(), 1, "{errors}");
    let d = &errors.diagnostics[0];
    assert_at(
        d,
        &dir.path().join("b.toml").display().to_string(),
        4,
        Some("PTT-OK"),
        "duplicate rule ID `PTT-OK`",
    );
    let first = format!("{}:3:6", dir.path().join("a.toml").display());
    assert!(
        d.message.contains(&first),
        "names the first place {first}: {d}"
    );
}

#[test]
fn vars_must_be_a_table() {
    let d = problem("vars = [1, 2]\n");
    assert_at(&d, "p.toml", 1, None, "`vars` must be a table");
}

#[test]
fn cel_syntax_error_includes_cels_message() {
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"accessType ==== 'ALLOW_MEMBERS'\"\n",
    );
    assert_at(&d, "p.toml", 5, Some("PTT-A"), "`require` is not valid CEL");
    assert!(d.message.contains("Syntax error"), "cel's own message: {d}");
    assert_eq!(d.column, Some(11), "{d}");
}

#[test]
fn cel_syntax_errors_in_when_and_message_expr_are_reported_too() {
    let all = problems(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = \"(\"\nrequire = \"true\"\nmessage_expr = \"'a' +\"\n",
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_at(
        &all[0],
        "p.toml",
        5,
        Some("PTT-A"),
        "`when` is not valid CEL",
    );
    assert_at(
        &all[1],
        "p.toml",
        7,
        Some("PTT-A"),
        "`message_expr` is not valid CEL",
    );
}

#[test]
fn misspelt_field_is_caught_at_load_time() {
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = \"conectionType == 'TWO_WAY'\"\nrequire = \"true\"\n",
    );
    assert_at(
        &d,
        "p.toml",
        5,
        Some("PTT-A"),
        "unknown name `conectionType`",
    );
    assert!(d.message.contains("did you mean `connectionType`?"), "{d}");
}

#[test]
fn misspelling_hidden_behind_short_circuit_is_still_caught() {
    // On a ONE_WAY sample `||` never reaches the typo; on a TWO_WAY one it does.
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"connectionType == 'ONE_WAY' || acessType == 'ALLOW_MEMBERS'\"\n",
    );
    assert_at(&d, "p.toml", 5, Some("PTT-A"), "did you mean `accessType`?");
}

#[test]
fn misspelt_member_field_inside_all_is_caught() {
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"members.all(m, m.emial.endsWith('@example.com'))\"\n",
    );
    assert_at(&d, "p.toml", 5, Some("PTT-A"), "unknown field `emial`");
    assert!(d.message.contains("did you mean `email`?"), "{d}");
}

#[test]
fn undefined_var_is_caught() {
    let d = problem(
        "[vars]\nmax_allow_members = 25\n\n[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"size(members) <= vars.max_allow_member\"\n",
    );
    assert_at(&d, "p.toml", 8, Some("PTT-A"), "`vars.max_allow_member`");
    assert!(
        d.message.contains("did you mean `vars.max_allow_members`?"),
        "{d}"
    );
}

#[test]
fn results_of_the_wrong_type_are_caught() {
    let all = problems(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nwhen = \"connectionType\"\nrequire = \"size(members)\"\nmessage_expr = \"size(members) > 1\"\n",
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_at(
        &all[0],
        "p.toml",
        5,
        Some("PTT-A"),
        "`when` must evaluate to a bool, but gives a string",
    );
    assert_at(
        &all[1],
        "p.toml",
        6,
        Some("PTT-A"),
        "`require` must evaluate to a bool, but gives an int",
    );
    assert_at(
        &all[2],
        "p.toml",
        7,
        Some("PTT-A"),
        "`message_expr` must evaluate to a string, but gives a bool",
    );
}

#[test]
fn unknown_function_is_caught() {
    let d = problem(
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"members.all(m, m.email.matches('.*@example[.]com'))\"\n",
    );
    assert_at(&d, "p.toml", 5, Some("PTT-A"), "unknown function `matches`");
}

#[test]
fn disabled_rules_are_compiled_but_not_sample_checked() {
    let text = "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"conectionType == 'X'\"\nenabled = false\n";
    let set = policy::load_str(Path::new("p.toml"), text).expect("a disabled rule is not run");
    assert_eq!(set.enabled_rules().count(), 0);
    let broken = text.replace("conectionType == 'X'", "conectionType ==");
    assert_at(
        &problem(&broken),
        "p.toml",
        5,
        Some("PTT-A"),
        "not valid CEL",
    );
}

#[test]
fn undocumented_api_fields_may_be_used() {
    let set = policy::load_str(
        Path::new("p.toml"),
        "[[rule]]\nid = \"PTT-A\"\ntitle = \"t\"\nseverity = \"low\"\nrequire = \"pttRecordingEnabled == false && members.all(m, m.department != 'x')\"\n",
    );
    assert!(set.is_ok(), "{:?}", set.err());
}

#[test]
fn waiver_without_expiry_is_an_error() {
    let d = problem(&format!(
        "{GOOD_RULE}\n[[waiver]]\nrule = \"PTT-OK\"\nline = \"L1\"\nreason = \"approved in SEC-1\"\n"
    ));
    assert_at(
        &d,
        "p.toml",
        9,
        Some("PTT-OK"),
        "missing required key `expires`",
    );
}

#[test]
fn waiver_expiry_must_be_a_toml_date() {
    let all = problems(&format!(
        "{GOOD_RULE}\n[[waiver]]\nrule = \"PTT-OK\"\nline = \"L1\"\nreason = \"r\"\nexpires = \"2027-01-31\"\n\n[[waiver]]\nrule = \"PTT-OK\"\nline = \"L2\"\nreason = \"r\"\nexpires = 2027-01-31T10:00:00Z\n"
    ));
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_at(
        &all[0],
        "p.toml",
        13,
        Some("PTT-OK"),
        "must be a TOML date, written without quotes",
    );
    assert_at(
        &all[1],
        "p.toml",
        19,
        Some("PTT-OK"),
        "must be a date without a time",
    );
}

#[test]
fn waiver_with_empty_reason_is_an_error() {
    let d = problem(&format!(
        "{GOOD_RULE}\n[[waiver]]\nrule = \"PTT-OK\"\nline = \"L1\"\nreason = \"  \"\nexpires = 2027-01-31\n"
    ));
    assert_at(
        &d,
        "p.toml",
        12,
        Some("PTT-OK"),
        "`reason` must not be empty",
    );
}

#[test]
fn waiver_naming_an_unknown_rule_is_an_error() {
    let d = problem(&format!(
        "{GOOD_RULE}\n[[waiver]]\nrule = \"PTT-0K\"\nline = \"L1\"\nreason = \"r\"\nexpires = 2027-01-31\n"
    ));
    assert_at(&d, "p.toml", 10, Some("PTT-0K"), "which no policy defines");
    assert!(d.message.contains("did you mean `PTT-OK`?"), "{d}");
}

#[test]
fn waiver_may_name_a_rule_of_another_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "a-waivers.toml",
        "[[waiver]]\nrule = \"PTT-OK\"\nline = \"L1\"\nreason = \"r\"\nexpires = 2027-01-31\n",
    );
    write(dir.path(), "b-rules.toml", GOOD_RULE);
    let set = policy::load(dir.path()).expect("loads");
    assert_eq!(set.waivers.len(), 1);
    assert_eq!(set.waivers[0].line_no, 1);
}

#[test]
fn three_different_problems_in_one_file_are_all_reported() {
    let all = problems(
        r#"[[rule]]
id = "PTT-A"
title = "t"
severity = "severe"
require = "true"

[[rule]]
id = "PTT-B"
title = "t"
severity = "low"
require = "acessType == 'ALLOW_MEMBERS'"
colour = "red"
"#,
    );
    let summary: Vec<(Option<usize>, Option<&str>)> =
        all.iter().map(|d| (d.line, d.rule.as_deref())).collect();
    assert_eq!(
        summary,
        [
            (Some(4), Some("PTT-A")),
            (Some(11), Some("PTT-B")),
            (Some(12), Some("PTT-B"))
        ],
        "{all:#?}"
    );
    assert!(all[0].message.contains("bad severity"));
    assert!(all[1].message.contains("`acessType`"));
    assert!(all[2].message.contains("unknown key `colour`"));
}

#[test]
fn problems_in_several_files_are_all_reported_in_file_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "b.toml", "[[rule]]\nid = \"B\"\n");
    write(dir.path(), "a.toml", "x = \n");
    write(dir.path(), "notes.txt", "not a policy");
    let errors = policy::load(dir.path()).expect_err("problems");
    let files: Vec<String> = errors
        .diagnostics
        .iter()
        .filter_map(|d| d.file.file_name().map(|f| f.to_string_lossy().into_owned()))
        .collect();
    assert_eq!(files, ["a.toml", "b.toml", "b.toml", "b.toml"], "{errors}");
}

#[test]
fn missing_path_and_empty_folder_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope");
    let e = policy::load(&missing).expect_err("missing");
    assert_eq!(e.diagnostics[0].file, missing);
    assert!(e.diagnostics[0].message.contains("no such file or folder"));

    write(dir.path(), "README.md", "no policies here");
    let e = policy::load(dir.path()).expect_err("empty");
    assert!(
        e.diagnostics[0].message.contains("no .toml policy file"),
        "{e}"
    );
}

#[test]
fn folder_files_load_in_name_order_with_their_sha256() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "b.toml", &GOOD_RULE.replace("PTT-OK", "PTT-B"));
    write(dir.path(), "a.toml", &GOOD_RULE.replace("PTT-OK", "PTT-A"));
    write(
        dir.path(),
        "c.toml.bak",
        &GOOD_RULE.replace("PTT-OK", "PTT-C"),
    );
    let set = policy::load(dir.path()).expect("loads");
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["PTT-A", "PTT-B"]);
    assert_eq!(set.sources.len(), 2);
    assert!(set.sources[0].path.ends_with("a.toml"));
    // sha256 of the exact bytes, lower-case hex.
    let empty = policy::load_str(Path::new("e.toml"), "").expect("an empty file is valid");
    assert_eq!(
        empty.sources[0].sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(set.sources[0].sha256.len(), 64);
    assert_ne!(set.sources[0].sha256, set.sources[1].sha256);
}

fn baseline() -> PolicySet {
    match policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")) {
        Ok(set) => set,
        Err(e) => panic!("the baseline pack must load clean:\n{e}"),
    }
}

#[test]
fn baseline_pack_loads_clean() {
    let set = baseline();
    let ids: Vec<&str> = set.rules.iter().map(|r| r.id.as_str()).collect();
    for id in [
        "PTT-TWO-WAY-ALLOW-LIST",
        "PTT-AUTO-ANSWER-ALLOW-LIST",
        "PTT-AUTO-ANSWER-TWO-WAY-BLOCK",
        "PTT-MEMBERS-PEOPLE-ONLY",
        "PTT-BLOCK-LIST-EMPTY",
        "PTT-ALLOW-LIST-SIZE",
        "PTT-MEMBER-DOMAIN",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for r in &set.rules {
        assert!(r.enabled, "{}", r.id);
        assert!(r.remediation.is_some(), "{} has a remediation", r.id);
        assert!(r.description.is_some(), "{} has a description", r.id);
        assert!(!r.references.is_empty(), "{} has references", r.id);
        assert!(
            r.message().is_some() || r.message_expr_source().is_some(),
            "{} says why it failed",
            r.id
        );
    }
    assert_eq!(set.vars["max_allow_members"], serde_json::json!(25));
    assert_eq!(set.vars["approved_domains"], serde_json::json!([]));
    assert!(set.waivers.is_empty());
}

/// `demo` (and runs outside the repository) use the pack compiled into the binary
/// through `load_str`, whose file name differs: it must load clean that way too.
#[test]
fn built_in_baseline_loads_clean_from_memory() {
    let set = policy::load_str(Path::new("(built-in baseline)"), policy::BASELINE)
        .unwrap_or_else(|e| panic!("the built-in baseline must load clean:\n{e}"));
    assert!(set.rules.iter().all(|r| r.enabled));
    assert!(!set.rules.is_empty());
}
