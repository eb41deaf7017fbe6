//! A small HTTP/1.1 server on its own threads that only reads the last
//! published snapshot: a scrape never waits on Slurm. (The hardened front
//! with TLS, auth and web-config is its own piece of work.)

use crate::engine::Published;
use crate::expose::Format;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const MAX_HEADER_BYTES: usize = 8192;
const MAX_CONNECTIONS: usize = 64;
const READ_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    pub listener: TcpListener,
    pub telemetry_path: String,
    pub published: Arc<Published>,
}

struct Request {
    method: String,
    path: String,
    accept: Option<String>,
}

enum ReadError {
    TooLarge,
    Bad,
    Closed,
}

fn read_request(stream: &mut TcpStream) -> Result<Request, ReadError> {
    let mut reader = BufReader::new(stream.take(MAX_HEADER_BYTES as u64 + 1));
    let mut total = 0;
    let mut line = String::new();
    let mut first = None;
    let mut accept = None;
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|_| ReadError::Closed)?;
        if n == 0 {
            return Err(if total >= MAX_HEADER_BYTES {
                ReadError::TooLarge
            } else {
                ReadError::Closed
            });
        }
        total += n;
        if total > MAX_HEADER_BYTES {
            return Err(ReadError::TooLarge);
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            break;
        }
        if first.is_none() {
            first = Some(l.to_string());
        } else if let Some((k, v)) = l.split_once(':') {
            if k.trim().eq_ignore_ascii_case("accept") {
                accept = Some(v.trim().to_string());
            }
        } else {
            return Err(ReadError::Bad);
        }
    }
    let first = first.ok_or(ReadError::Bad)?;
    let mut parts = first.split(' ');
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().ok_or(ReadError::Bad)?;
    let version = parts.next().ok_or(ReadError::Bad)?;
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad);
    }
    let path = target.split('?').next().unwrap_or("").to_string();
    Ok(Request {
        method,
        path,
        accept,
    })
}

/// Answers an error and lets the client finish sending: closing a socket
/// with unread bytes resets it, and the client would never see the status.
fn refuse(stream: &mut TcpStream, status: &str, body: &[u8]) {
    respond(stream, status, "text/plain", "", body, false);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut left = 1 << 20;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left -= n.min(left),
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra: &str,
    body: &[u8],
    head_only: bool,
) {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    let _ = stream.write_all(header.as_bytes());
    if !head_only {
        let _ = stream.write_all(body);
    }
    let _ = stream.flush();
}

impl Server {
    fn handle(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
        let req = match read_request(&mut stream) {
            Ok(r) => r,
            Err(ReadError::TooLarge) => {
                refuse(
                    &mut stream,
                    "431 Request Header Fields Too Large",
                    b"request headers too large\n",
                );
                return;
            }
            Err(ReadError::Bad) => {
                refuse(&mut stream, "400 Bad Request", b"bad request\n");
                return;
            }
            Err(ReadError::Closed) => return,
        };
        let head = req.method == "HEAD";
        if req.method != "GET" && !head {
            respond(
                &mut stream,
                "405 Method Not Allowed",
                "text/plain",
                "Allow: GET, HEAD\r\n",
                b"method not allowed\n",
                false,
            );
            return;
        }
        let snap = self.published.get();
        match req.path.as_str() {
            p if p == self.telemetry_path => match snap {
                Some(s) => {
                    let f = Format::negotiate(req.accept.as_deref());
                    respond(&mut stream, "200 OK", f.content_type(), "", s.body(f), head);
                }
                None => respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "",
                    b"first collection still running\n",
                    head,
                ),
            },
            "/-/healthy" => respond(&mut stream, "200 OK", "text/plain", "", b"OK\n", head),
            "/-/ready" => match snap {
                Some(s) if s.complete => {
                    respond(&mut stream, "200 OK", "text/plain", "", b"OK\n", head)
                }
                _ => respond(
                    &mut stream,
                    "503 Service Unavailable",
                    "text/plain",
                    "",
                    b"not ready\n",
                    head,
                ),
            },
            "/" => {
                let body = format!(
                    "<html><head><title>slurm-ha-exporter</title></head><body><h1>slurm-ha-exporter {}</h1><p>Slurm {}</p><p><a href=\"{}\">Metrics</a></p></body></html>\n",
                    env!("CARGO_PKG_VERSION"),
                    crate::slurm::BUILD_VERSION,
                    self.telemetry_path
                );
                respond(
                    &mut stream,
                    "200 OK",
                    "text/html; charset=utf-8",
                    "",
                    body.as_bytes(),
                    head,
                );
            }
            _ => respond(
                &mut stream,
                "404 Not Found",
                "text/plain",
                "",
                b"not found\n",
                head,
            ),
        }
    }

    /// Accepts until the engine is asked to stop; one short-lived thread per
    /// connection, at most MAX_CONNECTIONS at a time (beyond: 503). Accept
    /// blocks (no polling delay on the scrape path); `wake` unblocks it.
    pub fn serve(self) {
        let me = Arc::new(self);
        let active = Arc::new(AtomicUsize::new(0));
        for conn in me.listener.incoming() {
            if me.published.stopping() {
                break;
            }
            let mut stream = match conn {
                Ok(s) => s,
                Err(e) => {
                    crate::warn!("accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                refuse(
                    &mut stream,
                    "503 Service Unavailable",
                    b"too many connections\n",
                );
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let (me2, active2) = (me.clone(), active.clone());
            let spawned = std::thread::Builder::new()
                .name("http-conn".into())
                .spawn(move || {
                    me2.handle(stream);
                    active2.fetch_sub(1, Ordering::SeqCst);
                });
            if spawned.is_err() {
                active.fetch_sub(1, Ordering::SeqCst);
                crate::error!("cannot start a connection thread");
            }
        }
    }
}

/// Unblocks a server waiting in accept (after `request_stop`).
pub fn wake(addr: std::net::SocketAddr) {
    let addr = if addr.ip().is_unspecified() {
        std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    };
    let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
}
