//! Static checks of a rule's CEL expressions, read off the syntax tree in one walk.
//!
//! The cel crate has no type checker, so a misspelt name would otherwise only show up
//! as `error` on every line of an audit. Every expression of every rule is compiled
//! while the schema is checked (a syntax error is a load error even on a disabled
//! rule); the expressions of enabled rules are then checked here, then against sample
//! records ([`super::sample`]). Only the first problem of each expression is reported,
//! at the line of its key: a later one is often the same mistake seen again.
//!
//! Here, statically: `vars.x` must name a defined var (unless the expression also tests
//! `has(vars.x)`), `line.x` must be `line.id`, and every named function must exist in
//! the environment (probed by calling it with no argument: a known function answers
//! "no matching overload", an unknown one "undeclared reference").

use cel::common::ast::{EntryExpr, Expr as A, IdedExpr};

use super::expr::{CelEnv, Expr, ExprKey};
use super::suggest::closest;

/// A `vars.x` or `line.x` selection: the root and the field.
type Selection = (&'static str, String);

/// A named function call: the plain name its target spells, if any (`strings` in
/// `strings.quote(x)`), and the function's name.
type Call = (Option<String>, String);

/// What the checks need to know of an expression, gathered in a single walk.
#[derive(Debug, Default)]
struct Uses {
    /// `vars.x` and `line.x` (other than `line.id`) read outside `has()`, in tree order.
    read: Vec<Selection>,
    /// `vars.x` and `line.x` tested with `has()`.
    tested: Vec<Selection>,
    /// Every named function called (operators left out), first call first, each once.
    calls: Vec<Call>,
}

impl Uses {
    fn of(e: &IdedExpr) -> Self {
        let mut uses = Uses::default();
        uses.visit(e, &mut Vec::new());
        uses
    }

    /// `bound` holds the comprehension variables in scope: `[1].all(vars, vars.x)`
    /// reads its own `vars`, not the policy's.
    fn visit(&mut self, e: &IdedExpr, bound: &mut Vec<String>) {
        match &e.expr {
            A::Select(s) => {
                if let A::Ident(root) = &s.operand.expr {
                    if !bound.iter().any(|b| b == root) {
                        let sel = match root.as_str() {
                            "vars" => Some(("vars", s.field.clone())),
                            "line" if s.field != "id" => Some(("line", s.field.clone())),
                            _ => None,
                        };
                        if let Some(sel) = sel {
                            if s.test {
                                self.tested.push(sel);
                            } else {
                                self.read.push(sel);
                            }
                        }
                    }
                }
                self.visit(&s.operand, bound);
            }
            A::Call(c) => {
                if c.func_name.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
                    let target = c.target.as_ref().and_then(|t| match &t.expr {
                        A::Ident(name) => Some(name.clone()),
                        _ => None,
                    });
                    let call = (target, c.func_name.clone());
                    if !self.calls.contains(&call) {
                        self.calls.push(call);
                    }
                }
                if let Some(t) = &c.target {
                    self.visit(t, bound);
                }
                for a in &c.args {
                    self.visit(a, bound);
                }
            }
            A::Comprehension(c) => {
                self.visit(&c.iter_range, bound);
                self.visit(&c.accu_init, bound);
                let depth = bound.len();
                bound.push(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.push(c.accu_var.clone());
                self.visit(&c.loop_cond, bound);
                self.visit(&c.loop_step, bound);
                self.visit(&c.result, bound);
                bound.truncate(depth);
            }
            A::List(l) => {
                for x in &l.elements {
                    self.visit(x, bound);
                }
            }
            A::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.visit(&me.key, bound);
                        self.visit(&me.value, bound);
                    }
                }
            }
            A::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.visit(&f.value, bound);
                    }
                }
            }
            A::Ident(_) | A::Literal(_) | A::Unspecified => {}
        }
    }
}

/// Why `e`, the `which` of a rule, cannot work whatever the data, if it cannot: a
/// `vars.x` that no `[vars]` table defines, a `line.x` other than `line.id`, or a call
/// of a function the environment does not have.
pub(super) fn problem(
    env: &CelEnv,
    e: &Expr,
    which: ExprKey,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let key = which.as_str();
    let Uses {
        mut read,
        tested,
        calls,
    } = Uses::of(e.program.expression());
    // `has(vars.x) ? vars.x : default` is how an optional var is read.
    read.retain(|sel| !tested.contains(sel));
    for (root, field) in read {
        if root == "line" {
            return Some(format!(
                "`{key}` uses `line.{field}`, but `line` has only `id`"
            ));
        }
        if !vars.contains_key(&field) {
            let defined = if vars.is_empty() {
                "no var is defined".to_string()
            } else {
                let mut names: Vec<&str> = vars.keys().map(String::as_str).collect();
                names.sort_unstable();
                format!("defined: {}", names.join(", "))
            };
            let hint = match closest(&field, vars.keys().map(String::as_str)) {
                Some(s) => format!("did you mean `vars.{s}`? "),
                None => String::new(),
            };
            return Some(format!(
                "`{key}` uses `vars.{field}`, which no [vars] table defines ({hint}{defined})"
            ));
        }
    }

    for (target, name) in calls {
        if !function_exists(env, target.as_deref(), &name) {
            let note = if name == "matches" {
                " (regular expressions are not available; use contains, startsWith or endsWith)"
            } else {
                ""
            };
            return Some(format!("`{key}` calls unknown function `{name}`{note}"));
        }
    }
    None
}

/// Whether the environment knows `name`, as a global, member or (with `target`)
/// qualified function. Probed by calling it with no argument: a known function
/// answers "no matching overload" (or a value) rather than "undeclared reference".
/// Functions are pure, so the probe has no effect.
fn function_exists(env: &CelEnv, target: Option<&str>, name: &str) -> bool {
    let mut probes = vec![format!("null.{name}()")];
    match target {
        Some(t) => probes.push(format!("{t}.{name}()")),
        None => probes.push(format!("{name}()")),
    }
    probes.iter().any(|src| {
        let Ok(program) = env.0.compile(src) else {
            // Cannot tell: give the expression the benefit of the doubt.
            return true;
        };
        // In `t.f()` with `t` unbound, an undeclared `t` means `t.f` names no function.
        !matches!(
            program.execute(&env.context()),
            Err(cel::ExecutionError::UndeclaredReference(_))
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(src: &str) -> Uses {
        let env = CelEnv::new();
        let p = env.0.compile(src).expect("compiles");
        Uses::of(p.expression())
    }

    #[test]
    fn static_check_sees_vars_and_line_but_not_has_or_shadowed_names() {
        assert_eq!(
            uses("vars.a + line.name + line.id").read,
            [("vars", "a".to_string()), ("line", "name".to_string())]
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
}
