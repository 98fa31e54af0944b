//! `STEM.html` (`CONTRACT.md` §9): one self-contained page for people.
//!
//! What it shows, top to bottom: the run and its verdict, the summary counts, the
//! failing rules by severity, the changes since the previous report (with the lines
//! removed), the waivers with their state and days left, the lines that need
//! attention, and every line.
//!
//! Choices:
//! - Self-contained: style and script are inline, there is no image, font or link to
//!   anything else, and a Content-Security-Policy forbids loading anything, so the page
//!   works offline, from a mail attachment or a file share. Its script is allowed by
//!   its hash only: even if some text slipped through unescaped, no injected script
//!   or event handler would run.
//! - Readable and printable without JavaScript; the little script sorts tables,
//!   filters the lines and opens every section for printing.
//! - Escaped by construction: the templates (`page`) are maud, which escapes every
//!   interpolated value.
//! - Streaming, like the JSON writer: each line's row is rendered as it arrives and
//!   spooled to a hidden temporary file; the page is assembled at the end, when the
//!   summary is known, copying the spool in. Memory holds one row.
//! - Large runs stay usable: beyond 1,000 lines, every line is listed in collapsed
//!   sections of 1,000 (each summary says how many need attention), and the lines that
//!   need attention come first, the first 500 of them in full. A 100,000-line page is
//!   about 250 bytes a compliant line.

mod page;

