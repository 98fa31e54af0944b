//! The CEL side of policies: the one shared environment, compiled expressions, and the
//! binding of a line's settings to CEL variables.
//!
//! Settings are bound without copying their strings: the CEL values borrow from the
//! JSON they came from, which keeps evaluation of a line cheap.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use cel::common::traits::{Container, Indexer, Iterable, Sizer, Zeroer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::{Builtin, BuiltinRef, Val};
use cel::{Context, Env, Program, Value};

use super::fields::LINE_FIELDS;
use super::raw::Pos;
use crate::model::LineIdentity;

/// The CEL environment every policy expression is compiled and run with: the standard
/// library plus the `strings` (`lowerAscii`, `split`, `join`, `format`, ...) and
/// `lists` (`distinct`, `flatten`, `sort`, ...) extensions.
#[derive(Clone)]
pub(crate) struct CelEnv(pub(crate) Arc<Env>);

impl CelEnv {
    pub(crate) fn new() -> Self {
        let mut env = Env::stdlib();
        // Both register fixed overloads into a fresh stdlib env: they can only fail if
        // the cel crate itself is inconsistent, which a test would catch.
        env.add_extension(cel::extensions::strings)
            .expect("cel strings extension registers on a stdlib Env");
        env.add_extension(cel::extensions::lists)
            .expect("cel lists extension registers on a stdlib Env");
        CelEnv(Arc::new(env))
    }

    /// A fresh root context sharing this environment.
    pub(crate) fn context<'v>(&self) -> Context<'static, 'v> {
        Context::with_env(Arc::clone(&self.0))
    }
}

impl fmt::Debug for CelEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CelEnv(stdlib + strings + lists)")
    }
}

/// Which key of a rule an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub(crate) enum ExprKey {
    When,
    Require,
    MessageExpr,
}

impl ExprKey {
    pub(crate) fn as_str(self) -> &'static str {
        self.into()
    }

    /// The CEL type the expression must produce.
    pub(crate) fn expected(self) -> &'static str {
        match self {
            ExprKey::When | ExprKey::Require => "bool",
            ExprKey::MessageExpr => "string",
        }
    }
}

/// A compiled expression, with its source and where it was written.
#[derive(Debug)]
pub(crate) struct Expr {
    pub(crate) source: String,
    pub(crate) program: Program,
    pub(crate) file: PathBuf,
    pub(crate) pos: Pos,
}

impl Expr {
    pub(crate) fn run(&self, ctx: &Context<'_, '_>) -> Result<Value, cel::ExecutionError> {
        self.program.execute(ctx)
    }
}

/// The CEL type name of a result, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Opaque(_) => "opaque",
        Value::Struct(_) => "struct",
        Value::Null => "null",
    }
}

/// `"an int"`, `"a string"`: a type name for a sentence.
pub(crate) fn with_article(name: &str) -> String {
    let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {name}")
}

/// A JSON value as a CEL value borrowing its strings. Integers that fit `i64` become
/// `int` (so `size(members) > vars.max` compares like with like), larger ones `uint`,
/// the rest `double`.
pub(crate) fn json_to_val<'v>(v: &'v serde_json::Value) -> Box<dyn Val + 'v> {
    use serde_json::Value as J;
    match v {
        J::Null => Box::new(CelNull),
        J::Bool(b) => Box::new(CelBool::from(*b)),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        J::String(s) => Box::new(CelString::from(s.as_str())),
        J::Array(items) => Box::new(CelList::from(
            items.iter().map(json_to_val).collect::<Vec<_>>(),
        )),
        J::Object(map) => Box::new(object_to_val(map)),
    }
}

fn object_to_val<'v>(map: &'v serde_json::Map<String, serde_json::Value>) -> SharedMap<'v> {
    SharedMap(Arc::new(CelMap::from(
        map.iter()
            .map(|(k, v)| (CelMapKey::from(k.as_str()), json_to_val(v)))
            .collect::<HashMap<_, _>>(),
    )))
}

/// A CEL map that is cheap to clone: CEL clones each element of a list that a macro
/// iterates (`members.all(m, …)`), and cloning a map rebuilds its hash table, the
/// nested ones too (a twelfth of the CPU per line with the baseline pack). Everything
/// else goes to the map inside, which is also what CEL's functions and `==` see
/// ([`Val::as_builtin`]), so it behaves exactly as a built-in map.
#[derive(Debug)]
struct SharedMap<'v>(Arc<CelMap<'v>>);

