//! The HTTP/1.1 server. Hand-written on top of tokio's TCP rather than a
//! framework because the faults need control no framework exposes: closing a
//! socket after reading a request, or after applying it, and sending a
//! response whose body is shorter than its Content-Length.

use crate::api;
use crate::state::{Request, Response, Shared};
use crate::types::{FaultKind, RequestRecord, RetryAfter};
use crate::util::{http_date, parse_query, percent_decode};
use chrono::Utc;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};

/// Largest request head and body the fake accepts. A bulk request of 4000
/// contacts is about 1–2 MB; this leaves ample room for "too many" tests.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;
/// An idle keep-alive connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn encode_head(r: &Response, keep_alive: bool) -> Vec<u8> {
    let mut h = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    h.push_str(&format!("Date: {}\r\n", http_date(Utc::now())));
    h.push_str("Server: fake-engage\r\n");
    if !(r.status == 204 || r.status == 304) {
        h.push_str(&format!("Content-Type: {}\r\n", r.content_type));
    }
    h.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    for (k, v) in &r.headers {
        h.push_str(&format!("{k}: {v}\r\n"));
    }
    h.push_str(if keep_alive {
        "Connection: keep-alive\r\n"
    } else {
        "Connection: close\r\n"
    });
    h.push_str("\r\n");
    h.into_bytes()
}

/// An error answer that echoes the request (see `FaultKind::EchoRequest`).
fn echo_response(status: u16, req: &Request) -> Response {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let mut fields = serde_json::Map::new();
    let parsed: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let first = match &parsed {
        serde_json::Value::Array(a) => a.first().cloned().unwrap_or_default(),
        v => v.clone(),
    };
    if let Some(o) = first.as_object() {
        for (k, v) in o {
            fields.insert(k.clone(), serde_json::json!([format!("{v} is not valid")]));
        }
    }
    let headers: Vec<String> = req
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    Response {
        status,
        content_type: "application/json; charset=utf-8",
        headers: Vec::new(),
        body: serde_json::json!({
            "errorCode": "InvalidData",
            "message": format!("{} {} rejected: {body}", req.method, req.target),
            "errors": fields,
            "requestHeaders": headers.join("\r\n"),
            "correlationId": "corr-4711",
        })
        .to_string()
        .into_bytes(),
    }
}

/// The answer for an injected status fault.
fn fault_response(status: u16, retry_after: Option<&RetryAfter>) -> Response {
    let mut headers = Vec::new();
    if let Some(ra) = retry_after {
        let v = match ra {
            RetryAfter::Seconds(s) => s.to_string(),
            RetryAfter::Date(t) => http_date(*t),
            RetryAfter::DateIn(d) => http_date(
                Utc::now()
                    + chrono::Duration::from_std(*d).unwrap_or_else(|_| chrono::Duration::zero()),
            ),
        };
        headers.push(("Retry-After".to_string(), v));
    }
    if (502..=504).contains(&status) {
        // What a gateway in front of Engage would send: not JSON.
        let body = format!(
            "<html><head><title>{status} {r}</title></head><body><h1>{status} {r}</h1></body></html>",
            r = reason(status)
        );
        return Response {
            status,
            content_type: "text/html",
            headers,
            body: body.into_bytes(),
        };
    }
    let msg = if status == 429 {
        "Too many requests."
    } else {
        "An error has occurred."
    };
    Response {
        status,
        content_type: "application/json; charset=utf-8",
        headers,
        body: serde_json::json!({ "message": msg })
            .to_string()
            .into_bytes(),
    }
}

