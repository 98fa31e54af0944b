//! The `Link` header of a list answer (RFC 8288), and the checks a `next` link passes
//! before it is requested. Pure: text and URLs in, decisions out.
//!
//! What the API does in the wild decides the checks:
//! - a `next` link on another origin (scheme, host or port) is never followed: the
//!   client sends the token with every request, so following it would hand the token
//!   to whoever the link names;
//! - a `next` link that dropped `orgId` (a known bug) would list the token's own org
//!   from then on, and one that dropped `locationId` every location: both get back
//!   what the first request asked for;
//! - a `next` link to a page already listed would never end.

use url::Url;

/// The target of the first link with relation `next` in `values` (each a `Link`
/// header's value; one header may hold several links), `None` when there is none.
/// `Err` says what does not parse: a header that cannot be read cannot be trusted to
/// say there is no next page.
pub(crate) fn next_target<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<String>, String> {
    let mut found = None;
    for value in values {
        for link in parse(value)? {
            let is_next = link.rels.iter().any(|r| {
                r.split_ascii_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next && found.is_none() {
                found = Some(link.target);
            }
        }
    }
    Ok(found)
}

/// One link of a header: its target and the values of its `rel` parameters.
#[derive(Debug, PartialEq)]
struct Link {
    target: String,
    rels: Vec<String>,
}

/// Parses `<target>; name=value; name="quoted", <target2>; …`.
fn parse(value: &str) -> Result<Vec<Link>, String> {
    let bad = |why: &str| {
        let shown: String = value.chars().take(200).collect();
        Err(format!("the Link header does not parse ({why}): {shown}"))
    };
    let mut links = Vec::new();
    let mut rest = value.trim_start();
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Ok(links);
        }
        let Some(after) = rest.strip_prefix('<') else {
            return bad("a link must start with `<`");
        };
        let Some(end) = after.find('>') else {
            return bad("`<` without its `>`");
        };
        let mut link = Link {
            target: after[..end].trim().to_string(),
            rels: Vec::new(),
        };
        rest = after[end + 1..].trim_start();
        // Parameters, up to the comma that starts the next link.
        while let Some(params) = rest.strip_prefix(';') {
            let params = params.trim_start();
            let name_end = params
                .find(|c: char| c == '=' || c == ';' || c == ',' || c.is_whitespace())
                .unwrap_or(params.len());
            let name = &params[..name_end];
            if name.is_empty() {
                return bad("a parameter without a name");
            }
            rest = params[name_end..].trim_start();
            let mut param_value = None;
            if let Some(v) = rest.strip_prefix('=') {
                let v = v.trim_start();
                if let Some(quoted) = v.strip_prefix('"') {
                    let Some((text, after)) = unquote(quoted) else {
                        return bad("a quoted value without its closing quote");
                    };
                    param_value = Some(text);
                    rest = after.trim_start();
                } else {
                    let end = v
                        .find(|c: char| c == ';' || c == ',' || c.is_whitespace())
                        .unwrap_or(v.len());
                    param_value = Some(v[..end].to_string());
                    rest = v[end..].trim_start();
                }
            }
            if name.eq_ignore_ascii_case("rel") {
                link.rels.push(param_value.unwrap_or_default());
            }
        }
        if !(rest.is_empty() || rest.starts_with(',')) {
            return bad("text after a link's parameters");
        }
        links.push(link);
    }
}

/// The text of a quoted string whose opening quote is gone, and what follows it.
fn unquote(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 1..])),
            '\\' => out.push(chars.next()?.1),
            c => out.push(c),
        }
    }
    None
}

/// What a `next` link must keep: the origin of `--base-url`, and the query the
/// listing asked with.
#[derive(Debug, Clone)]
pub(crate) struct NextRules {
    origin: url::Origin,
    org_id: Option<String>,
    location_ids: Vec<String>,
}

/// What was put back into a `next` link.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Repaired {
    /// `orgId` was missing or different.
    pub(crate) org_id: bool,
    /// A `locationId` was missing, or one not asked for was there.
    pub(crate) location_ids: bool,
}

