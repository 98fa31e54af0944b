//! The progress counters (`job::Progress`) and the bar the binary draws from them.
//!
//! The counters are read through `job::run` as the bar reads them: lines counted as
//! they complete (not as the in-order writer reaches them), 429s, the pace. The bar is
//! driven through the binary under a pseudo-terminal (`script`): its last frame says
//! every line, it is cleared before the summary, log lines do not tear it, and `-q`
//! or JSON logs draw none.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ptt_audit::job::{self, Progress};
use ptt_audit::settings::{ApiSettings, AuditSettings, Rate, ReportSettings};
use ptt_audit::webex::{parse_base_url, Pace, Stop, Token};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::watch;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::write;

const POLICY: &str = r#"
[[rule]]
id = "T-AUTO-ANSWER"
title = "No auto-answer"
severity = "critical"
require = "!allowAutoAnswer"
"#;
const SETTINGS: &str = r#"{"allowAutoAnswer":false,"connectionType":"ONE_WAY","accessType":"ALLOW_MEMBERS","members":[]}"#;
const TOKEN: &str = "progress-secret-token-0b5e";
const BIN: &str = env!("CARGO_BIN_EXE_ptt-audit");

fn settings(base: &str, out: &Path, rate: Rate, concurrency: usize) -> AuditSettings {
    AuditSettings {
        api: ApiSettings {
            base_url: parse_base_url(base).expect("base URL"),
            org_id: None,
            token: Token::new(TOKEN, "test").expect("token").into(),
            rate,
            concurrency,
            timeout: Duration::from_secs(30),
            max_retries: 2,
            max_body: ptt_audit::settings::DEFAULT_MAX_BODY,
            max_stall: ptt_audit::settings::DEFAULT_MAX_STALL,
        },
        report: ReportSettings {
            out: out.to_path_buf(),
            formats: ptt_audit::settings::DEFAULT_FORMATS.to_vec(),
            fail_on: ptt_audit::settings::FailOn::Never,
            previous: None,
            findings: ptt_audit::settings::DEFAULT_FINDINGS,
            csv_bom: false,
            warn_expiring_days: ptt_audit::settings::DEFAULT_WARN_EXPIRING_DAYS,
            keep: None,
        },
        discovery: None,
        eval_timeout: ptt_audit::settings::DEFAULT_EVAL_TIMEOUT,
    }
}

fn policies() -> Arc<ptt_audit::policy::PolicySet> {
    Arc::new(ptt_audit::policy::load_str(Path::new("t.toml"), POLICY).expect("policy loads"))
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("L{i:02}")).collect()
}