impl<'v> Val for SharedMap<'v> {
    fn get_type(&self) -> &cel::common::types::Type {
        self.0.get_type()
    }

    fn cel_type() -> &'static cel::common::types::Type {
        <CelMap<'static> as Val>::cel_type()
    }

    fn as_container(&self) -> Option<&dyn Container> {
        self.0.as_container()
    }

    fn as_indexer<'b, 'w>(&'b self) -> Option<&'b (dyn Indexer + 'w)>
    where
        Self: 'w,
    {
        self.0.as_indexer()
    }

    fn into_indexer<'w>(self: Box<Self>) -> Option<Box<dyn Indexer + 'w>>
    where
        Self: 'w,
    {
        Box::new(self.unshare()).into_indexer()
    }

    fn as_iterable<'b, 'w>(&'b self) -> Option<&'b (dyn Iterable + 'w)>
    where
        Self: 'w,
    {
        self.0.as_iterable()
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        self.0.as_sizer()
    }

    fn as_zeroer(&self) -> Option<&dyn Zeroer> {
        self.0.as_zeroer()
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.0.equals(other)
    }

    fn clone_as_boxed<'w>(&self) -> Box<dyn Val + 'w>
    where
        Self: 'w,
    {
        Box::new(SharedMap(Arc::clone(&self.0)))
    }

    fn as_builtin<'b, 'w>(&'b self) -> BuiltinRef<'b, 'w>
    where
        Self: 'w,
    {
        self.0.as_builtin()
    }

    fn into_builtin<'w>(self: Box<Self>) -> Option<Builtin<'w>>
    where
        Self: 'w,
    {
        Box::new(self.unshare()).into_builtin()
    }
}

impl<'v> SharedMap<'v> {
    /// The map itself, copied only if another clone still shares it.
    fn unshare(self) -> CelMap<'v> {
        Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone())
    }
}

/// Binds a line's variables, as the contract describes them: every top-level field of
/// `settings` under its own name, `members` as `[]` when absent or null, `line` with
/// [`LINE_FIELDS`] (`line.id`, and the identity's parts as strings, empty when
/// unknown, so that `line.location_name == 'Lobby'` is simply false for a line whose
/// location nobody told us) and `vars`. `line` and `vars` are bound last, so an API
/// field of the same name cannot hide them.
pub(crate) fn bind<'v>(
    ctx: &mut Context<'_, 'v>,
    settings: &'v serde_json::Map<String, serde_json::Value>,
    line_id: &'v str,
    identity: &'v LineIdentity,
    vars: &'v serde_json::Map<String, serde_json::Value>,
) {
    for (name, value) in settings {
        ctx.add_variable_as_val(name.as_str(), json_to_val(value));
    }
    if settings
        .get("members")
        .is_none_or(serde_json::Value::is_null)
    {
        ctx.add_variable_as_val("members", Box::new(CelList::from(Vec::new())));
    }
    let mut line = HashMap::with_capacity(LINE_FIELDS.len());
    let values = std::iter::once(Some(line_id)).chain(identity.values());
    for (field, value) in LINE_FIELDS.into_iter().zip(values) {
        line.insert(
            CelMapKey::from(field),
            Box::new(CelString::from(value.unwrap_or(""))) as Box<dyn Val + 'v>,
        );
    }
    ctx.add_variable_as_val("line", Box::new(CelMap::from(line)));
    ctx.add_variable_as_val("vars", Box::new(object_to_val(vars)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(src: &str, settings: serde_json::Value) -> Result<Value, cel::ExecutionError> {
        let env = CelEnv::new();
        let program = env.0.compile(src).expect("compiles");
        let settings = settings.as_object().cloned().unwrap_or_default();
        let vars = json!({"max": 2, "domains": ["Example.com"]})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let identity = LineIdentity {
            name: Some("Lobby Paging".into()),
            location_name: Some("HQ".into()),
            ..LineIdentity::default()
        };
        let mut ctx = env.context();
        bind(&mut ctx, &settings, "L1", &identity, &vars);
        program.execute(&ctx)
    }

    /// Every function the module documentation promises to policy authors.
    #[test]
    fn documented_functions_are_available() {
        for src in [
            "size([1]) == 1 && has({'a': 1}.a) && [1].all(x, x > 0) && [1].exists(x, x == 1)",
            "[1].exists_one(x, x == 1) && [1].map(x, x * 2) == [2] && [1, 2].filter(x, x > 1) == [2]",
            "1 in [1] && 'ab'.startsWith('a') && 'ab'.endsWith('b') && 'ab'.contains('a')",
            "string(1) == '1' && int('2') == 2 && uint(1) == 1u && double(1) == 1.0",
            "bool('true') && type(1) == int && dyn(1) == 1 && optional.of(1).hasValue()",
            "'Ab'.lowerAscii() == 'ab' && 'ab'.upperAscii() == 'AB' && ' a '.trim() == 'a'",
            "'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join(',') == 'a,b'",
            "'aa'.replace('a', 'b') == 'bb' && 'abc'.substring(1) == 'bc' && 'abc'.indexOf('c') == 2",
            "'aba'.lastIndexOf('a') == 2 && 'abc'.charAt(1) == 'b' && '%s'.format(['x']) == 'x'",
            "'ab'.reverse() == 'ba' && strings.quote('a') == '\"a\"'",
            "[1, 1].distinct() == [1] && [[1], [2]].flatten() == [1, 2] && [1, 2].reverse() == [2, 1]",
            "[1, 2, 3].slice(1, 2) == [2] && [2, 1].sort() == [1, 2] && lists.range(2) == [0, 1]",
            "[2, 1].sortBy(x, x) == [1, 2]",
        ] {
            assert_eq!(eval(src, json!({})), Ok(Value::Bool(true)), "{src}");
        }
        // Not built in: the crate's `regex` and `chrono` features are off.
        assert!(eval("'a'.matches('a')", json!({})).is_err());
        assert!(eval("timestamp('2026-01-01T00:00:00Z')", json!({})).is_err());
    }

    /// Maps from the settings are shared, not copied, when a macro iterates them; they
    /// must still behave as CEL's own maps everywhere.
    #[test]
    fn shared_maps_behave_as_built_in_maps() {
        let settings = json!({
            "members": [{"a": 1, "n": [{"x": "y"}]}, {"a": 2}],
            "m": {"a": 1, "n": [{"x": "y"}]},
        });
        for src in [
            "members[0] == {'a': 1, 'n': [{'x': 'y'}]}",
            "{'a': 1, 'n': [{'x': 'y'}]} == members[0]",
            "members[0] == m && m == members[0] && members[1] != m",
            "members.all(m, has(m.a) && 'a' in m && size(m) >= 1)",
            "members.exists(m, m.a == 2) && members.exists_one(m, has(m.n))",
            "members.map(m, m.a) == [1, 2] && members.filter(m, m.a > 1).size() == 1",
            "members.all(m, !has(m.n) || m.n.all(k, k.x == 'y'))",
            "[members[0], m].distinct().size() == 1 && members[0] in [m]",
            "m.all(k, k in ['a', 'n']) && type(m) == map && type(members[0]) == map",
            "dyn(members[0]).a == 1 && members[0]['a'] == 1 && [m, m].flatten().size() == 0 || true",
            "lists.range(2).map(i, members[i].a) == [1, 2]",
        ] {
            assert_eq!(eval(src, settings.clone()), Ok(Value::Bool(true)), "{src}");
        }
        // A map result converts as a built-in map does.
        let Ok(Value::Map(map)) = eval("members[1]", settings.clone()) else {
            panic!("a map");
        };
        assert_eq!(map.map.len(), 1);
        assert!(eval("members[0].missing", settings).is_err());
    }

    #[test]
    fn json_numbers_compare_with_cel_ints() {
        assert_eq!(
            eval("size(members) > vars.max", json!({"members": [1, 2, 3]})),
            Ok(Value::Bool(true))
        );
        assert_eq!(eval("n == 1.5", json!({"n": 1.5})), Ok(Value::Bool(true)));
    }

    #[test]
    fn members_default_to_empty_and_line_and_vars_are_bound() {
        assert_eq!(eval("size(members)", json!({})), Ok(Value::Int(0)));
        assert_eq!(
            eval("size(members)", json!({"members": null})),
            Ok(Value::Int(0))
        );
        assert_eq!(
            eval(
                "line.id + '/' + vars.domains[0].lowerAscii()",
                json!({"line": "api"})
            ),
            Ok(Value::from("L1/example.com"))
        );
    }

    #[test]
    fn line_identity_is_bound_with_empty_strings_for_the_unknown() {
        assert_eq!(
            eval(
                "line.name + '@' + line.location_name + '#' + line.extension + line.phone_number + line.location_id",
                json!({})
            ),
            Ok(Value::from("Lobby Paging@HQ#"))
        );
    }
}
