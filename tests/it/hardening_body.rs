//! Answers too large to hold (`--max-body`), from a raw tokio TCP server: wiremock
//! cannot send a body that never ends or one that claims 10 GiB. The test counts what
//! the server managed to send before the client hung up.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::hardening_api::audit;

/// How a raw server sends its never-ending answer.
#[derive(Debug, Clone, Copy)]
enum Huge {
    /// `Transfer-Encoding: chunked`, chunks forever.
    EndlessChunked,
    /// `Content-Length` of 10 GiB, then as much of it as the client takes.
    ContentLength,
}

/// The most a hostile server here writes to one connection: far beyond any cap the
/// tests set, so a client that does not stop reading shows up as this figure.
const SERVER_LIMIT: u64 = 1 << 30;

/// The raw server's socket send buffer (the kernel may double it).
const SERVER_SEND_BUFFER: u32 = 16 * 1024;

/// What a raw server saw.
#[derive(Debug, Default)]
struct Sent {
    connections: AtomicUsize,
    /// Body bytes the server managed to write on its busiest connection.
    most_on_one: AtomicU64,
}

/// A raw TCP server answering every request with a 200 whose body never ends, until
/// the client hangs up; counts what it managed to send.
async fn huge_body_server(kind: Huge) -> (String, Arc<Sent>) {
    // A small send buffer (accepted sockets inherit it) keeps what the kernel holds
    // for the server small, so the count below is close to what the client read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_send_buffer_size(SERVER_SEND_BUFFER).unwrap();
    socket.bind(crate::common::loopback()).unwrap();
    let listener = socket.listen(16).unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let sent = Arc::new(Sent::default());
    let seen = sent.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                seen.connections.fetch_add(1, Ordering::SeqCst);
                // Read the request head.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let start = match kind {
                    Huge::EndlessChunked => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                                             Transfer-Encoding: chunked\r\n\r\n"
                        .to_string(),
                    Huge::ContentLength => format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\n\r\n",
                        10u64 << 30
                    ),
                };
                if conn.write_all(start.as_bytes()).await.is_err() {
                    return;
                }
                // A JSON string that never closes: `{"allowAutoAnswer":"xxxx…`.
                let payload = vec![b'x'; 64 * 1024];
                let mut body = 0u64;
                let mut first = true;
                while body < SERVER_LIMIT {
                    let data: Vec<u8> = if first {
                        first = false;
                        let mut d = br#"{"allowAutoAnswer":""#.to_vec();
                        d.extend_from_slice(&payload);
                        d
                    } else {
                        payload.clone()
                    };
                    let frame = match kind {
                        Huge::EndlessChunked => {
                            let mut f = format!("{:x}\r\n", data.len()).into_bytes();
                            f.extend_from_slice(&data);
                            f.extend_from_slice(b"\r\n");
                            f
                        }
                        Huge::ContentLength => data.clone(),
                    };
                    if conn.write_all(&frame).await.is_err() {
                        break;
                    }
                    body += data.len() as u64;
                    seen.most_on_one.fetch_max(body, Ordering::SeqCst);
                }
            });
        }
    });
    (base, sent)
}

/// An answer over `--max-body` is a `decode` error and the client stops reading near
/// the cap: memory does not grow with the body (before, a 2 GB body took 3.9 GB and
/// ended up whole in the JSON report).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_max_body_is_a_decode_error_and_is_not_read_past_the_cap() {
    const CAP: u64 = 256 * 1024;
    // What may sit in the two sockets' kernel buffers besides what the client read: a
    // few hundred KiB here (the server's is kept small). The bug wrote until the
    // server's limit (1 GiB).
    const BUFFERS: u64 = 8 << 20;
    for kind in [Huge::EndlessChunked, Huge::ContentLength] {
        let (base, sent) = huge_body_server(kind).await;
        let run = audit(
            &base,
            &[
                "--line",
                "BIG",
                "--max-body",
                "256KiB",
                "--max-retries",
                "1",
                "--timeout",
                "60s",
                "--rate",
                "0",
            ],
        )
        .await;
        assert_eq!(run.code(), 3, "{kind:?}: {}", run.stderr());
        let line = &run.lines()[0];
        assert_eq!(line["status"], "error", "{kind:?}");
        assert_eq!(line["settings"], Value::Null, "{kind:?}");
        assert_eq!(line["error"]["kind"], "decode", "{kind:?}");
        assert_eq!(line["error"]["http_status"], 200, "{kind:?}");
        assert_eq!(line["error"]["attempts"], 2, "{kind:?}: retried once");
        let message = line["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("larger than --max-body (262144 bytes)"),
            "{kind:?}: {message}"
        );
        let most = sent.most_on_one.load(Ordering::SeqCst);
        assert_eq!(sent.connections.load(Ordering::SeqCst), 2, "{kind:?}");
        assert!(
            most < CAP + BUFFERS,
            "{kind:?}: the server sent {most} bytes on one connection before the client \
             hung up, for a cap of {CAP}"
        );
        if let Huge::ContentLength = kind {
            // Refused on its Content-Length: nothing of the body was read.
            assert!(most < BUFFERS, "{most}");
        }
        // Nothing of the body reached the reports.
        for f in run.reports() {
            let size = std::fs::metadata(&f).unwrap().len();
            assert!(size < 64 * 1024, "{}: {size} bytes", f.display());
        }
        eprintln!("{kind:?}: the server sent at most {most} bytes on one connection");
    }
}