/// A server that answers every line at once, except `SLOW`, whose answer waits until
/// `release` says so. `held` turns true once `SLOW`'s request has arrived.
async fn holding_server(release: watch::Receiver<bool>, held: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind(crate::common::loopback())
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (mut release, held) = (release.clone(), held.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                if String::from_utf8_lossy(&head).contains("/SLOW/") {
                    held.store(true, Ordering::SeqCst);
                    let _ = release.wait_for(|r| *r).await;
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{SETTINGS}",
                    SETTINGS.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// The in-order writer waits for the first line; the count must not: with the first
/// line held by the server, every other line is counted done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_count_as_they_complete_even_while_an_earlier_one_is_pending() {
    let (release, released) = watch::channel(false);
    let held = Arc::new(AtomicBool::new(false));
    let base = holding_server(released, held.clone()).await;
    let mut line_ids = vec!["SLOW".to_string()];
    line_ids.extend(ids(19));
    let total = line_ids.len();
    let out = tempfile::tempdir().unwrap();
    let settings = settings(&base, out.path(), Rate::Off, 4);
    let lines = ptt_audit::input::collect(&[], &line_ids).expect("IDs");
    let (stop, progress) = (Stop::default(), Progress::default());

    let run = job::run(&settings, policies(), lines, &stop, &progress);
    let watcher = async {
        // Far more than it takes (well under a second); counting in-order writes, the
        // count would stay at 0 until the release and this would fail.
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress.done() < total - 1 {
            assert!(
                Instant::now() < deadline,
                "done stuck at {} of {total} while the first line is pending",
                progress.done()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(held.load(Ordering::SeqCst), "SLOW was requested");
        assert_eq!(progress.done(), total - 1, "SLOW is still pending");
        assert_eq!(progress.total(), total);
        release.send(true).expect("the server listens");
    };
    let (outcome, ()) = tokio::join!(run, watcher);
    let outcome = outcome.expect("the run finishes");
    assert_eq!((progress.done(), progress.total()), (total, total));
    assert_eq!(outcome.summary.lines.compliant, total as u64);
}

/// The final state equals the line count; the 429s and the pace are the pacer's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_end_at_the_line_count_with_the_429s_and_the_pace() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "0"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("/pushToTalk$"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SETTINGS, "application/json"))
        .mount(&server)
        .await;
    let out = tempfile::tempdir().unwrap();
    let settings = settings(
        &format!("{}/v1", server.uri()),
        out.path(),
        Rate::Fixed(50.0),
        4,
    );
    let lines = ptt_audit::input::collect(&[], &ids(12)).expect("IDs");
    let (stop, progress) = (Stop::default(), Progress::default());
    assert_eq!((progress.done(), progress.total()), (0, 0));
    assert_eq!((progress.pace(), progress.throttled()), (None, 0));
    let outcome = job::run(&settings, policies(), lines, &stop, &progress)
        .await
        .expect("the run finishes");
    assert_eq!((progress.done(), progress.total()), (12, 12));
    assert_eq!(outcome.summary.lines.compliant, 12);
    assert_eq!(progress.throttled(), 3);
    // The 429s slowed the run below --rate (the pace climbs back over seconds).
    match progress.pace() {
        Some(Pace::PerSecond(rate)) => assert!(rate > 0.0 && rate <= 50.0, "{rate}"),
        other => panic!("{other:?}"),
    }
}

/// `ptt-audit audit` under a pseudo-terminal made by `script` (util-linux): stdout and
/// stderr both the terminal, as a person at a terminal has them. Returns what the
/// terminal received and the exit code.
async fn on_a_terminal(base: &str, extra: &[&str]) -> Option<(String, i32)> {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("no `script` here: the pseudo-terminal test cannot run");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = write(dir.path(), "policy.toml", POLICY);
    let out = dir.path().join("reports");
    let mut argv = vec![
        BIN.to_string(),
        "audit".into(),
        "--base-url".into(),
        base.into(),
        "--policies".into(),
        policy.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    argv.extend(extra.iter().map(|s| s.to_string()));
    let command = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &command, "/dev/null"])
        .env("WEBEX_TOKEN", TOKEN)
        .env("TERM", "xterm")
        .env_remove("WEBEX_BASE_URL")
        .env_remove("WEBEX_ORG_ID")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("script runs"))
        .await
        .unwrap();
    drop(dir);
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(!text.contains(TOKEN), "the token reached the terminal");
    Some((text, output.status.code().unwrap_or(-1)))
}

/// Terminal output without its escape sequences (`ESC [ … final byte`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\x40'..='\x7e').contains(&c) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A server whose lines are all compliant but `L05`, which is not found (a warning
/// mid-run), at `--rate 20` for long enough that the bar is drawn a few times.
async fn paced_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("/L05/pushToTalk$"))
        .respond_with(ResponseTemplate::new(404))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SETTINGS, "application/json"))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_the_bar_ends_at_every_line_and_is_cleared_before_the_summary() {
    let server = paced_server().await;
    let base = format!("{}/v1", server.uri());
    let mut args = vec!["--rate", "20", "--concurrency", "4"];
    let line_ids = ids(30);
    args.extend(line_ids.iter().flat_map(|id| ["--line", id.as_str()]));
    let Some((raw, code)) = on_a_terminal(&base, &args).await else {
        return;
    };
    assert_eq!(code, 3, "{raw}");
    let text = strip_ansi(&raw);
    // The last frame drawn says every line, at 100%.
    let last = text.rfind("/30 lines").expect("a frame was drawn");
    let frame_start = text[..last].rfind(['\r', '\n']).map_or(0, |i| i + 1);
    let frame = &text[frame_start..];
    assert!(frame.contains("30/30 lines 100%"), "{frame:?}");
    assert!(frame.contains("429s 0"), "{frame:?}");
    // Then it is wiped (erase line), and the summary starts on a clean line.
    let summary = text.find("Lines:").expect("the summary");
    assert!(summary > last, "the summary came before the last frame");
    let wipe = raw.rfind("\x1b[2K").expect("the bar is wiped");
    let summary_raw = raw.find("Lines:").unwrap();
    assert!(wipe < summary_raw, "the summary was not on a wiped line");
    assert!(
        raw[wipe..summary_raw].trim_start_matches("\x1b[2K").trim() == "",
        "{:?}",
        &raw[wipe..summary_raw]
    );
    // The 404's warning sits on a line of its own, the bar taken off the screen first.
    let warning = text
        .split(['\n', '\r'])
        .find(|l| l.contains("line not read"))
        .expect("the 404 is logged");
    assert!(!warning.contains("lines "), "torn: {warning:?}");
    assert!(warning.contains("WARN"), "{warning:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_or_json_logs_draw_no_bar_even_on_a_terminal() {
    let server = paced_server().await;
    let base = format!("{}/v1", server.uri());
    let line_ids = ids(10);
    for flags in [vec!["-q"], vec!["--log-format", "json"]] {
        // Paced, so that a bar would have time to be drawn.
        let mut args = vec!["--rate", "20"];
        args.extend(flags.iter().copied());
        args.extend(line_ids.iter().flat_map(|id| ["--line", id.as_str()]));
        let Some((raw, code)) = on_a_terminal(&base, &args).await else {
            return;
        };
        assert_eq!(code, 3, "{flags:?}: {raw}");
        assert!(!raw.contains("/10 lines"), "{flags:?} drew a bar: {raw:?}");
    }
}

/// With `--all` the total is not known at the start: it grows as pages are listed
/// (the bar hides while it is 0), `listing` says so meanwhile, and the run ends with
/// the total equal to the lines audited, explicit and listed, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_all_the_total_grows_as_lines_are_listed() {
    let sim = ptt_audit::simulator::start(
        ptt_audit::simulator::SimConfig {
            lines: 45,
            listing: ptt_audit::simulator::ListQuirks {
                page_limit: Some(10),
                ..Default::default()
            },
            ..Default::default()
        },
        crate::common::loopback(),
    )
    .await
    .expect("simulator starts");
    let out = tempfile::tempdir().unwrap();
    let mut settings = settings(&sim.base_url, out.path(), Rate::Off, 4);
    settings.discovery = Some(ptt_audit::settings::DiscoverySettings::new(Vec::new()));
    // Two explicit lines that the listing holds too: counted once.
    let explicit: Vec<String> = sim.ids.iter().take(2).cloned().collect();
    let lines = ptt_audit::input::collect(&[], &explicit).expect("IDs");
    let (stop, progress) = (Stop::default(), Progress::default());
    assert!(!progress.listing());
    let run = job::run(&settings, policies(), lines, &stop, &progress);
    let watcher = async {
        let (mut saw_listing, mut totals) = (false, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            saw_listing |= progress.listing();
            let total = progress.total();
            if totals.last() != Some(&total) {
                totals.push(total);
            }
            if total == 45 && !progress.listing() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        (saw_listing, totals)
    };
    let (outcome, (saw_listing, totals)) = tokio::join!(run, watcher);
    let outcome = outcome.expect("the run finishes");
    assert!(saw_listing, "listing() was true while --all listed");
    assert!(totals.windows(2).all(|w| w[0] < w[1]), "{totals:?}");
    assert_eq!((progress.done(), progress.total()), (45, 45));
    assert_eq!(outcome.summary.lines.total, 45);
    assert!(!progress.listing());
    sim.shutdown().await;
}
