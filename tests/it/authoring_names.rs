//! Policy authoring, part one: field names the API does not document are warned about
//! (inside `has()` too), every misspelt name is reported at once, and a site file
//! tunes the baseline's vars without editing it.

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use chrono::NaiveDate;
use ptt_audit::eval;
use ptt_audit::model::RuleStatus;
use ptt_audit::policy::{self, Diagnostic, PolicySet};
use serde_json::json;

use crate::common::write;

fn rule(require: &str) -> String {
    format!(
        "[[rule]]\nid = \"SITE-DOMAIN\"\ntitle = \"t\"\nseverity = \"medium\"\nrequire = \"{require}\"\n"
    )
}

fn load(text: &str) -> PolicySet {
    policy::load_str(Path::new("site.toml"), text).unwrap_or_else(|e| panic!("loads: {e}"))
}

fn check_policies(path: &Path) -> Output {
    Command::cargo_bin("ptt-audit")
        .expect("the binary")
        .arg("check-policies")
        .arg(path)
        .output()
        .expect("ptt-audit runs")
}

/// The motivating typo: valid CEL that passed every line. It loads (the API may add
/// fields), but with a warning that names file, line, rule, key and the fix.
#[test]
fn a_typo_inside_has_is_warned_about_with_a_suggestion() {
    let set = load(&rule(
        "members.all(m, !has(m.emial) || m.emial.endsWith('@example.com'))",
    ));
    let typo: Vec<&Diagnostic> = set
        .warnings
        .iter()
        .filter(|w| w.message.contains("`emial`"))
        .collect();
    assert_eq!(typo.len(), 1, "{:#?}", set.warnings);
    let w = typo[0];
    assert_eq!(
        (w.file.to_str(), w.line, w.column, w.rule.as_deref()),
        (Some("site.toml"), Some(5), Some(11), Some("SITE-DOMAIN"))
    );
    assert!(w.message.starts_with("`require` tests for `emial`, a member field the API does not document (did you mean `email`?)"), "{w}");

    // The same through the binary: valid (exit 0), the warning on stderr.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(
        dir.path(),
        "site.toml",
        &rule("members.all(m, !has(m.emial) || m.emial.endsWith('@example.com'))"),
    );
    let out = check_policies(&file);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("policies are valid"));
    assert!(
        stderr.contains(&format!(
            "warning: {}:5:11: rule SITE-DOMAIN: `require` tests for `emial`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `email`?"), "{stderr}");
}

#[test]
fn every_misspelt_name_is_an_error_all_at_once() {
    let errors = policy::load_str(
        Path::new("site.toml"),
        &rule("conectionType == 'TWO_WAY' && acessType == 'ALLOW_MEMBERS' && members.all(m, m.tpye == 'PEOPLE' && m.emial != '')"),
    )
    .expect_err("misspelt names do not load");
    let messages: Vec<&str> = errors
        .diagnostics
        .iter()
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        messages,
        [
            "`require` uses unknown name `conectionType` (did you mean `connectionType`?)",
            "`require` uses unknown name `acessType` (did you mean `accessType`?)",
            "`require` uses unknown field `tpye` of a member (did you mean `type`?)",
            "`require` uses unknown field `emial` of a member (did you mean `email`?)",
        ]
    );
    for d in &errors.diagnostics {
        assert_eq!((d.line, d.rule.as_deref()), (Some(5), Some("SITE-DOMAIN")));
    }
}

#[test]
fn two_undocumented_fields_in_one_expression_are_both_warned_about() {
    let set = load(&rule(
        "members.all(m, (!has(m.emial) || m.emial.endsWith('@example.com')) && (!has(m.departement) || m.numbers.all(n, has(n.primry))))",
    ));
    let fields: Vec<&str> = set
        .warnings
        .iter()
        .filter_map(|w| w.message.split('`').nth(3))
        .collect();
    assert_eq!(
        fields,
        ["emial", "departement", "primry"],
        "{:#?}",
        set.warnings
    );
    assert!(set.warnings[2].message.contains("did you mean `primary`?"));
    // Far from every documented name: a warning, but no guess.
    assert!(!set.warnings[1].message.contains("did you mean"));
}

#[test]
fn documented_fields_and_the_baseline_are_not_warned_about_for_names() {
    let set = load(&rule(
        "members.all(m, has(m.email) && m.type == 'PEOPLE' && m.numbers.exists(n, n.primary && n.esn != '')) && allowAutoAnswer == false",
    ));
    assert!(
        set.warnings.iter().all(|w| !w.message.contains("document")),
        "{:#?}",
        set.warnings
    );
    let baseline = policy::load_str(Path::new("baseline.toml"), policy::BASELINE).expect("loads");
    assert!(
        baseline
            .warnings
            .iter()
            .all(|w| !w.message.contains("does not document")),
        "{:#?}",
        baseline.warnings
    );
}

