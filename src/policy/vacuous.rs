//! Rules that cannot fail as configured: `approved_domains = []` makes
//! PTT-MEMBER-DOMAIN pass on every line, and nothing else would say so.
//!
//! The check runs a rule on a family of adversarial sample lines built to break any
//! sensible policy, and warns only when the rule passed (or did not apply) on every
//! one of them: a single `fail`, `error`, or result of the wrong type on any sample,
//! and there is no warning. So a warning always comes with its evidence ("held on all
//! N sample lines"), and it is never about a rule that failed on some sample.
//!
//! The family, every member list crossed with every combination of the settings:
//! - `allowAutoAnswer` true and false; `connectionType` and `accessType` each with its
//!   documented values, a value the API does not document, and every string the rule
//!   itself spells (its literals and the strings in the vars it reads), so that a
//!   test against any value the rule names meets that value;
//! - member lists: none; a person; a person from a domain no policy approves; a
//!   workspace; a virtual line; a member with only an ID; a member of an undocumented
//!   type with an upper-case e-mail and an empty number; the same person twice; all
//!   of those together; for each of the rule's strings, a member whose every text
//!   field is that string; and a list of people one longer than the largest integer
//!   the rule or its vars spell (at least 3), whose first person has as many numbers.
//!
//! Not judged (never warned about): rules that read `line` (no sample stands for a
//! particular line), rules whose cost grows faster than the number of members (they
//! carry a warning of their own), rules spelling more than [`MAX_STRINGS`] strings,
//! rules that would need a list longer than [`MAX_LONG`], and rules whose samples
//! would hold more than [`MAX_MEMBERS_IN_ALL`] members in all.
//!
//! A sample family is not a proof: a rule that fails only on data unlike every sample
//! (a display name containing a word it does not spell, say) is warned about wrongly.
//! The warning says what was tried, so a reader can tell.

use serde_json::{json, Map, Value};

use super::check::Facts;
use super::expr::{self, CelEnv, Expr};
use super::fields::{ACCESS_TYPES, CONNECTION_TYPES};
use super::sample::{person, place};

/// A rule spelling more strings than this is not judged (the family would grow with
/// the square of their number).
pub(super) const MAX_STRINGS: usize = 8;
/// A rule that would need a longer member list than this is not judged.
pub(super) const MAX_LONG: usize = 1000;
/// A rule whose samples would hold more members than this in all (the long list
/// times the combinations of settings) is not judged: loading stays fast.
pub(super) const MAX_MEMBERS_IN_ALL: usize = 50_000;
/// The long member list has at least this many people.
const MIN_LONG: usize = 3;
/// A value of an enumerated field that the API does not document.
const UNDOCUMENTED: &str = "UNDOCUMENTED_VALUE";

/// Why the rule with these expressions cannot fail as configured, if every sample
/// line says so; `None` when some sample makes it fail or error, or it is not judged.
pub(super) fn cannot_fail(
    env: &CelEnv,
    when: Option<&Expr>,
    require: &Expr,
    facts: &Facts,
    vars: &Map<String, Value>,
) -> Option<String> {
    if facts.reads_line || facts.superlinear {
        return None;
    }
    let read_vars: Vec<(&str, &Value)> = facts
        .vars
        .iter()
        .filter_map(|name| vars.get_key_value(name))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut strings = facts.strings.clone();
    let mut largest = facts.ints.iter().copied().max().unwrap_or(0);
    for (_, value) in &read_vars {
        gather(value, &mut strings, &mut largest);
    }
    if strings.len() > MAX_STRINGS {
        return None;
    }
    let long = usize::try_from(largest)
        .unwrap_or(0)
        .saturating_add(1)
        .max(MIN_LONG);
    if long > MAX_LONG {
        return None;
    }

    let lists = member_lists(&strings, long);
    let values = |documented: &[&str]| {
        let mut v: Vec<Value> = Vec::new();
        let all = documented.iter().copied().chain([UNDOCUMENTED]);
        for s in all.chain(strings.iter().map(String::as_str)) {
            if !v.iter().any(|x| x == s) {
                v.push(Value::String(s.to_string()));
            }
        }
        v
    };
    let (connection, access) = (values(CONNECTION_TYPES), values(ACCESS_TYPES));
    let autos = [Value::Bool(true), Value::Bool(false)];
    if autos.len() * connection.len() * access.len() * long > MAX_MEMBERS_IN_ALL {
        return None;
    }
    let (mut tried, mut applied) = (0usize, 0usize);
    // Rules that read `line` are not judged here (no sample stands for a line).
    let identity = crate::model::LineIdentity::default();
    for list in &lists {
        // The member list is bound (converted) once per list, the settings per sample.
        let mut settings = Map::new();
        settings.insert("members".into(), list.clone());
        let mut outer = env.context();
        expr::bind(&mut outer, &settings, "SAMPLE-LINE-ID", &identity, vars);
        for auto in &autos {
            for c in &connection {
                for a in &access {
                    tried += 1;
                    let mut ctx = outer.new_inner_scope();
                    ctx.add_variable_as_val("allowAutoAnswer", expr::json_to_val(auto));
                    ctx.add_variable_as_val("connectionType", expr::json_to_val(c));
                    ctx.add_variable_as_val("accessType", expr::json_to_val(a));
                    if let Some(when) = when {
                        match when.run(&ctx) {
                            Ok(cel::Value::Bool(true)) => {}
                            Ok(cel::Value::Bool(false)) => continue,
                            _ => return None,
                        }
                    }
                    applied += 1;
                    if !matches!(require.run(&ctx), Ok(cel::Value::Bool(true))) {
                        return None;
                    }
                }
            }
        }
    }

    let reads = if read_vars.is_empty() {
        String::new()
    } else {
        let shown: Vec<String> = read_vars
            .iter()
            .map(|(k, v)| format!("vars.{k} = {v}"))
            .collect();
        format!(" (it reads {})", shown.join(", "))
    };
    let family = format!(
        "every combination of allowAutoAnswer, connectionType and accessType, undocumented \
         values included, with no member, outsiders, workspaces, virtual lines, bare members, \
         duplicates and {long} people"
    );
    Some(if applied == 0 {
        format!(
            "`when` is false on all {tried} sample lines ({family}): this rule never applies, \
             so it cannot fail as configured{reads}"
        )
    } else {
        format!(
            "`require` holds on all {applied} sample lines the rule applies to ({family}): \
             it cannot fail as configured{reads}"
        )
    })
}