impl NextRules {
    /// The rules for a listing of `base` with these parameters.
    pub(crate) fn new(base: &Url, org_id: Option<&str>, location_ids: &[String]) -> NextRules {
        NextRules {
            origin: base.origin(),
            org_id: org_id.map(str::to_string),
            location_ids: location_ids.to_vec(),
        }
    }

    /// The URL to request for `target` (a `next` link of the page at `page`): resolved
    /// against `page`, refused on another origin, with `orgId` and `locationId` as
    /// asked. The query is left byte for byte as the server wrote it unless something
    /// has to be put back (a cursor in it may be sensitive to its encoding).
    pub(crate) fn check(&self, page: &Url, target: &str) -> Result<(Url, Repaired), String> {
        let next = page.join(target).map_err(|e| {
            format!(
                "the next page's link `{}` is not a URL ({e})",
                shorten(target)
            )
        })?;
        if next.origin() != self.origin {
            return Err(format!(
                "the next page's link points to another origin ({}) than --base-url ({}): \
                 not followed, so the token is not sent there",
                next.origin().ascii_serialization(),
                self.origin.ascii_serialization()
            ));
        }
        let pairs: Vec<(String, String)> = next.query_pairs().into_owned().collect();
        let orgs: Vec<&str> = values(&pairs, "orgId");
        let locations: Vec<&str> = values(&pairs, "locationId");
        let mut repaired = Repaired::default();
        let mut drop_org = false;
        let mut drop_locations = false;
        let mut add_org = None;
        let mut add_locations = Vec::new();
        if let Some(org) = &self.org_id {
            match orgs.as_slice() {
                [o] if o == org => {}
                [] => add_org = Some(org.as_str()),
                _ => {
                    drop_org = true;
                    add_org = Some(org.as_str());
                }
            }
            repaired.org_id = add_org.is_some();
        }
        if !self.location_ids.is_empty() {
            let extra = locations
                .iter()
                .any(|l| !self.location_ids.iter().any(|w| w == l));
            if extra {
                drop_locations = true;
                add_locations = self.location_ids.iter().map(String::as_str).collect();
            } else {
                add_locations = self
                    .location_ids
                    .iter()
                    .map(String::as_str)
                    .filter(|w| !locations.contains(w))
                    .collect();
            }
            repaired.location_ids = !add_locations.is_empty();
        }
        if repaired == Repaired::default() {
            return Ok((next, repaired));
        }
        let mut fixed = next.clone();
        if drop_org || drop_locations {
            let kept: Vec<&(String, String)> = pairs
                .iter()
                .filter(|(k, _)| !(drop_org && k == "orgId" || drop_locations && k == "locationId"))
                .collect();
            fixed.set_query(None);
            if !kept.is_empty() {
                fixed.query_pairs_mut().extend_pairs(kept);
            }
        }
        {
            let mut query = fixed.query_pairs_mut();
            if let Some(org) = add_org {
                query.append_pair("orgId", org);
            }
            for l in add_locations {
                query.append_pair("locationId", l);
            }
        }
        Ok((fixed, repaired))
    }
}

