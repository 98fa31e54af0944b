//! Static checks of a rule's CEL expressions, read off the syntax tree in one walk.
//!
//! The cel crate has no type checker, so a misspelt name would otherwise only show up
//! as `error` on every line of an audit, or, inside `has()`, as a test that is never
//! true and a rule that silently passes. Every expression of every rule is compiled
//! while the schema is checked (a syntax error is a load error even on a disabled
//! rule); the expressions of enabled rules are then checked here, then against sample
//! records ([`super::sample`]). Every problem and warning of an expression is
//! reported, at the line of its key.
//!
//! The walk follows what each part of an expression is, as far as the documented
//! schema ([`super::fields`]) tells: `members` is a list of members, the variable of a
//! loop over it (`all`, `exists`, `map`, `filter`, `sortBy`, …) is a member, so is
//! `members[0]`; a member's `numbers` is a list of numbers; `filter`, `distinct`,
//! `reverse`, `slice`, `sort` and `+` keep what a list holds. So it knows, for each
//! `x.f`, `has(x.f)`, `x.?f`, `x['f']` and `'f' in x`, whether `f` is asked of a
//! member, a number, `line`, `vars` or something it cannot tell (a map literal, an
//! undocumented field): only the first four are checked.
//!
//! Errors (see [`names`]): a `vars.x` that no `[vars]` table defines (unless the
//! expression also tests `has(vars.x)`), a `line.x` that `line` does not have, a call
//! of a function the environment does not have, a top-level name that is not
//! documented but close to one that is (`conectionType`), and a member or number field
//! read without `has()` that is not documented but close to one that is
//! (`m.emial.endsWith(…)`).
//!
//! Warnings: every other field name the API does not document, top-level or of a
//! member or number, read or tested with `has()` (`has(m.emial)` is false on every
//! member, so `!has(m.emial) || …` passes every line). The API adds fields, so those
//! load; the warning names the field and, when one is close, the documented field it
//! probably meant.
//!
//! The same walk finds what is valid but slow: a loop over `members` inside another,
//! `x in members` inside one, and `distinct()` of a list made from `members` (it
//! compares every pair) cost the square of the number of members: seconds to minutes
//! on a line with thousands. Those are warnings too: such a rule works on short lists,
//! and `--eval-timeout` bounds it on long ones.
//!
//! Last, the walk gathers what the "cannot fail" check ([`super::vacuous`]) needs: the
//! literals, the vars read, whether `line` is read.

use cel::common::ast::{operators, EntryExpr, Expr as A, IdedExpr, LiteralValue};

use super::expr::{CelEnv, Expr, ExprKey};
use super::fields::{LINE_FIELDS, SETTINGS_FIELDS};

mod names;
mod shape;
#[cfg(test)]
mod tests;

use shape::{Seen, Shape};

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

/// A field asked of a member or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldUse {
    /// [`Shape::Member`] or [`Shape::Number`].
    of: Shape,
    field: String,
    /// Tested (`has()`, `?.`, `in`) rather than read.
    test: bool,
}

/// What the checks need to know of an expression, gathered in a single walk.
#[derive(Debug, Default)]
struct Uses {
    /// `vars.x` and `line.x` (other than documented `line` fields) read outside
    /// `has()`, in tree order.
    read: Vec<Selection>,
    /// `vars.x` and `line.x` tested with `has()`.
    tested: Vec<Selection>,
    /// Every named function called (operators left out), first call first, each once.
    calls: Vec<Call>,
    /// Top-level names that are neither documented nor bound by the tool, each once.
    free: Vec<String>,
    /// Undeclared names used only as the target of a call (`strings` in
    /// `strings.quote(x)`), with the function: a namespace, or a misspelt field.
    qualifiers: Vec<(String, String)>,
    /// Member and number fields asked for, each once.
    fields: Vec<FieldUse>,
    /// The worst growth with the number of members, when worse than linear (the first
    /// place found among equals).
    cost: Option<Cost>,
    /// What the "cannot fail" check needs.
    facts: Facts,
}

/// What an expression depends on, for the "cannot fail" check.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct Facts {
    /// It reads `line`, which no sample record can stand for.
    pub(super) reads_line: bool,
    /// Its cost grows faster than the number of members.
    pub(super) superlinear: bool,
    /// Its string literals, each once, in tree order.
    pub(super) strings: Vec<String>,
    /// Its integer literals.
    pub(super) ints: Vec<i64>,
    /// The vars it reads or tests, each once.
    pub(super) vars: Vec<String>,
}

impl Facts {
    /// Adds what `other` depends on: the facts of a rule are those of its `when` and
    /// `require` together.
    pub(super) fn merge(&mut self, other: Facts) {
        self.reads_line |= other.reads_line;
        self.superlinear |= other.superlinear;
        for s in other.strings {
            push_once(&mut self.strings, s);
        }
        self.ints.extend(other.ints);
        for v in other.vars {
            push_once(&mut self.vars, v);
        }
    }
}

