//! The list endpoint, `GET /v1/telephony/config/virtualLines`: pages of list items
//! (`max`, `start`, repeated `locationId`), a `Link: <…>; rel="next"` while lines
//! remain, and the pagination troubles [`ListQuirks`](super::ListQuirks) switches on.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;

use super::data::SyntheticLine;
use super::server::{query_param, Shared, DEFAULT_MAX, LINES_PATH, MAX_MAX};

impl Shared {
    pub(super) fn list(&self, tid: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
        let max = match query_param(query, "max") {
            None => DEFAULT_MAX,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if n >= 1 => n.min(MAX_MAX),
                _ => {
                    return self.error(
                        StatusCode::BAD_REQUEST,
                        tid,
                        "Invalid value for parameter max: a positive integer is required.",
                        None,
                    )
                }
            },
        };
        let start =
            match query_param(query, "start") {
                None => 0,
                Some(v) => match v.parse::<usize>() {
                    Ok(n) => n,
                    Err(_) => return self.error(
                        StatusCode::BAD_REQUEST,
                        tid,
                        "Invalid value for parameter start: a non-negative integer is required.",
                        None,
                    ),
                },
            };
        let per_page = self.listing.page_limit.map_or(max, |limit| max.min(limit));
        if let Some(failing) = self.listing.failing_page {
            if start / per_page + 1 == failing.page {
                let failures = self.failing_page_failures.fetch_add(1, Ordering::Relaxed);
                if failing.times.is_none_or(|n| failures < n) {
                    return self.error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        tid,
                        "Service Unavailable: please try again later.",
                        None,
                    );
                }
            }
        }
        let wanted: Vec<usize> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .filter(|(k, _)| k == "locationId")
            .filter_map(|(_, v)| self.data.locations.iter().position(|l| *l == v))
            .collect();
        let asked_for_locations = query_param(query, "locationId").is_some();
        let lines = &self.data.lines;
        // The page, and whether lines remain after it.
        let (page, more): (Vec<&SyntheticLine>, bool) = if asked_for_locations {
            let mut matching = lines.iter().filter(|l| wanted.contains(&l.location));
            let page: Vec<_> = matching.by_ref().skip(start).take(per_page).collect();
            (page, matching.next().is_some())
        } else {
            let (from, to) = (
                start.min(lines.len()),
                start.saturating_add(per_page).min(lines.len()),
            );
            (lines[from..to].iter().collect(), to < lines.len())
        };
        let mut body =
            String::with_capacity(20 + page.iter().map(|l| l.list_item.len() + 1).sum::<usize>());
        body.push_str("{\"virtualLines\":[");
        for (k, line) in page.iter().enumerate() {
            if k > 0 {
                body.push(',');
            }
            body.push_str(&line.list_item);
        }
        body.push_str("]}");

        let link = more.then(|| {
            let origin = match &self.listing.next_origin {
                Some(o) => o.trim_end_matches('/').to_string(),
                None => {
                    let host = headers
                        .get(header::HOST)
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or(&self.authority);
                    format!("http://{host}")
                }
            };
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            q.append_pair("max", &max.to_string());
            q.append_pair("start", &(start + page.len()).to_string());
            if let Some(org) = query_param(query, "orgId").filter(|_| !self.listing.next_drops_org)
            {
                q.append_pair("orgId", &org);
            }
            for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
                if k == "locationId" {
                    q.append_pair("locationId", &v);
                }
            }
            format!("<{origin}{LINES_PATH}?{}>; rel=\"next\"", q.finish())
        });
        self.json(StatusCode::OK, tid, Bytes::from(body), link)
    }
}
