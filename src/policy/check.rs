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
//! `has(vars.x)`), `line.x` must be one of `line`'s fields (`id`, `name`, `location_id`,
//! `location_name`, `phone_number`, `extension`), and every named function must exist in
//! the environment (probed by calling it with no argument: a known function answers
//! "no matching overload", an unknown one "undeclared reference").
//!
//! The same walk finds what is valid but slow: a loop over `members` (`all`, `exists`,
//! `exists_one`, `map`, `filter`) inside another, `x in members` inside one, and
//! `distinct()` of a list made from `members` (it compares every pair) cost the square
//! of the number of members: seconds to minutes on a line with thousands. Those are
//! warnings, not errors: such a rule works on short lists, and `--eval-timeout` bounds
//! it on long ones.

use cel::common::ast::{EntryExpr, Expr as A, IdedExpr};

use super::expr::{CelEnv, Expr, ExprKey, LINE_FIELDS};
use super::suggest::closest;

/// A `vars.x` or `line.x` selection: the root and the field.
type Selection = (&'static str, String);

/// A named function call: the plain name its target spells, if any (`strings` in
/// `strings.quote(x)`), and the function's name.
type Call = (Option<String>, String);

/// How an expression's cost grows with the number of members, when worse than linear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cost {
    /// The exponent: 2 for the square of the number of members.
    power: usize,
    /// What makes it so, for the message.
    why: &'static str,
}

/// What the checks need to know of an expression, gathered in a single walk.
#[derive(Debug, Default)]
struct Uses {
    /// `vars.x`, and `line.x` other than `line`'s own fields, read outside `has()`, in
    /// tree order.
    read: Vec<Selection>,
    /// `vars.x` and `line.x` tested with `has()`.
    tested: Vec<Selection>,
    /// Every named function called (operators left out), first call first, each once.
    calls: Vec<Call>,
    /// The worst growth with the number of members, when worse than linear (the first
    /// place found among equals).
    cost: Option<Cost>,
}

impl Uses {
    fn of(e: &IdedExpr) -> Self {
        let mut uses = Uses::default();
        uses.visit(e, &mut Vec::new(), 0);
        uses
    }

    fn costs(&mut self, power: usize, why: &'static str) {
        if self.cost.is_none_or(|c| c.power < power) {
            self.cost = Some(Cost { power, why });
        }
    }

