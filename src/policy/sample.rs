//! Running the expressions of enabled rules against sample records at load time, to
//! catch what the syntax tree cannot show without a type checker (see
//! [`super::check`], which runs first).
//!
//! `when`, `require` and `message_expr` are each run on their own, whatever `when`
//! gives, against four sample records (see [`Samples::new`]) that hold every
//! documented field, with the enum values varied so that `&&`, `||` and `?:` cannot
//! hide a misspelt name on all of them: TWO_WAY/BLOCK_MEMBERS/auto-answer with a
//! person, ONE_WAY/ALLOW_MEMBERS with no member, TWO_WAY/ALLOW_MEMBERS with a person
//! and a place, ONE_WAY/BLOCK_MEMBERS/auto-answer with no member.
//!
//! On those runs, a load error is: a result of the wrong type (`when`/`require` not a
//! bool, `message_expr` not a string); an undeclared name that looks like a
//! misspelling of a documented top-level name (`conectionType`); a missing key that
//! looks like a misspelling of a documented member or number field (`m.emial`).
//! "Looks like" means equal when case, `_` and `-` are ignored, or within two edits
//! (one for names of four characters or fewer). The static checks
//! ([`super::check`]) already report every such name they can see; this catches what
//! they cannot tell apart (a field of a value they cannot type).
//!
//! Not load errors: an undeclared name far from every documented one, taken for a
//! field the API returns but does not document yet (the contract lets CEL see such
//! fields; on a line without it the rule is `error`, never `pass`), and any other
//! runtime error, which may depend on the data (`members[0]` on an empty list).

use serde_json::json;

use super::expr::{self, CelEnv, Expr, ExprKey};
use super::fields::{top_names, MEMBER_FIELDS, NUMBER_FIELDS};
use super::suggest::closest;
use crate::model::LineIdentity;

/// A documented person, every field filled (the API page's example member).
pub(super) fn person() -> serde_json::Value {
    json!({
        "id": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS82MWU3MDlkNy1hM2IxLTQ2MDctOTBiOC04NmE5MDgxYWFkNmE",
        "lastName": "Little",
        "firstName": "Alice",
        "displayName": "Alice Little",
        "type": "PEOPLE",
        "email": "alice@example.com",
        "numbers": [{
            "external": "+19845551088",
            "extension": "1088",
            "routingPrefix": "1234",
            "esn": "12341088",
            "primary": true
        }]
    })
}

/// A workspace, every field filled.
pub(super) fn place() -> serde_json::Value {
    json!({
        "id": "Y2lzY29zcGFyazovL3VzL1BMQUNFLzE",
        "lastName": "Lobby",
        "firstName": "Main",
        "displayName": "Main Lobby",
        "type": "PLACE",
        "email": "lobby@example.com",
        "numbers": [{
            "external": "+19845551000",
            "extension": "1000",
            "routingPrefix": "1234",
            "esn": "12341000",
            "primary": false
        }]
    })
}