fn push_once<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// The names loops bind, innermost last, with what each is.
type Scope = Vec<(String, Shape)>;

impl Uses {
    fn of(e: &IdedExpr) -> Self {
        let mut uses = Uses::default();
        uses.visit(e, &mut Vec::new(), 0);
        uses.facts.superlinear = uses.cost.is_some();
        for (root, field) in uses.read.iter().chain(&uses.tested) {
            if *root == "vars" {
                push_once(&mut uses.facts.vars, field.clone());
            }
        }
        uses
    }

    fn costs(&mut self, power: usize, why: &'static str) {
        if self.cost.is_none_or(|c| c.power < power) {
            self.cost = Some(Cost { power, why });
        }
    }

    /// `scope` holds the loop variables in scope: `[1].all(vars, vars.x)` reads its own
    /// `vars`, not the policy's. `loops` counts the enclosing loops over `members`
    /// whose body `e` is in (each multiplies the cost of `e` by the number of members).
    fn visit(&mut self, e: &IdedExpr, scope: &mut Scope, loops: usize) -> Seen {
        match &e.expr {
            A::Ident(name) => self.ident(name, scope),
            A::Select(s) => {
                let operand = self.visit(&s.operand, scope, loops);
                Seen {
                    shape: self.select(operand.shape, &s.field, s.test),
                    members: operand.members,
                }
            }
            A::Call(c) => {
                if c.func_name.starts_with(|ch: char| ch.is_ascii_alphabetic()) {
                    let target = c.target.as_ref().and_then(|t| match &t.expr {
                        A::Ident(name) => Some(name.clone()),
                        _ => None,
                    });
                    push_once(&mut self.calls, (target, c.func_name.clone()));
                }
                let target = match c.target.as_deref() {
                    // `strings.quote(x)`: `strings` names no value; whether it names a
                    // namespace is for the environment to say, later.
                    Some(IdedExpr {
                        expr: A::Ident(name),
                        ..
                    }) if !is_known(name, scope) => {
                        push_once(&mut self.qualifiers, (name.clone(), c.func_name.clone()));
                        None
                    }
                    Some(t) => Some(self.visit(t, scope, loops)),
                    None => None,
                };
                let on_members = target.is_some_and(|t| t.members);
                if on_members && c.func_name == "distinct" {
                    self.costs(loops + 2, "calls `distinct()` on a list made from `members`, which compares every pair");
                }
                let mut members = on_members;
                let mut args = Vec::with_capacity(c.args.len());
                for (i, a) in c.args.iter().enumerate() {
                    let seen = self.visit(a, scope, loops);
                    if seen.members && i == 1 && loops > 0 && c.func_name == operators::IN {
                        self.costs(loops + 1, "tests `in members` inside a loop over `members`");
                    }
                    members |= seen.members;
                    args.push(seen.shape);
                }
                let shape = self.call_shape(&c.func_name, target.map(|t| t.shape), &args, &c.args);
                Seen { shape, members }
            }
            A::Comprehension(c) => {
                let range = self.visit(&c.iter_range, scope, loops);
                if range.members && loops > 0 {
                    self.costs(
                        loops + 1,
                        "loops over `members` inside another loop over `members`",
                    );
                }
                let init = self.visit(&c.accu_init, scope, loops);
                let depth = scope.len();
                match &c.iter_var2 {
                    // Two variables: index (or key) and element.
                    Some(v2) => {
                        scope.push((c.iter_var.clone(), Shape::Other));
                        scope.push((v2.clone(), range.shape.element()));
                    }
                    None => scope.push((c.iter_var.clone(), range.shape.element())),
                }
                scope.push((c.accu_var.clone(), init.shape));
                // The condition and step run once per element; the result once.
                let inner = loops + usize::from(range.members);
                let cond = self.visit(&c.loop_cond, scope, inner);
                let step = self.visit(&c.loop_step, scope, inner);
                // The accumulator ends up holding what the step builds (`filter`'s
                // `@result + [m]` is a list of members).
                if let Some(accu) = scope.last_mut() {
                    accu.1 = init.shape.join(step.shape);
                }
                let result = self.visit(&c.result, scope, loops);
                scope.truncate(depth);
                Seen {
                    shape: result.shape,
                    members: range.members
                        | init.members
                        | cond.members
                        | step.members
                        | result.members,
                }
            }
            A::List(l) => {
                let mut members = false;
                let mut element: Option<Shape> = None;
                for x in &l.elements {
                    let seen = self.visit(x, scope, loops);
                    members |= seen.members;
                    element = Some(match element {
                        None => seen.shape,
                        Some(s) if s == seen.shape => s,
                        Some(_) => Shape::Other,
                    });
                }
                Seen {
                    shape: element.map_or(Shape::EmptyList, Shape::list_of),
                    members,
                }
            }
            A::Map(m) => {
                let mut members = false;
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        members |= self.visit(&me.key, scope, loops).members;
                        members |= self.visit(&me.value, scope, loops).members;
                    }
                }
                Seen {
                    shape: Shape::Other,
                    members,
                }
            }
            A::Struct(s) => {
                let mut members = false;
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        members |= self.visit(&f.value, scope, loops).members;
                    }
                }
                Seen {
                    shape: Shape::Other,
                    members,
                }
            }
            A::Literal(v) => {
                match v {
                    LiteralValue::String(s) => {
                        push_once(&mut self.facts.strings, s.inner().to_string());
                    }
                    LiteralValue::Int(i) => self.facts.ints.push(*i.inner()),
                    _ => {}
                }
                Seen::OTHER
            }
            A::Unspecified => Seen::OTHER,
        }
    }

    fn ident(&mut self, name: &str, scope: &Scope) -> Seen {
        if let Some((_, shape)) = scope.iter().rev().find(|(n, _)| n == name) {
            return Seen::shape(*shape);
        }
        match name {
            "members" => Seen {
                shape: Shape::Members,
                members: true,
            },
            "vars" => Seen::shape(Shape::Vars),
            "line" => {
                self.facts.reads_line = true;
                Seen::shape(Shape::Line)
            }
            _ => {
                if !SETTINGS_FIELDS.contains(&name) {
                    push_once(&mut self.free, name.to_string());
                }
                Seen::OTHER
            }
        }
    }

    /// `x.field` (or `has(x.field)` when `test`) on an `x` of shape `of`.
    fn select(&mut self, of: Shape, field: &str, test: bool) -> Shape {
        let selection = match of {
            Shape::Vars => Some(("vars", field.to_string())),
            Shape::Line if !LINE_FIELDS.contains(&field) => Some(("line", field.to_string())),
            Shape::Member | Shape::Number => {
                push_once(
                    &mut self.fields,
                    FieldUse {
                        of,
                        field: field.to_string(),
                        test,
                    },
                );
                None
            }
            _ => None,
        };
        if let Some(sel) = selection {
            if test {
                self.tested.push(sel);
            } else {
                self.read.push(sel);
            }
        }
        if of == Shape::Member && field == "numbers" {
            Shape::Numbers
        } else {
            Shape::Other
        }
    }

    /// What a call gives, from what its target and arguments are; field names spelt
    /// as string literals (`m['email']`, `m.?email`, `'email' in m`) are checked too.
    fn call_shape(
        &mut self,
        func: &str,
        target: Option<Shape>,
        args: &[Shape],
        arg_exprs: &[IdedExpr],
    ) -> Shape {
        let literal = |i: usize| match arg_exprs.get(i).map(|a| &a.expr) {
            Some(A::Literal(LiteralValue::String(s))) => Some(s.inner().to_string()),
            _ => None,
        };
        let arg = |i: usize| args.get(i).copied().unwrap_or(Shape::Other);
        match (func, target) {
            (operators::INDEX, None) => match (arg(0), literal(1)) {
                (of @ (Shape::Member | Shape::Number), Some(field)) => {
                    self.select(of, &field, false)
                }
                (list, _) => list.element(),
            },
            (operators::OPT_SELECT, None) => {
                if let (of @ (Shape::Member | Shape::Number), Some(field)) = (arg(0), literal(1)) {
                    self.select(of, &field, true);
                }
                Shape::Other
            }
            (operators::IN, None) => {
                if let (Some(field), of @ (Shape::Member | Shape::Number)) = (literal(0), arg(1)) {
                    self.select(of, &field, true);
                }
                Shape::Other
            }
            (operators::ADD, None) if arg(0).is_list() || arg(1).is_list() => arg(0).join(arg(1)),
            (operators::CONDITIONAL, None) => arg(1).join(arg(2)),
            ("dyn", None) => arg(0),
            ("distinct" | "reverse" | "slice" | "sort" | "@sortByAssociatedKeys", Some(list))
                if list.is_list() =>
            {
                list
            }
            _ => Shape::Other,
        }
    }
}

/// Whether `name` names a value: a loop variable, a documented field, `line`, `vars`.
fn is_known(name: &str, scope: &Scope) -> bool {
    scope.iter().any(|(n, _)| n == name)
        || SETTINGS_FIELDS.contains(&name)
        || matches!(name, "line" | "vars")
}

/// What the syntax tree shows about one expression.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Verdict {
    /// Why it cannot work whatever the data, if it cannot: load errors, all of them.
    pub(super) problems: Vec<String>,
    /// What works but deserves a look (load warnings).
    pub(super) warnings: Vec<String>,
    /// What it depends on, for the "cannot fail" check.
    pub(super) facts: Facts,
}

/// Checks `e`, the `which` of a rule, in one walk of its syntax tree.
pub(super) fn check(
    env: &CelEnv,
    e: &Expr,
    which: ExprKey,
    vars: &serde_json::Map<String, serde_json::Value>,
) -> Verdict {
    let mut uses = Uses::of(e.program.expression());
    let facts = std::mem::take(&mut uses.facts);
    let mut verdict = names::judge(env, uses, which, vars);
    verdict.facts = facts;
    verdict
}