use std::io::{self, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;

use maud::{html, Render};
use sha2::{Digest, Sha256};

use super::atomic::{temp_name, AtomicFile, Sealed, TempFile};
use super::format::{Closing, Opening};
use super::naming::file_name;
use super::{ReportError, ReportWriter, RunMeta};
use crate::model::{LineReport, LineStatus};
use crate::policy::PolicySet;

/// Lines per collapsed section of the list of every line.
const CHUNK_ROWS: u64 = 1_000;
/// Lines needing attention shown in full at the top.
const ATTENTION_SHOWN: u64 = 500;

/// One section of the list of every line.
#[derive(Debug, Default, Clone, Copy)]
struct Chunk {
    /// 1-based number of its first and last line.
    first: u64,
    last: u64,
    /// Lines by status, in `page::LINE_STATUSES` order.
    counts: [u64; 5],
    /// Offset in the row spool just past its last row.
    end: u64,
}

/// Streaming writer of `STEM.html`.
#[derive(Debug)]
pub(crate) struct HtmlWriter {
    /// The final file, created (empty) at the start so that its name is reserved.
    out: AtomicFile,
    /// Every line's row, in order.
    rows: TempFile,
    /// The rows of the first lines that need attention.
    attention: TempFile,
    attention_total: u64,
    chunks: Vec<Chunk>,
    current: Chunk,
    /// Bytes written to `rows`.
    written: u64,
    meta: RunMeta,
    policies: Arc<PolicySet>,
    warn_expiring_days: u32,
}

impl HtmlWriter {
    /// Opens `dir/.STEM.html.tmp` and its two spools.
    pub(crate) fn create(o: &Opening<'_>) -> Result<HtmlWriter, ReportError> {
        let out = AtomicFile::create(o.dir, &file_name(o.stem, ".html"))?;
        let spool =
            |suffix: &str| TempFile::create_new(o.dir.join(temp_name(&file_name(o.stem, suffix))));
        Ok(HtmlWriter {
            out,
            rows: spool(".html.rows")?,
            attention: spool(".html.attention")?,
            attention_total: 0,
            chunks: Vec::new(),
            current: Chunk::default(),
            written: 0,
            meta: o.meta.clone(),
            policies: Arc::clone(o.policies),
            warn_expiring_days: o.options.warn_expiring_days,
        })
    }
}

fn needs_attention(status: LineStatus) -> bool {
    status != LineStatus::Compliant
}

fn io_err(path: PathBuf) -> impl FnOnce(io::Error) -> ReportError {
    move |source| ReportError::Io { path, source }
}

impl ReportWriter for HtmlWriter {
    fn write_line(&mut self, line: &LineReport) -> Result<(), ReportError> {
        let row = page::line_row(line, &self.policies)?.into_string();
        let rows_path = self.rows.path().to_path_buf();
        self.rows
            .write_all(row.as_bytes())
            .map_err(io_err(rows_path))?;
        self.written += row.len() as u64;
        if needs_attention(line.status) {
            if self.attention_total < ATTENTION_SHOWN {
                let path = self.attention.path().to_path_buf();
                self.attention
                    .write_all(row.as_bytes())
                    .map_err(io_err(path))?;
            }
            self.attention_total += 1;
        }
        let c = &mut self.current;
        let n = line.index as u64 + 1;
        if c.first == 0 {
            c.first = n;
        }
        c.last = n;
        if let Some(i) = page::LINE_STATUSES.iter().position(|s| *s == line.status) {
            c.counts[i] += 1;
        }
        c.end = self.written;
        if c.counts.iter().sum::<u64>() == CHUNK_ROWS {
            self.chunks.push(std::mem::take(&mut self.current));
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, closing: &Closing<'_>) -> Result<Vec<Sealed>, ReportError> {
        if self.current.first != 0 {
            self.chunks.push(self.current);
        }
        let this = &mut *self;
        let out_path = this.out.temp_path().to_path_buf();
        let csp = format!(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{}'; \
             img-src 'none'; base-uri 'none'; form-action 'none'",
            base64(&Sha256::digest(page::SCRIPT.as_bytes()))
        );
        let total = closing.summary.lines.total;
        let shown = this.attention_total.min(ATTENTION_SHOWN);
        let mut text = String::new();
        text.push_str(&page::head(&this.meta, &csp).into_string());
        text.push_str("<body>");
        text.push_str(
            &page::top(&this.meta, &this.policies, closing, this.warn_expiring_days).into_string(),
        );
        text.push_str("<section id=\"attention\">");
        text.push_str(
            &html! {
                    h2 { "Lines needing attention " span.n { "(" (this.attention_total) ")" } }
                    @if this.attention_total == 0 {
                        p { "Every line is compliant." }
                    } @else {
                        p.note {
                            "Lines that are non_compliant, error, invalid or not_audited, in input order"
                            @if shown < this.attention_total {
                                ": the first " (shown) " of " (this.attention_total)
                                ". The list of every line below holds them all (filter it by status)"
                            }
                            "."
                        }
                    }
            }
            .into_string(),
        );
        let out_err = |e: io::Error| ReportError::Io {
            path: out_path.clone(),
            source: e,
        };
        this.out.write_all(text.as_bytes()).map_err(out_err)?;
        if this.attention_total > 0 {
            let open = format!(
                "<table class=\"lines\">{}<tbody>",
                page::lines_head().into_string()
            );
            this.out.write_all(open.as_bytes()).map_err(out_err)?;
            let mut spooled = this.attention.reader()?;
            io::copy(&mut spooled, &mut this.out).map_err(out_err)?;
            drop(spooled);
            this.out.write_all(b"</tbody></table>").map_err(out_err)?;
        }
        this.out.write_all(b"</section>").map_err(out_err)?;

        let intro = html! {
            h2 { "All lines " span.n { "(" (total) ")" } }
            @if this.chunks.len() > 1 {
                p.note { "In sections of " (CHUNK_ROWS) " lines: open one to see its lines." }
            }
            (page::filter_bar(total))
        };
        let intro = format!("<section id=\"lines\">{}", intro.into_string());
        this.out.write_all(intro.as_bytes()).map_err(out_err)?;
        let head = page::lines_head().into_string();
        let chunked = this.chunks.len() > 1;
        let mut spooled = this.rows.reader()?;
        let mut at = 0u64;
        for c in &this.chunks {
            if chunked {
                let summary = html! {
                    "Lines " (c.first) "–" (c.last)
                    @for (i, st) in page::LINE_STATUSES.iter().enumerate().skip(1) {
                        @if c.counts[i] > 0 { span class={ "b " (st.as_str()) } { (c.counts[i]) " " (st.as_str()) } }
                    }
                };
                let open = format!(
                    "<details class=\"chunk\"><summary>{}</summary>",
                    summary.into_string()
                );
                this.out.write_all(open.as_bytes()).map_err(out_err)?;
            }
            let open = format!("<table class=\"lines\">{head}<tbody>");
            this.out.write_all(open.as_bytes()).map_err(out_err)?;
            io::copy(&mut (&mut spooled).take(c.end - at), &mut this.out).map_err(out_err)?;
            at = c.end;
            this.out.write_all(b"</tbody></table>").map_err(out_err)?;
            if chunked {
                this.out.write_all(b"</details>").map_err(out_err)?;
            }
        }
        drop(spooled);
        let end = html! {
            footer {
                "Written by ptt-audit " (this.meta.tool_version) ", run " (this.meta.run_id)
                ". The JSON, CSV and xlsx reports of the same run hold the same results."
            }
        };
        let tail = format!(
            "</section>{}<script>{}</script></body></html>\n",
            end.render().into_string(),
            page::SCRIPT
        );
        this.out.write_all(tail.as_bytes()).map_err(out_err)?;
        let HtmlWriter {
            out,
            rows,
            attention,
            ..
        } = *self;
        let sealed = out.seal()?;
        drop((rows, attention));
        Ok(vec![sealed])
    }
}

/// Standard base64 with padding (for the script's hash in the page's policy).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_4648_vectors() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(raw.as_bytes()), encoded);
        }
    }

    #[test]
    fn the_script_and_style_load_nothing_from_elsewhere() {
        for asset in [page::SCRIPT, page::STYLE] {
            for bad in [
                "http:",
                "https:",
                "url(",
                "@import",
                "//cdn",
                "fetch(",
                "XMLHttpRequest",
            ] {
                assert!(!asset.contains(bad), "{bad}");
            }
        }
        assert!(!page::SCRIPT.contains("</script"));
        assert!(!page::STYLE.contains("</style"));
    }
}