enum ReadError {
    /// The peer went away or the socket failed: just close.
    Closed,
    /// Malformed request: answer this status, then close.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(ReadError::Closed);
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Decodes a chunked body at the start of `b`. `Ok(None)` means more bytes
/// are needed; on success returns the body and the bytes consumed.
fn decode_chunked(b: &[u8]) -> Result<Option<(Vec<u8>, usize)>, ReadError> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(eol) = find_crlf(&b[pos..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&b[pos..pos + eol])
            .map_err(|_| ReadError::Bad(400, "bad chunk"))?;
        let size_str = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size_str, 16).map_err(|_| ReadError::Bad(400, "bad chunk"))?;
        pos += eol + 2;
        if size == 0 {
            // Trailers until an empty line.
            loop {
                let Some(eol) = find_crlf(&b[pos..]) else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(ReadError::Bad(413, "body too large"));
        }
        if b.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&b[pos..pos + size]);
        pos += size + 2;
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Reads one request. `Ok(None)` when the peer closed cleanly between requests.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
) -> Result<Option<Request>, ReadError> {
    // Head.
    let (head_len, method, target, version, headers) = loop {
        let mut hs = [httparse::EMPTY_HEADER; 96];
        let mut req = httparse::Request::new(&mut hs);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let headers: Vec<(String, String)> = req
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_ascii_lowercase(),
                            String::from_utf8_lossy(h.value).trim().to_string(),
                        )
                    })
                    .collect();
                break (
                    n,
                    req.method.unwrap_or("").to_string(),
                    req.path.unwrap_or("/").to_string(),
                    req.version.unwrap_or(1),
                    headers,
                );
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err(ReadError::Bad(431, "request head too large"));
                }
                if buf.is_empty() {
                    match fill(stream, buf).await {
                        Err(ReadError::Closed) => return Ok(None),
                        other => other?,
                    }
                } else {
                    fill(stream, buf).await?;
                }
            }
            Err(_) => return Err(ReadError::Bad(400, "malformed request")),
        }
    };
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked =
        get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let content_length = match get("content-length") {
        Some(v) => Some(
            v.parse::<usize>()
                .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?,
        ),
        None => None,
    };
    let expects_continue = get("expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    let conn = get("connection").map(str::to_ascii_lowercase);
    let keep_alive = match conn.as_deref() {
        Some(c) if c.contains("close") => false,
        Some(c) if c.contains("keep-alive") => true,
        _ => version >= 1,
    };
    buf.drain(..head_len);

    let mut continued = false;
    let body = if chunked {
        loop {
            if let Some((body, used)) = decode_chunked(buf)? {
                buf.drain(..used);
                break body;
            }
            if expects_continue && !continued {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                continued = true;
            }
            fill(stream, buf).await?;
        }
    } else {
        let len = content_length.unwrap_or(0);
        if len > MAX_BODY {
            return Err(ReadError::Bad(413, "body too large"));
        }
        while buf.len() < len {
            if expects_continue && !continued {
                stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                continued = true;
            }
            fill(stream, buf).await?;
        }
        buf.drain(..len).collect()
    };

    let (raw_path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target.as_str(), ""),
    };
    Ok(Some(Request {
        path: percent_decode(raw_path, false),
        query: parse_query(raw_query),
        method,
        target: target.clone(),
        headers,
        body,
        keep_alive,
        arrived: std::time::Instant::now(),
    }))
}

