use super::names::function_exists;
use super::*;

fn uses(src: &str) -> Uses {
    let env = CelEnv::new();
    let p = env.0.compile(src).expect("compiles");
    Uses::of(p.expression())
}

fn verdict(src: &str, vars: serde_json::Value) -> Verdict {
    let env = CelEnv::new();
    let e = Expr {
        source: src.into(),
        program: env.0.compile(src).expect("compiles"),
        file: "p.toml".into(),
        pos: crate::policy::raw::Pos {
            line: 3,
            column: 11,
        },
    };
    let vars = vars.as_object().cloned().unwrap_or_default();
    check(&env, &e, ExprKey::Require, &vars)
}

#[test]
fn static_check_sees_vars_and_line_but_not_has_or_shadowed_names() {
    assert_eq!(
        uses("vars.a + line.nmae + line.id + line.location_name").read,
        [("vars", "a".to_string()), ("line", "nmae".to_string())]
    );
    let Uses { read, tested, .. } = uses("has(vars.a) && [1].all(vars, vars.x == 1)");
    assert!(read.is_empty());
    assert_eq!(tested, [("vars", "a".to_string())]);
}

#[test]
fn the_same_walk_collects_named_calls_once_each() {
    let found = uses("strings.quote(vars.a).lowerAscii() == size(x) + size(y) && 1 < 2");
    assert_eq!(found.read, [("vars", "a".to_string())]);
    assert_eq!(
        found.calls,
        [
            (None, "lowerAscii".to_string()),
            (Some("strings".to_string()), "quote".to_string()),
            (None, "size".to_string()),
        ]
    );
    // `strings` is a call's qualifier, not a name; `x` and `y` are names.
    assert_eq!(found.free, ["x", "y"]);
    assert_eq!(
        found.qualifiers,
        [("strings".to_string(), "quote".to_string())]
    );
}

/// The fields each expression asks of members and numbers, as (of, field, test).
fn fields(src: &str) -> Vec<(Shape, String, bool)> {
    uses(src)
        .fields
        .into_iter()
        .map(|f| (f.of, f.field, f.test))
        .collect()
}

#[test]
fn the_walk_knows_members_and_numbers_through_loops_lists_and_indexes() {
    use Shape::{Member as M, Number as N};
    let f = |s: &str| s.to_string();
    for (src, want) in [
        (
            "members.all(m, !has(m.emial) || m.emial.endsWith('@example.com'))",
            vec![(M, f("emial"), true), (M, f("emial"), false)],
        ),
        ("members[0].email == ''", vec![(M, f("email"), false)]),
        (
            "members.exists(m, m.numbers.exists(n, n.primry))",
            vec![(M, f("numbers"), false), (N, f("primry"), false)],
        ),
        (
            "members.filter(m, m.type == 'PLACE').map(m, m.displayNme).size() > 0",
            vec![(M, f("type"), false), (M, f("displayNme"), false)],
        ),
        (
            "(members + []).reverse().distinct()[0].numbers[0].esn != ''",
            vec![(M, f("numbers"), false), (N, f("esn"), false)],
        ),
        (
            "members.sortBy(m, m.lastName)[0].firstName != ''",
            vec![(M, f("lastName"), false), (M, f("firstName"), false)],
        ),
        (
            "members.all(m, 'emial' in m && m['tpye'] != '' && m.?mail.hasValue())",
            vec![
                (M, f("emial"), true),
                (M, f("tpye"), false),
                (M, f("mail"), true),
            ],
        ),
        // Not members: a loop variable shadowing `members`, a map literal, a map.
        (
            "[[{'x': 1}]].all(members, members.all(m, m.x == 1))",
            vec![],
        ),
        (
            "{'a': {'b': 1}}.a.b == 1 && [{'z': 1}].all(m, m.z == 1)",
            vec![],
        ),
    ] {
        assert_eq!(fields(src), want, "{src}");
    }
}

#[test]
fn a_typo_inside_has_is_a_warning_with_a_suggestion() {
    let v = verdict(
        "members.all(m, !has(m.emial) || m.emial.endsWith('@example.com'))",
        serde_json::json!({}),
    );
    assert_eq!(v.problems, Vec::<String>::new());
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    let w = &v.warnings[0];
    assert!(
        w.starts_with("`require` tests for `emial`, a member field the API does not document"),
        "{w}"
    );
    assert!(w.contains("(did you mean `email`?)"), "{w}");
}

#[test]
fn every_unknown_name_and_field_is_reported_not_only_the_first() {
    let v = verdict(
        "conectionType == 'TWO_WAY' && acessType == 'X' && members.all(m, m.emial != '' && \
         m.tpye != '' && has(m.departmnt) && m.numbers.all(n, n.extenson != ''))",
        serde_json::json!({}),
    );
    assert_eq!(
        v.problems,
        [
            "`require` uses unknown name `conectionType` (did you mean `connectionType`?)",
            "`require` uses unknown name `acessType` (did you mean `accessType`?)",
            "`require` uses unknown field `emial` of a member (did you mean `email`?)",
            "`require` uses unknown field `tpye` of a member (did you mean `type`?)",
            "`require` uses unknown field `extenson` of a number (did you mean `extension`?)",
        ]
    );
    assert_eq!(v.warnings.len(), 1, "{:?}", v.warnings);
    assert!(v.warnings[0].contains("`departmnt`"), "{:?}", v.warnings);
}

