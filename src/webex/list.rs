//! Listing virtual lines: `GET {base}/telephony/config/virtualLines`, page by page,
//! following `Link: <…>; rel="next"` (see `link.rs` for what a link must pass).
//!
//! Each page is one request through [`WebexClient::fetch`], so listing obeys the same
//! pacer, run-wide pauses, retry budgets and stop signal as every read. A page is
//! whatever the server sends: fewer items than `max` is not the end while there is a
//! `next` link, and only the absence of one is.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use super::client::{Redact, WebexClient};
use super::link::{next_target, NextRules};
use super::token::Token;
use crate::model::{ErrorKind, LineError, LineIdentity};

/// Empty pages in a row, each with a `next` link, after which listing is given up: a
/// server that pages through nothing would otherwise be followed forever.
pub(crate) const MAX_EMPTY_PAGES: u32 = 10;

/// One line of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The line's `id`, as listed.
    pub(crate) id: String,
    /// Name, location and numbers from the item.
    pub(crate) identity: LineIdentity,
}

/// One page of the listing.
#[derive(Debug)]
pub(crate) struct Page {
    /// The items that had an `id`, in the server's order.
    pub(crate) items: Vec<Listed>,
    /// Items without a usable `id` (not an object, no `id`, an `id` that is not a
    /// non-empty string): skipped, counted.
    pub(crate) skipped: u64,
    /// Requests this page took.
    pub(crate) attempts: u32,
}

/// A page as read from one answer.
#[derive(Debug)]
struct Answer {
    items: Vec<Listed>,
    skipped: u64,
    /// The `next` link's target; `Err` when the `Link` header does not parse.
    next: Result<Option<String>, String>,
    tracking_id: Option<String>,
}

impl Redact for Answer {
    // Not only from the body: the next link and tracking ID come from headers.
    fn redact(&mut self, token: &Token, _body: &[u8]) {
        for item in &mut self.items {
            token.redact_in_place(&mut item.id);
            let who = &mut item.identity;
            for field in [
                &mut who.name,
                &mut who.location_id,
                &mut who.location_name,
                &mut who.phone_number,
                &mut who.extension,
            ]
            .into_iter()
            .flatten()
            {
                token.redact_in_place(field);
            }
        }
        if let Err(message) = &mut self.next {
            token.redact_in_place(message);
        }
        if let Some(t) = &mut self.tracking_id {
            token.redact_in_place(t);
        }
    }
}

/// Reads one 2xx list answer: the `virtualLines` items and the `next` link. `Err`
/// (retried like any garbled 200) when the body is not a JSON object with a
/// `virtualLines` array. A `Link` header that does not parse keeps the page's items
/// (they are audited) and ends the listing after them: whether more pages exist cannot
/// be known.
fn read_answer(headers: &HeaderMap, body: &[u8]) -> Result<Answer, String> {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "virtualLines")]
        virtual_lines: Option<Value>,
    }
    let parsed: Body = serde_json::from_slice(body)
        .map_err(|e| format!("the list answer is not a JSON object ({e})"))?;
    let Some(Value::Array(list)) = parsed.virtual_lines else {
        return Err("the list answer has no `virtualLines` array".to_string());
    };
    let links = headers
        .get_all(LINK)
        .iter()
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let next = next_target(links);
    let mut items = Vec::with_capacity(list.len());
    let mut skipped = 0;
    for item in &list {
        match item.get("id").and_then(Value::as_str).map(str::trim) {
            Some(id) if !id.is_empty() => items.push(Listed {
                id: id.to_string(),
                identity: LineIdentity::from_list_item(item),
            }),
            _ => skipped += 1,
        }
    }
    let tracking_id = headers
        .get("trackingid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok(Answer {
        items,
        skipped,
        next,
        tracking_id,
    })
}

/// The pages of one listing, requested one at a time.
#[derive(Debug)]
pub(crate) struct Pages {
    rules: NextRules,
    next: Option<Url>,
    /// Hashes of the URLs requested so far, to refuse a link back to one of them.
    visited: HashSet<u64>,
    pages: u64,
    empty_in_a_row: u32,
    /// The error that ends the listing after the page just returned.
    failed: Option<LineError>,
    told_repair: bool,
}

impl Pages {
    /// The listing of `base`'s virtual lines, `page_size` a page, with `orgId` and
    /// repeated `locationId` as given.
    pub(crate) fn new(
        base: &Url,
        org_id: Option<&str>,
        location_ids: &[String],
        page_size: usize,
    ) -> Pages {
        let mut first = base.clone();
        first
            .path_segments_mut()
            .map(|mut p| {
                p.pop_if_empty()
                    .extend(["telephony", "config", "virtualLines"]);
            })
            .unwrap_or_default();
        {
            let mut q = first.query_pairs_mut();
            q.append_pair("max", &page_size.to_string());
            if let Some(org) = org_id {
                q.append_pair("orgId", org);
            }
            for l in location_ids {
                q.append_pair("locationId", l);
            }
        }
        Pages {
            rules: NextRules::new(base, org_id, location_ids),
            next: Some(first),
            visited: HashSet::new(),
            pages: 0,
            empty_in_a_row: 0,
            failed: None,
            told_repair: false,
        }
    }