fn values<'a>(pairs: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A server's text, cut for a message.
fn shorten(s: &str) -> String {
    const MAX: usize = 200;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(values: &[&str]) -> Result<Option<String>, String> {
        next_target(values.iter().copied())
    }

    #[test]
    fn finds_next_among_links_and_headers() {
        assert_eq!(next(&[]), Ok(None));
        assert_eq!(
            next(&[r#"<https://a/v1/x?start=2>; rel="next""#]),
            Ok(Some("https://a/v1/x?start=2".into()))
        );
        assert_eq!(
            next(&[r#"<https://a/p>; rel="prev", <https://a/n>; rel=next; title="a, b; c""#]),
            Ok(Some("https://a/n".into()))
        );
        assert_eq!(
            next(&[
                r#"<https://a/f>; rel="first""#,
                r#"<https://a/n>; REL="last next""#
            ]),
            Ok(Some("https://a/n".into()))
        );
        assert_eq!(next(&[r#"<https://a/p>; rel="prev""#]), Ok(None));
        assert_eq!(next(&["  "]), Ok(None));
        assert_eq!(
            next(&[r#"<https://a/n>;rel="next";anchor="x\"y""#]),
            Ok(Some("https://a/n".into()))
        );
    }

    #[test]
    fn a_header_that_does_not_parse_is_an_error_saying_why() {
        for (bad, why) in [
            ("https://a/n; rel=next", "must start with `<`"),
            ("<https://a/n; rel=next", "without its `>`"),
            (r#"<https://a/n>; rel="next"#, "closing quote"),
            ("<https://a/n> rel=next", "text after"),
            ("<https://a/n>; =next", "without a name"),
        ] {
            let err = next(&[bad]).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("Link header"), "{err}");
        }
    }

    fn rules(org: Option<&str>, locations: &[&str]) -> NextRules {
        let locations: Vec<String> = locations.iter().map(|s| s.to_string()).collect();
        NextRules::new(
            &Url::parse("https://webexapis.com/v1").unwrap(),
            org,
            &locations,
        )
    }

    fn page() -> Url {
        Url::parse("https://webexapis.com/v1/telephony/config/virtualLines?max=2&orgId=O").unwrap()
    }

    #[test]
    fn another_origin_is_refused_whatever_differs() {
        let r = rules(Some("O"), &[]);
        for target in [
            "https://evil.example/v1/telephony/config/virtualLines?start=2",
            "http://webexapis.com/v1/telephony/config/virtualLines?start=2",
            "https://webexapis.com:8443/v1/telephony/config/virtualLines?start=2",
            "//evil.example/x",
        ] {
            let err = r.check(&page(), target).expect_err(target);
            assert!(err.contains("another origin"), "{err}");
            assert!(err.contains("https://webexapis.com"), "{err}");
        }
        // The default port spelt out is the same origin; a relative link stays home.
        let (url, _) = r
            .check(
                &page(),
                "https://webexapis.com:443/v1/telephony/config/virtualLines?start=2&orgId=O",
            )
            .unwrap();
        assert_eq!(url.host_str(), Some("webexapis.com"));
        let (url, _) = r.check(&page(), "virtualLines?start=4&orgId=O").unwrap();
        assert_eq!(
            url.as_str(),
            "https://webexapis.com/v1/telephony/config/virtualLines?start=4&orgId=O"
        );
    }

    #[test]
    fn a_link_that_lost_org_or_locations_gets_them_back() {
        let r = rules(Some("O 1"), &["L1", "L2"]);
        let (url, repaired) = r
            .check(&page(), "https://webexapis.com/v1/telephony/config/virtualLines?start=2&max=2&locationId=L1")
            .unwrap();
        assert_eq!(
            repaired,
            Repaired {
                org_id: true,
                location_ids: true
            }
        );
        assert_eq!(
            url.query(),
            Some("start=2&max=2&locationId=L1&orgId=O+1&locationId=L2")
        );
        // Another org, or a location not asked for, is replaced.
        let (url, repaired) = r
            .check(
                &page(),
                "/v1/telephony/config/virtualLines?cursor=a%2Bb&orgId=OTHER&locationId=L9",
            )
            .unwrap();
        assert_eq!(
            repaired,
            Repaired {
                org_id: true,
                location_ids: true
            }
        );
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("cursor".to_string(), "a+b".to_string()),
                ("orgId".into(), "O 1".into()),
                ("locationId".into(), "L1".into()),
                ("locationId".into(), "L2".into()),
            ]
        );
    }

    #[test]
    fn a_complete_link_is_left_as_the_server_wrote_it() {
        let r = rules(Some("O"), &["L1"]);
        let target = "https://webexapis.com/v1/telephony/config/virtualLines?cursor=a%20b&orgId=O&locationId=L1";
        let (url, repaired) = r.check(&page(), target).unwrap();
        assert_eq!(repaired, Repaired::default());
        assert_eq!(url.as_str(), target);
        // Without --org-id, whatever orgId the server keeps is its own business.
        let (_, repaired) = rules(None, &[]).check(&page(), "?start=2&orgId=X").unwrap();
        assert_eq!(repaired, Repaired::default());
    }

    #[test]
    fn a_target_that_is_not_a_url_is_an_error() {
        let err = rules(None, &[]).check(&page(), "http://[::1").unwrap_err();
        assert!(err.contains("is not a URL"), "{err}");
    }
}