/// What the README promises: a site file next to the baseline sets a var again, the
/// later file wins, and the evaluation changes accordingly.
#[test]
fn a_site_file_overrides_a_baseline_var_and_changes_the_evaluation() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "baseline.toml", policy::BASELINE);
    let thirty: Vec<_> = (0..30)
        .map(|i| json!({"id": format!("p{i}"), "type": "PEOPLE", "email": format!("p{i}@example.com")}))
        .collect();
    let line = json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
                      "accessType": "ALLOW_MEMBERS", "members": thirty});
    let size_rule = |set: &PolicySet| {
        let index = set
            .rules
            .iter()
            .position(|r| r.id == "PTT-ALLOW-LIST-SIZE")
            .expect("the baseline's rule");
        let today = NaiveDate::from_ymd_opt(2026, 6, 15).expect("a date");
        eval::evaluate(set, "L1", &line, today)
            .into_iter()
            .find(|f| f.rule == index)
            .map(|f| f.status)
    };
    let alone = policy::load(dir.path()).expect("the baseline alone loads");
    assert_eq!(size_rule(&alone), Some(RuleStatus::Fail), "30 > 25");

    let site = write(
        dir.path(),
        "site.toml",
        "# Our allow lists are longer.\n[vars]\nmax_allow_members = 40\n",
    );
    let tuned = policy::load(dir.path()).expect("a site file may set a baseline var again");
    assert_eq!(tuned.vars["max_allow_members"], json!(40));
    assert_eq!(size_rule(&tuned), Some(RuleStatus::Pass), "30 <= 40");
    let origin = &tuned.var_origins["max_allow_members"];
    assert_eq!((origin.file.as_path(), origin.line), (site.as_path(), 3));
    assert_eq!(origin.overrides.len(), 1);
    assert!(origin.overrides[0].0.ends_with("baseline.toml"));
    assert_eq!(
        tuned.var_origins["approved_domains"].file,
        dir.path().join("baseline.toml")
    );

    // check-policies shows each var's value and where it came from.
    let out = check_policies(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let shown = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("max_allow_members = 40"))
        .unwrap_or_else(|| panic!("the var is listed:\n{stdout}"));
    assert!(
        shown.contains(&format!(
            "from {}:3 (overrides {}:",
            site.display(),
            dir.path().join("baseline.toml").display()
        )),
        "{shown}"
    );
}

#[test]
fn a_var_set_twice_in_one_file_is_still_an_error() {
    let errors = policy::load_str(
        Path::new("site.toml"),
        "[vars]\nmax_allow_members = 25\nother = 1\nmax_allow_members = 30\n",
    )
    .expect_err("twice in one file");
    assert_eq!(errors.diagnostics.len(), 1, "{errors}");
    let d = &errors.diagnostics[0];
    assert_eq!(d.line, Some(4), "{d}");
    assert!(
        d.message.contains("duplicate key `max_allow_members`"),
        "{d}"
    );
}

#[test]
fn an_override_that_changes_a_vars_type_is_warned_about() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "a.toml", "[vars]\nmax_allow_members = 25\n");
    write(dir.path(), "b.toml", "[vars]\nmax_allow_members = \"40\"\n");
    let set = policy::load(dir.path()).expect("loads");
    assert_eq!(set.vars["max_allow_members"], json!("40"));
    let w = set
        .warnings
        .iter()
        .find(|w| {
            w.message
                .starts_with("var `max_allow_members` is a string here but an integer")
        })
        .unwrap_or_else(|| panic!("a warning: {:#?}", set.warnings));
    assert_eq!(w.line, Some(2));
    assert!(w.file.ends_with("b.toml"));
}

/// The README's examples are what new users paste into `policies/site.toml` next to
/// the baseline: each must load there as written.
#[test]
fn readme_policy_examples_load_next_to_the_baseline() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap_or(""))
        // The credentials and config file examples are TOML too, not policies.
        .filter(|block| {
            ["[[rule]]", "[[waiver]]", "[vars]"]
                .iter()
                .any(|t| block.contains(t))
        })
        .collect();
    assert!(blocks.len() >= 2, "README has its policy examples");
    for (i, block) in blocks.iter().enumerate() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "baseline.toml", policy::BASELINE);
        write(dir.path(), "site.toml", block);
        let set = policy::load(dir.path()).unwrap_or_else(|e| {
            panic!("README example {i} does not load next to the baseline:\n{e}\n{block}")
        });
        assert!(
            set.warnings
                .iter()
                .all(|w| !w.message.contains("does not document")),
            "README example {i}: {:#?}",
            set.warnings
        );
    }
}