    /// Pages read so far.
    pub(crate) fn pages(&self) -> u64 {
        self.pages
    }

    /// The next page; `None` once the listing is over; `Err` ends it for good (the
    /// pages before stay good: a refused `next` link comes after its page's items).
    pub(crate) async fn next(&mut self, client: &WebexClient) -> Option<Result<Page, LineError>> {
        if let Some(e) = self.failed.take() {
            self.next = None;
            return Some(Err(e));
        }
        let url = self.next.take()?;
        if !self.visited.insert(hash(url.as_str())) {
            return Some(Err(LineError::unrequested(
                ErrorKind::Decode,
                "the API's next link points back to a page already listed: the listing \
                 would never end",
            )));
        }
        let label = format!("virtual-line list, page {}", self.pages + 1);
        let (answer, attempts) = match client.fetch(&url, &label, read_answer).await {
            Ok(a) => a,
            Err(mut e) => {
                let page = self.pages + 1;
                e.message = match e.message.strip_prefix("not read: ") {
                    // The run stopped (a 401 elsewhere, a signal): not this page's fault.
                    Some(why) if e.kind == ErrorKind::NotAudited => {
                        format!("listing stopped before page {page} was read: {why}")
                    }
                    _ => format!("listing page {page} failed: {}", e.message),
                };
                return Some(Err(e));
            }
        };
        self.pages += 1;
        let link_error = |message: String| LineError {
            kind: ErrorKind::Decode,
            http_status: Some(200),
            message,
            tracking_id: answer.tracking_id.clone(),
            attempts,
        };
        let target = match &answer.next {
            Ok(target) => target.as_deref(),
            Err(message) => {
                self.failed = Some(link_error(message.clone()));
                None
            }
        };
        if answer.items.is_empty() && answer.skipped == 0 && target.is_some() {
            self.empty_in_a_row += 1;
        } else {
            self.empty_in_a_row = 0;
        }
        if let Some(target) = target {
            if self.empty_in_a_row >= MAX_EMPTY_PAGES {
                self.failed = Some(link_error(format!(
                    "{MAX_EMPTY_PAGES} empty pages in a row, each with a next link: the \
                     listing was given up"
                )));
            } else {
                match self.rules.check(&url, target) {
                    Ok((next, repaired)) => {
                        if (repaired.org_id || repaired.location_ids) && !self.told_repair {
                            self.told_repair = true;
                            tracing::warn!(
                                page = self.pages,
                                org_id = repaired.org_id,
                                location_id = repaired.location_ids,
                                "the API's next-page link lost the orgId or locationId the \
                                 listing asked for (a known API bug): put back in every \
                                 next link"
                            );
                        }
                        self.next = Some(next);
                    }
                    Err(message) => self.failed = Some(link_error(message)),
                }
            }
        }
        Some(Ok(Page {
            items: answer.items,
            skipped: answer.skipped,
            attempts,
        }))
    }
}

fn hash(s: &str) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn items_without_an_id_are_counted_not_kept() {
        let body = br#"{"virtualLines": [
            {"id": "L1", "firstName": "Lobby", "lastName": "Paging",
             "location": {"id": "LOC", "name": "HQ"}},
            {"firstName": "no id"}, {"id": 7}, {"id": "  "}, "text",
            {"id": "L2"}
        ]}"#;
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://x/n>; rel=\"next\""),
        );
        let a = read_answer(&headers, body).unwrap();
        let ids: Vec<&str> = a.items.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["L1", "L2"]);
        assert_eq!(a.skipped, 4);
        assert_eq!(
            a.items[0].identity.label().as_deref(),
            Some("Lobby Paging (HQ)")
        );
        assert_eq!(a.next, Ok(Some("https://x/n".to_string())));
    }

    #[test]
    fn an_answer_that_is_not_a_list_is_an_error() {
        let none = HeaderMap::new();
        for (body, why) in [
            (&b"{}"[..], "no `virtualLines` array"),
            (br#"{"virtualLines": {}}"#, "no `virtualLines` array"),
            (b"[]", "not a JSON object"),
            (b"<html>", "not a JSON object"),
        ] {
            let err = read_answer(&none, body).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let mut bad_link = HeaderMap::new();
        bad_link.insert(LINK, HeaderValue::from_static("https://x/n; rel=next"));
        let a = read_answer(&bad_link, br#"{"virtualLines": [{"id": "L1"}]}"#).unwrap();
        assert_eq!(a.items.len(), 1, "the page's lines are kept");
        let err = a.next.unwrap_err();
        assert!(err.contains("Link header does not parse"), "{err}");
    }

    #[test]
    fn the_first_page_asks_for_org_and_every_location() {
        let base = Url::parse("https://webexapis.com/v1/").unwrap();
        let p = Pages::new(&base, Some("O&1"), &["A".into(), "B".into()], 500);
        assert_eq!(
            p.next.as_ref().map(Url::as_str),
            Some("https://webexapis.com/v1/telephony/config/virtualLines?max=500&orgId=O%261&locationId=A&locationId=B")
        );
        let base = Url::parse("http://127.0.0.1:9/v1").unwrap();
        let p = Pages::new(&base, None, &[], 10);
        assert_eq!(
            p.next.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:9/v1/telephony/config/virtualLines?max=10")
        );
    }
}