/// The sample records, each with the description messages name it by.
pub(super) struct Samples(Vec<(&'static str, serde_json::Value)>);

impl Samples {
    /// Records holding every documented field, with enum values varied so that an
    /// expression's `&&`/`||`/`?:` cannot skip a misspelt name on all of them.
    pub(crate) fn new() -> Self {
        let (person, place) = (person(), place());
        Samples(vec![
            (
                "TWO_WAY/BLOCK_MEMBERS/auto-answer with a member",
                json!({"allowAutoAnswer": true, "connectionType": "TWO_WAY",
                       "accessType": "BLOCK_MEMBERS", "members": [person.clone()]}),
            ),
            (
                "ONE_WAY/ALLOW_MEMBERS with no member",
                json!({"allowAutoAnswer": false, "connectionType": "ONE_WAY",
                       "accessType": "ALLOW_MEMBERS", "members": []}),
            ),
            (
                "TWO_WAY/ALLOW_MEMBERS with a person and a place",
                json!({"allowAutoAnswer": false, "connectionType": "TWO_WAY",
                       "accessType": "ALLOW_MEMBERS", "members": [person, place]}),
            ),
            (
                "ONE_WAY/BLOCK_MEMBERS/auto-answer with no member",
                json!({"allowAutoAnswer": true, "connectionType": "ONE_WAY",
                       "accessType": "BLOCK_MEMBERS", "members": []}),
            ),
        ])
    }

    /// Why `e`, the `which` of a rule, cannot work on real data, if a sample run shows
    /// it: a result of the wrong type, or a name that is unknown and close to a
    /// documented one. The first such run wins.
    pub(crate) fn problem(
        &self,
        env: &CelEnv,
        e: &Expr,
        which: ExprKey,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<String> {
        let key = which.as_str();
        // Every part known: the parts are strings either way, empty when unknown.
        let identity = LineIdentity {
            name: Some("Lobby Paging".into()),
            location_id: Some("Y2lzY29zcGFyazovL3VzL0xPQ0FUSU9OLzE".into()),
            location_name: Some("HQ".into()),
            phone_number: Some("+19845550100".into()),
            extension: Some("2002".into()),
        };
        for (what, sample) in &self.0 {
            let Some(settings) = sample.as_object() else {
                continue;
            };
            let mut ctx = env.context();
            expr::bind(&mut ctx, settings, "SAMPLE-LINE-ID", &identity, vars);
            match e.run(&ctx) {
                Ok(v) => {
                    let ok = match which {
                        ExprKey::When | ExprKey::Require => matches!(v, cel::Value::Bool(_)),
                        ExprKey::MessageExpr => matches!(v, cel::Value::String(_)),
                    };
                    if !ok {
                        return Some(format!(
                            "`{key}` must evaluate to a {}, but gives {} (on the sample {what} record)",
                            which.expected(),
                            expr::with_article(expr::type_name(&v))
                        ));
                    }
                }
                Err(cel::ExecutionError::UndeclaredReference(name)) => {
                    let refs = e.program.references();
                    if refs.has_function(name.as_str()) && !refs.has_variable(name.as_str()) {
                        let note = if name.as_str() == "matches" {
                            " (regular expressions are not available; use contains, startsWith, endsWith)"
                        } else {
                            ""
                        };
                        return Some(format!("`{key}` calls unknown function `{name}`{note}"));
                    }
                    if let Some(s) = closest(&name, top_names()) {
                        return Some(format!(
                            "`{key}` uses unknown name `{name}` (did you mean `{s}`?)"
                        ));
                    }
                    // A name far from every documented one is taken for a field the API
                    // returns but does not document yet: lines without it will be `error`.
                }
                Err(cel::ExecutionError::NoSuchKey(name)) => {
                    if let Some(s) =
                        closest(&name, MEMBER_FIELDS.iter().chain(NUMBER_FIELDS).copied())
                    {
                        return Some(format!(
                            "`{key}` uses unknown field `{name}` (did you mean `{s}`?)"
                        ));
                    }
                }
                // Anything else may depend on the data (an empty list indexed, a field some
                // member lacks): evaluation reports it per line as `error`.
                Err(_) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::fields::SETTINGS_FIELDS;

    fn keys(v: &serde_json::Value) -> Vec<&str> {
        let mut k: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        k.sort_unstable();
        k
    }

    fn sorted(names: &[&'static str]) -> Vec<&'static str> {
        let mut v = names.to_vec();
        v.sort_unstable();
        v
    }

    /// The samples and the documented schema are one list: a field added to one and
    /// not the other would let a misspelling of it through, or flag it wrongly.
    #[test]
    fn sample_records_hold_exactly_the_documented_fields() {
        for (what, record) in &Samples::new().0 {
            assert_eq!(keys(record), sorted(SETTINGS_FIELDS), "{what}");
        }
        for member in [person(), place()] {
            assert_eq!(keys(&member), sorted(MEMBER_FIELDS));
            assert_eq!(keys(&member["numbers"][0]), sorted(NUMBER_FIELDS));
        }
    }
}