/// The strings and the largest integer in a var's value.
fn gather(value: &Value, strings: &mut Vec<String>, largest: &mut i64) {
    match value {
        Value::String(s) => {
            if !strings.contains(s) {
                strings.push(s.clone());
            }
        }
        Value::Number(n) => {
            // A float bound (`2.5`) needs a list longer than it too.
            let n = n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .map(|f| f.ceil().clamp(0.0, i64::MAX as f64) as i64)
                })
                .unwrap_or(i64::MAX);
            *largest = (*largest).max(n);
        }
        Value::Array(items) => items.iter().for_each(|v| gather(v, strings, largest)),
        Value::Object(map) => map.values().for_each(|v| gather(v, strings, largest)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// The member lists of the family (see the module documentation).
fn member_lists(strings: &[String], long: usize) -> Vec<Value> {
    let (alice, lobby) = (person(), place());
    let outsider = json!({
        "id": "SAMPLE-OUTSIDER", "lastName": "Outsider", "firstName": "Mallory",
        "displayName": "Mallory Outsider", "type": "PEOPLE",
        "email": "mallory@outside.invalid",
        "numbers": [{"external": "+442079460000", "extension": "0000",
                     "routingPrefix": "9999", "esn": "99990000", "primary": true}]
    });
    let line = json!({
        "id": "SAMPLE-VIRTUAL-LINE", "lastName": "Line", "firstName": "Virtual",
        "displayName": "Virtual Line", "type": "VIRTUAL_LINE", "email": "line@example.com",
        "numbers": [{"extension": "2000", "primary": false}]
    });
    let bare = json!({"id": "SAMPLE-BARE"});
    let odd = json!({
        "id": "SAMPLE-ODD", "type": UNDOCUMENTED, "email": "ALICE@EXAMPLE.COM",
        "numbers": [{}]
    });
    let mut lists = vec![
        json!([]),
        json!([alice]),
        json!([outsider]),
        json!([lobby]),
        json!([line]),
        json!([bare]),
        json!([odd]),
        json!([alice, alice]),
        json!([alice, outsider, lobby, line, bare, odd]),
    ];
    for s in strings {
        lists.push(json!([{
            "id": s, "lastName": s, "firstName": s, "displayName": s, "type": s, "email": s,
            "numbers": [{"external": s, "extension": s, "routingPrefix": s, "esn": s,
                         "primary": true}]
        }]));
    }
    let numbers: Vec<Value> = (0..long)
        .map(|i| {
            json!({"external": format!("+1984555{i:04}"), "extension": format!("{i}"),
                        "primary": i == 0})
        })
        .collect();
    let people: Vec<Value> = (0..long)
        .map(|i| {
            let mut p = person();
            p["id"] = json!(format!("SAMPLE-PERSON-{i}"));
            p["email"] = json!(format!("person{i}@example.com"));
            if i == 0 {
                p["numbers"] = Value::Array(numbers.clone());
            }
            p
        })
        .collect();
    lists.push(Value::Array(people));
    lists
}