#[test]
fn undocumented_names_far_from_any_are_warnings() {
    let v = verdict(
        "pttRecording == false && members.all(m, m.department != 'x' && m.extension != '')",
        serde_json::json!({}),
    );
    // `m.extension` is a number's field: an error that says where it belongs.
    assert_eq!(
        v.problems,
        ["`require` uses unknown field `extension` of a member (`extension` is a field of a member's `numbers`, not of the member)"]
    );
    assert_eq!(v.warnings.len(), 2, "{:?}", v.warnings);
    assert!(
        v.warnings[0].starts_with(
            "`require` uses `pttRecording`, a top-level field the API does not document"
        ),
        "{}",
        v.warnings[0]
    );
    assert!(
        v.warnings[1].starts_with("`require` reads `department`, a member field the API does not document: where it is missing, this rule is error"),
        "{}",
        v.warnings[1]
    );
}

#[test]
fn names_the_environment_has_and_namespaces_are_not_fields() {
    let v = verdict(
        "type(allowAutoAnswer) == bool && strings.quote('a') != '' && lists.range(2) == [0, 1] \
         && optional.of(1).hasValue()",
        serde_json::json!({}),
    );
    assert_eq!(
        v,
        Verdict {
            facts: v.facts.clone(),
            ..Verdict::default()
        }
    );
    // A misspelt field used as the target of a method is still a name.
    let v = verdict("conectionType.startsWith('T')", serde_json::json!({}));
    assert_eq!(
        v.problems,
        ["`require` uses unknown name `conectionType` (did you mean `connectionType`?)"]
    );
}

#[test]
fn every_undefined_var_bad_line_field_and_unknown_function_is_reported() {
    let v = verdict(
        "vars.max_alow == 1 && vars.other == 2 && line.nam == '' && size(x.matches('a')) > 0 \
         && vars.max_alow == 1",
        serde_json::json!({"max_allow": 1}),
    );
    assert_eq!(v.problems.len(), 4, "{:?}", v.problems);
    assert!(
        v.problems[0].contains("`vars.max_alow`")
            && v.problems[0].contains("did you mean `vars.max_allow`?")
    );
    assert!(v.problems[1].contains("`vars.other`"));
    assert!(v.problems[2].contains("`line.nam`, but `line` has only `id`"));
    assert!(v.problems[2].contains("did you mean `line.name`?"));
    assert!(v.problems[3].contains("unknown function `matches`"));
}

#[test]
fn the_walk_gathers_what_the_cannot_fail_check_needs() {
    let facts = uses(
        "size(vars.approved) == 0 || members.all(m, m.email.endsWith('@' + vars.approved[0])) \
         && size(members) <= 25 && has(vars.opt)",
    )
    .facts;
    assert_eq!(facts.strings, ["@"]);
    assert_eq!(facts.ints, [0, 0, 25]);
    assert_eq!(facts.vars, ["approved", "opt"]);
    assert!(!facts.reads_line && !facts.superlinear);
    assert!(uses("line.id == 'x'").facts.reads_line);
    assert!(uses("members.all(a, a in members)").facts.superlinear);
}

#[test]
fn the_same_walk_finds_costs_that_grow_faster_than_the_members() {
    let power = |src: &str| uses(src).cost.map(|c| c.power);
    for (src, want) in [
        (
            "members.all(a, members.exists_one(b, b.id == a.id))",
            Some(2),
        ),
        (
            "members.all(a, members.all(b, members.all(c, a.id != '')))",
            Some(3),
        ),
        (
            "members.filter(m, true).all(a, members.exists(b, b == a))",
            Some(2),
        ),
        ("members.all(a, a in members)", Some(2)),
        (
            "size(members.map(m, m.id).distinct()) == size(members)",
            Some(2),
        ),
        (
            "members.all(a, members.map(m, m.id).distinct() != [])",
            Some(3),
        ),
        // Linear: one loop, O(1) or unrelated work inside it.
        ("size(members) > 0 && members.all(m, has(m.email))", None),
        ("members.all(a, size(members) > 1 && members[0] != a)", None),
        ("members.all(a, a.numbers.all(n, n.primary))", None),
        ("members.all(m, m.id in vars.ids)", None),
        ("[1, 2].all(x, members.exists(m, true))", None),
        // A comprehension variable named `members` is not the line's.
        ("[[1]].all(members, members.all(m, true))", None),
        // The result of a loop runs once, not per member.
        ("members.map(m, m.id).size() > 0", None),
    ] {
        assert_eq!(power(src), want, "{src}");
    }
}

#[test]
fn a_quadratic_rule_is_a_warning_naming_its_key() {
    let v = verdict(
        "members.all(a, members.exists_one(b, b.id == a.id))",
        serde_json::json!({}),
    );
    assert!(v.problems.is_empty());
    assert_eq!(v.warnings.len(), 1);
    let w = &v.warnings[0];
    assert!(
        w.starts_with("`require` loops over `members` inside another"),
        "{w}"
    );
    assert!(w.contains("the square of the number of members"), "{w}");
}

#[test]
fn function_probe_knows_stdlib_extension_and_qualified_functions() {
    let env = CelEnv::new();
    for (target, name) in [
        (None, "size"),
        (None, "string"),
        (None, "int"),
        (Some("x"), "endsWith"),
        (Some("x"), "lowerAscii"),
        (Some("x"), "join"),
        (Some("x"), "distinct"),
        (Some("strings"), "quote"),
        (Some("lists"), "range"),
    ] {
        assert!(function_exists(&env, target, name), "{name}");
    }
    assert!(!function_exists(&env, Some("x"), "matches"));
    assert!(!function_exists(&env, None, "nosuchfn"));
    assert!(!function_exists(&env, Some("strings"), "nosuchfn"));
}