    /// `bound` holds the comprehension variables in scope: `[1].all(vars, vars.x)`
    /// reads its own `vars`, not the policy's. `loops` counts the enclosing loops over
    /// `members` whose body `e` is in (each multiplies the cost of `e` by the number of
    /// members). Returns whether `e` reads the policy's `members`.
    fn visit(&mut self, e: &IdedExpr, bound: &mut Vec<String>, loops: usize) -> bool {
        match &e.expr {
            A::Select(s) => {
                if let A::Ident(root) = &s.operand.expr {
                    if !bound.iter().any(|b| b == root) {
                        let sel = match root.as_str() {
                            "vars" => Some(("vars", s.field.clone())),
                            "line" if !LINE_FIELDS.contains(&s.field.as_str()) => {
                                Some(("line", s.field.clone()))
                            }
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
                self.visit(&s.operand, bound, loops)
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
                let on_members = c
                    .target
                    .as_ref()
                    .is_some_and(|t| self.visit(t, bound, loops));
                if on_members && c.func_name == "distinct" {
                    self.costs(loops + 2, "calls `distinct()` on a list made from `members`, which compares every pair");
                }
                let mut reads = on_members;
                for (i, a) in c.args.iter().enumerate() {
                    let arg_reads = self.visit(a, bound, loops);
                    if arg_reads && i == 1 && loops > 0 && c.func_name == "@in" {
                        self.costs(loops + 1, "tests `in members` inside a loop over `members`");
                    }
                    reads |= arg_reads;
                }
                reads
            }
            A::Comprehension(c) => {
                let over_members = self.visit(&c.iter_range, bound, loops);
                if over_members && loops > 0 {
                    self.costs(
                        loops + 1,
                        "loops over `members` inside another loop over `members`",
                    );
                }
                let mut reads = over_members | self.visit(&c.accu_init, bound, loops);
                let depth = bound.len();
                bound.push(c.iter_var.clone());
                bound.extend(c.iter_var2.clone());
                bound.push(c.accu_var.clone());
                // The condition and step run once per element; the result once.
                let inner = loops + usize::from(over_members);
                reads |= self.visit(&c.loop_cond, bound, inner);
                reads |= self.visit(&c.loop_step, bound, inner);
                reads |= self.visit(&c.result, bound, loops);
                bound.truncate(depth);
                reads
            }
            A::List(l) => l
                .elements
                .iter()
                .fold(false, |reads, x| self.visit(x, bound, loops) | reads),
            A::Map(m) => m
                .entries
                .iter()
                .fold(false, |reads, entry| match &entry.expr {
                    EntryExpr::MapEntry(me) => {
                        let key = self.visit(&me.key, bound, loops);
                        self.visit(&me.value, bound, loops) | key | reads
                    }
                    EntryExpr::StructField(_) => reads,
                }),
            A::Struct(s) => s
                .entries
                .iter()
                .fold(false, |reads, entry| match &entry.expr {
                    EntryExpr::StructField(f) => self.visit(&f.value, bound, loops) | reads,
                    EntryExpr::MapEntry(_) => reads,
                }),
            A::Ident(name) => name == "members" && !bound.iter().any(|b| b == name),
            A::Literal(_) | A::Unspecified => false,
        }
    }
}

/// What the syntax tree shows about one expression.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Why it cannot work whatever the data, if it cannot (a load error).
    pub(super) problem: Option<String>,
    /// What works but deserves a look (load warnings).
    pub(super) warnings: Vec<String>,
}

/// Checks `e`, the `which` of a rule, in one walk of its syntax tree.
///
/// A problem is a `vars.x` that no `[vars]` table defines, a `line.x` that is not one
/// of `line`'s fields, or a call of a function the environment does not have. A warning is a
/// cost that grows faster than the number of members.
pub(super) fn check(
    env: &CelEnv,
    e: &Expr,
    which: ExprKey,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Verdict {
    let mut uses = Uses::of(e.program.expression());
    let warnings = uses
        .cost
        .take()
        .map(|cost| cost_warning(cost, which))
        .into_iter()
        .collect();
    Verdict {
        problem: problem(env, uses, which, vars),
        warnings,
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

fn problem(
    env: &CelEnv,
    uses: Uses,
    which: ExprKey,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Option<String> {
    let key = which.as_str();
    let Uses {
        mut read,
        tested,
        calls,
        ..
    } = uses;
    // `has(vars.x) ? vars.x : default` is how an optional var is read.
    read.retain(|sel| !tested.contains(sel));
    for (root, field) in read {
        if root == "line" {
            let hint = match closest(&field, LINE_FIELDS.into_iter()) {
                Some(s) => format!("did you mean `line.{s}`? "),
                None => String::new(),
            };
            return Some(format!(
                "`{key}` uses `line.{field}`, but `line` has no such field ({hint}it has {})",
                LINE_FIELDS.join(", ")
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
        let env = CelEnv::new();
        let src = "members.all(a, members.exists_one(b, b.id == a.id))";
        let e = Expr {
            source: src.into(),
            program: env.0.compile(src).expect("compiles"),
            file: "p.toml".into(),
            pos: super::super::raw::Pos {
                line: 3,
                column: 11,
            },
        };
        let verdict = check(&env, &e, ExprKey::Require, &serde_json::Map::new());
        assert_eq!(verdict.problem, None);
        assert_eq!(verdict.warnings.len(), 1);
        let w = &verdict.warnings[0];
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
}