/// Serves one connection until the peer closes, an error, or a fault that
/// closes it.
async fn serve_conn(mut stream: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::with_capacity(8 * 1024);
    loop {
        let req =
            match tokio::time::timeout(IDLE_TIMEOUT, read_request(&mut stream, &mut buf)).await {
                Err(_) | Ok(Ok(None)) | Ok(Err(ReadError::Closed)) => return,
                Ok(Err(ReadError::Bad(status, msg))) => {
                    let r = Response {
                        status,
                        content_type: "application/json; charset=utf-8",
                        headers: Vec::new(),
                        body: serde_json::json!({ "message": msg })
                            .to_string()
                            .into_bytes(),
                    };
                    let mut out = encode_head(&r, false);
                    out.extend_from_slice(&r.body);
                    let _ = stream.write_all(&out).await;
                    return;
                }
                Ok(Ok(Some(req))) => req,
            };
        let at = Instant::now();
        let wall = Utc::now();
        let decision = shared
            .net()
            .decide(&shared.cfg, &req.method, &req.target, at);
        let mut record = RequestRecord {
            at,
            wall,
            method: req.method.clone(),
            path: req.target.clone(),
            status: None,
            apikey_present: req.header("apikey").is_some(),
            user_agent: req.header("user-agent").map(str::to_string),
            fault: decision.fault.clone(),
            body_len: req.body.len(),
        };
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        let mut keep_alive = req.keep_alive;
        let mut truncate = false;
        let resp = if decision.rate_limited {
            Some(fault_response(429, None))
        } else {
            match &decision.fault {
                None => Some(api::handle(&shared, &req)),
                Some(FaultKind::Status429 { retry_after }) => {
                    Some(fault_response(429, retry_after.as_ref()))
                }
                Some(FaultKind::Status(code)) => Some(fault_response(*code, None)),
                Some(FaultKind::EchoRequest(code)) => Some(echo_response(*code, &req)),
                Some(FaultKind::Delay(d)) => {
                    tokio::time::sleep(*d).await;
                    Some(api::handle(&shared, &req))
                }
                Some(FaultKind::DropBeforeResponse) => None,
                Some(FaultKind::ApplyThenDrop) => {
                    let _ = api::handle(&shared, &req);
                    None
                }
                Some(FaultKind::TruncatedBody) => {
                    truncate = true;
                    keep_alive = false;
                    Some(api::handle(&shared, &req))
                }
            }
        };
        record.status = resp.as_ref().map(|r| r.status);
        if shared.cfg.record_requests {
            shared.net().requests.push(record);
        }
        let Some(resp) = resp else {
            // Close without answering.
            return;
        };
        let head = encode_head(&resp, keep_alive);
        let mut out;
        if truncate {
            if resp.body.is_empty() {
                out = head[..head.len() / 2].to_vec();
            } else {
                out = head;
                out.extend_from_slice(&resp.body[..resp.body.len() / 2]);
            }
        } else {
            out = head;
            out.extend_from_slice(&resp.body);
        }
        if stream.write_all(&out).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        // Only an answer sent at once and whole: after a delay the client may have given up.
        if decision.fault.is_none() && !decision.rate_limited && decision.latency.is_zero() {
            confirm_if_receipt(&shared, &req, resp.status);
        }
        if !keep_alive {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Records that a receipt's 2xx answer went out whole (see `Store::confirm_receipt`).
fn confirm_if_receipt(shared: &Shared, req: &Request, status: u16) {
    let path = req.target.split('?').next().unwrap_or_default();
    if req.method != "POST" || !path.to_ascii_lowercase().ends_with("/receipts") {
        return;
    }
    if !(200..300).contains(&status) {
        return;
    }
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    if let Some(id) = body.get("uniqueReceiptId").and_then(|v| v.as_str()) {
        shared.store().confirm_receipt(id);
    }
}

/// Commands from the handle to the server thread.
pub(crate) enum Cmd {
    /// Close (true) or reopen (false) the listener; replies when done.
    Refuse(bool, std::sync::mpsc::Sender<io::Result<()>>),
    Shutdown,
}

/// Binds with SO_REUSEADDR so the same port can be bound again right after
/// `refuse_connections(true)`, while closed connections sit in TIME_WAIT.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let sock = TcpSocket::new_v4()?;
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(1024)
}

async fn accept(l: &Option<TcpListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match l {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// The accept loop. Connections are killed (by bumping `kill`) when the
/// listener is closed, so a refused server also drops pooled keep-alive
/// connections, as a real outage would.
pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: TcpListener,
    addr: SocketAddr,
    mut cmds: mpsc::UnboundedReceiver<Cmd>,
) {
    let (kill_tx, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None | Some(Cmd::Shutdown) => {
                    kill_tx.send_modify(|g| *g += 1);
                    return;
                }
                Some(Cmd::Refuse(true, reply)) => {
                    listener = None;
                    kill_tx.send_modify(|g| *g += 1);
                    let _ = reply.send(Ok(()));
                }
                Some(Cmd::Refuse(false, reply)) => {
                    let res = if listener.is_some() {
                        Ok(())
                    } else {
                        bind(addr).map(|l| listener = Some(l))
                    };
                    let _ = reply.send(res);
                }
            },
            acc = accept(&listener) => {
                let Ok((stream, _)) = acc else {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let mut kill = kill_tx.subscribe();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve_conn(stream, shared) => {}
                        _ = kill.changed() => {}
                    }
                });
            }
        }
    }
}
