//! Problem documents for the requests the HTTP/1 parser refuses before any of Tenantry's code
//! runs.
//!
//! actix-http answers a request it cannot parse — a malformed request line or header, a
//! request target longer than the 64 KiB a URI may be, a head over 128 KiB — itself, with an
//! empty `400` or `431`, and closes the connection; no middleware sees it. The connections
//! are therefore wrapped in [`ProblemIo`], which recognises that answer on its way out (it is
//! the last thing written on its connection, and the only answer without the
//! `x-content-type-options` every answer of the application carries) and writes a problem
//! document in its place.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The heads actix-http writes for a request it could not parse, and the problem each becomes.
const REFUSALS: [(&[u8], u16, &str, &str, &str); 2] = [
    (
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n",
        400,
        "Bad Request",
        "malformed_request",
        "the request could not be read as HTTP/1.1: a malformed request line or header, or \
         a request target longer than 64 KiB",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        "the request line and headers exceed 128 KiB",
    ),
];

/// A connection whose parser refusals are rewritten into problem documents.
pub struct ProblemIo<T> {
    inner: T,
    /// The problem answer still to be written, and how much of it is.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> ProblemIo<T> {
    /// Wraps a connection.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            replacement: None,
        }
    }
}

/// The problem answer for a refusal head `head` (status line to the blank line).
fn problem_answer(head: &[u8], status: u16, reason: &str, code: &str, detail: &str) -> Vec<u8> {
    let request_id = uuid::Uuid::now_v7().to_string();
    tracing::info!(status, code, request_id = %request_id, "request refused by the HTTP parser");
    let body = serde_json::json!({
        "type": format!("/problems/{code}"),
        "title": reason,
        "status": status,
        "code": code,
        "detail": detail,
        "request_id": request_id,
    })
    .to_string();
    // The date actix-http put on its answer is kept.
    let date = String::from_utf8_lossy(head)
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("date:"))
        .map(|l| format!("{l}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\n\
         content-length: {}\r\nconnection: close\r\nx-content-type-options: nosniff\r\n\
         cache-control: no-store\r\nx-request-id: {request_id}\r\n{date}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Where `needle` first occurs in `haystack`. Every byte every answer writes passes through
/// here (twice), so it is a vectorised search, not a comparison at each offset.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

impl<T: AsyncWrite + Unpin> ProblemIo<T> {
    /// Writes what is left of a replacement; `Ready(Ok)` once none is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            match Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        for (refusal, status, reason, code, detail) in REFUSALS {
            match find(buf, refusal) {
                // Earlier answers first, as they are.
                Some(at) if at > 0 => return Pin::new(&mut this.inner).poll_write(cx, &buf[..at]),
                Some(_) => {
                    let Some(end) = find(buf, b"\r\n\r\n").map(|e| e + 4) else {
                        break;
                    };
                    let answer = problem_answer(&buf[..end], status, reason, code, detail);
                    this.replacement = Some((answer, 0));
                    // The refusal counts as written; the problem goes out in its place.
                    let _ = this.drain(cx)?;
                    return Poll::Ready(Ok(end));
                }
                None => {}
            }
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.drain(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt as _;

    use super::*;

    async fn written(chunks: &[&[u8]]) -> String {
        let mut io = ProblemIo::new(Vec::new());
        for chunk in chunks {
            io.write_all(chunk).await.unwrap();
        }
        io.flush().await.unwrap();
        String::from_utf8(io.inner).unwrap()
    }

    #[tokio::test]
    async fn a_parser_refusal_becomes_a_problem_after_what_came_before() {
        let out = written(&[
            b"HTTP/1.1 200 OK\r\nx-content-type-options: nosniff\r\ncontent-length: 2\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\ndate: Tue, 01 Dec 2026 20:06:24 GMT\r\n\r\n",
        ])
        .await;
        let (first, rest) = out.split_once("{}").unwrap();
        assert!(first.starts_with("HTTP/1.1 200 OK"));
        assert!(rest.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{rest}");
        assert!(rest.contains("content-type: application/problem+json\r\n"));
        assert!(rest.contains("date: Tue, 01 Dec 2026 20:06:24 GMT\r\n"));
        let (_, body) = rest.split_once("\r\n\r\n").unwrap();
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["code"], "malformed_request");
        assert_eq!(problem["status"], 400);
    }

    #[tokio::test]
    async fn answers_of_the_application_pass_unchanged() {
        let answer: &[u8] =
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\nx-content-type-options: nosniff\r\n\r\n";
        assert_eq!(written(&[answer]).await.as_bytes(), answer);
    }
}
