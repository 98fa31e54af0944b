//! From what the walk saw to problems and warnings: names, fields, functions, cost.

use super::{Cost, FieldUse, Shape, Uses, Verdict};
use crate::policy::expr::{CelEnv, ExprKey};
use crate::policy::fields::{top_names, LINE_FIELDS, MEMBER_FIELDS, NUMBER_FIELDS};
use crate::policy::suggest::closest;

/// Every problem and warning of one expression, in a fixed order: vars, `line`,
/// top-level names, member and number fields, functions, cost.
pub(super) fn judge(
    env: &CelEnv,
    uses: Uses,
    which: ExprKey,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Verdict {
    let key = which.as_str();
    let Uses {
        mut read,
        tested,
        calls,
        mut free,
        qualifiers,
        fields,
        cost,
        ..
    } = uses;
    let mut v = Verdict::default();

    // `has(vars.x) ? vars.x : default` is how an optional var is read.
    read.retain(|sel| !tested.contains(sel));
    let mut seen = Vec::new();
    for (root, field) in read {
        if seen.contains(&(root, field.clone())) {
            continue;
        }
        seen.push((root, field.clone()));
        if root == "line" {
            let has = LINE_FIELDS
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let hint = match closest(&field, LINE_FIELDS.into_iter()) {
                Some(s) => format!(" (did you mean `line.{s}`?)"),
                None => String::new(),
            };
            v.problems.push(format!(
                "`{key}` uses `line.{field}`, but `line` has only {has}{hint}"
            ));
        } else if !vars.contains_key(&field) {
            v.problems.push(undefined_var(key, &field, vars));
        }
    }

    // A qualifier that names no namespace (`conectionType.startsWith('T')`) is a name.
    for (name, func) in qualifiers {
        if !qualified_function_exists(env, &name, &func) && !free.contains(&name) {
            free.push(name);
        }
    }
    for name in free {
        if value_exists(env, &name) {
            // A name the environment itself has: `int` in `type(x) == int`.
            continue;
        }
        match closest(&name, top_names()) {
            Some(s) => v.problems.push(format!(
                "`{key}` uses unknown name `{name}` (did you mean `{s}`?)"
            )),
            None => v.warnings.push(format!(
                "`{key}` uses `{name}`, a top-level field the API does not document: on a \
                 line whose settings lack it, this rule is error"
            )),
        }
    }

    field_names(key, &fields, &mut v);

    for (target, name) in calls {
        if !function_exists(env, target.as_deref(), &name) {
            let note = if name == "matches" {
                " (regular expressions are not available; use contains, startsWith or endsWith)"
            } else {
                ""
            };
            v.problems
                .push(format!("`{key}` calls unknown function `{name}`{note}"));
        }
    }

    v.warnings.extend(cost.map(|c| cost_warning(c, which)));
    v
}

fn undefined_var(
    key: &str,
    field: &str,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> String {
    let defined = if vars.is_empty() {
        "no var is defined".to_string()
    } else {
        let mut names: Vec<&str> = vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        format!("defined: {}", names.join(", "))
    };
    let hint = match closest(field, vars.keys().map(String::as_str)) {
        Some(s) => format!("did you mean `vars.{s}`? "),
        None => String::new(),
    };
    format!("`{key}` uses `vars.{field}`, which no [vars] table defines ({hint}{defined})")
}

/// Member and number fields the API does not document. Read without `has()` and close
/// to a documented field (or a field of the other kind), it is an error: on real data
/// it fails on every member. Otherwise a warning: the API adds fields.
fn field_names(key: &str, fields: &[FieldUse], v: &mut Verdict) {
    let mut done: Vec<(Shape, &str)> = Vec::new();
    for f in fields {
        let (documented, other, what, other_what) = match f.of {
            Shape::Member => (
                MEMBER_FIELDS,
                NUMBER_FIELDS,
                "a member field",
                "of a member's `numbers`, not of the member",
            ),
            _ => (
                NUMBER_FIELDS,
                MEMBER_FIELDS,
                "a field of a member's `numbers`",
                "of the member, not of its `numbers`",
            ),
        };
        let name = f.field.as_str();
        if documented.contains(&name) || done.contains(&(f.of, name)) {
            continue;
        }
        done.push((f.of, name));
        let uses_of = |test: bool| {
            fields
                .iter()
                .any(|g| g.of == f.of && g.field == name && g.test == test)
        };
        let (read, tested) = (uses_of(false), uses_of(true));
        let hint = if other.contains(&name) {
            Some(format!("`{name}` is a field {other_what}"))
        } else {
            closest(name, documented.iter().copied()).map(|s| format!("did you mean `{s}`?"))
        };
        let subject = if f.of == Shape::Member {
            "of a member"
        } else {
            "of a number"
        };
        match (&hint, read && !tested) {
            (Some(hint), true) => v.problems.push(format!(
                "`{key}` uses unknown field `{name}` {subject} ({hint})"
            )),
            _ => {
                let hint = hint.map(|h| format!(" ({h})")).unwrap_or_default();
                v.warnings.push(if tested {
                    format!(
                        "`{key}` tests for `{name}`, {what} the API does not document{hint}: \
                         unless the API returns such a field, the test is false every time"
                    )
                } else {
                    format!(
                        "`{key}` reads `{name}`, {what} the API does not document{hint}: where \
                         it is missing, this rule is error"
                    )
                });
            }
        }
    }
}

fn cost_warning(cost: Cost, which: ExprKey) -> String {
    let growth = match cost.power {
        2 => "the square".to_string(),
        3 => "the cube".to_string(),
        n => format!("the {n}th power"),
    };
    format!(
        "`{}` {}: its cost grows with {growth} of the number of members (minutes on a line \
         with 10,000); past --eval-timeout a result is error, not a verdict",
        which.as_str(),
        cost.why
    )
}

/// Whether running `src` in an empty context fails for want of a name.
fn undeclared(env: &CelEnv, src: &str) -> Option<bool> {
    let program = env.0.compile(src).ok()?;
    Some(matches!(
        program.execute(&env.context()),
        Err(cel::ExecutionError::UndeclaredReference(_))
    ))
}

/// Whether the environment itself binds `name` (type names such as `int`).
fn value_exists(env: &CelEnv, name: &str) -> bool {
    // Cannot tell: treat it as a name the rule reads, which is only ever a warning.
    undeclared(env, name) == Some(false)
}

/// Whether `target.name` is a qualified function (`strings.quote`), probed with no
/// argument while `target` is unbound.
fn qualified_function_exists(env: &CelEnv, target: &str, name: &str) -> bool {
    undeclared(env, &format!("{target}.{name}()")) == Some(false)
}

/// Whether the environment knows `name`, as a global, member or (with `target`)
/// qualified function. Probed by calling it with no argument: a known function
/// answers "no matching overload" (or a value) rather than "undeclared reference".
/// Functions are pure, so the probe has no effect.
pub(super) fn function_exists(env: &CelEnv, target: Option<&str>, name: &str) -> bool {
    let mut probes = vec![format!("null.{name}()")];
    match target {
        Some(t) => probes.push(format!("{t}.{name}()")),
        None => probes.push(format!("{name}()")),
    }
    // Cannot tell (does not compile): give the expression the benefit of the doubt.
    probes.iter().any(|src| undeclared(env, src) != Some(true))
}
