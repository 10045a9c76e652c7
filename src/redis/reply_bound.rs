//! A bound on what one Redis reply may make us hold: the redis crate buffers a reply whole before
//! parsing it, as long as the server says it is (a bulk string may claim 512 MB), and has no
//! setting to refuse one. Something that answers on the Redis port with garbage or a huge bulk
//! string had replies buffered up to 500 MB. So the bytes are followed as they arrive, through
//! RESP's framing only (type byte, length line, payload), and the connection fails as soon as a
//! reply claims or reaches more than [`MAX_REPLY_BYTES`], or is not RESP at all; the link then
//! treats Redis as down and connects afresh later.
//!
//! Our replies are small: a cached result (a few KB), a script's numbers, a PING.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Largest reply accepted, all its parts together.
pub const MAX_REPLY_BYTES: u64 = 8 * 1024 * 1024;
/// Longest line (a status, an error, a length).
const MAX_LINE: usize = 64 * 1024;
/// Deepest nesting of arrays and maps, as the redis crate's own parser allows.
const MAX_DEPTH: usize = 100;

/// Follows RESP framing over a stream of replies.
#[derive(Debug, Default)]
pub struct ReplyScanner {
    state: State,
    /// The line being read, after its type byte.
    line: Vec<u8>,
    kind: u8,
    /// Elements still to come in each open aggregate, innermost last.
    open: Vec<u64>,
    /// Bytes of the reply in progress so far.
    reply_bytes: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Type,
    Line,
    /// Payload and its CRLF still to come.
    Payload(u64),
}

impl ReplyScanner {
    /// Take in `bytes`, the next bytes of the stream; an error once it is not a bounded reply.
    pub fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // Bytes are counted before they can complete a reply, which starts the next count.
            let taken = match self.state {
                State::Type => {
                    self.count(1)?;
                    self.kind = bytes[0];
                    self.line.clear();
                    self.state = State::Line;
                    1
                }
                State::Line => {
                    let end = bytes.iter().position(|&byte| byte == b'\n');
                    let taken = end.map_or(bytes.len(), |end| end + 1);
                    self.count(taken)?;
                    self.line.extend_from_slice(&bytes[..end.unwrap_or(bytes.len())]);
                    if self.line.len() > MAX_LINE {
                        return Err(invalid("a Redis reply line over 64 KB"));
                    }
                    if end.is_some() {
                        self.end_of_line()?;
                    }
                    taken
                }
                State::Payload(left) => {
                    let taken = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                    self.count(taken)?;
                    let left = left - taken as u64;
                    if left == 0 {
                        self.state = State::Type;
                        self.value_done();
                    } else {
                        self.state = State::Payload(left);
                    }
                    taken
                }
            };
            bytes = &bytes[taken..];
        }
        Ok(())
    }

    fn count(&mut self, bytes: usize) -> io::Result<()> {
        self.reply_bytes = self.reply_bytes.saturating_add(bytes as u64);
        if self.reply_bytes > MAX_REPLY_BYTES {
            return Err(invalid("a Redis reply over the size bound"));
        }
        Ok(())
    }

    fn end_of_line(&mut self) -> io::Result<()> {
        let line = self.line.strip_suffix(b"\r").ok_or_else(|| invalid("a Redis reply line without CRLF"))?;
        self.state = State::Type;
        match self.kind {
            b'+' | b'-' | b':' | b',' | b'#' | b'_' | b'(' => self.value_done(),
            b'$' | b'=' | b'!' => match length(line)? {
                None => self.value_done(),
                Some(size) => {
                    if self.reply_bytes.saturating_add(size) > MAX_REPLY_BYTES {
                        return Err(invalid("a Redis reply claiming more than the size bound"));
                    }
                    self.state = State::Payload(size + 2);
                }
            },
            b'*' | b'~' | b'>' | b'%' | b'|' => match length(line)? {
                None | Some(0) if self.kind != b'|' => self.value_done(),
                count => {
                    let count = count.unwrap_or(0);
                    // A map's entries are two values each; an attribute's are followed by the value.
                    let values = match self.kind {
                        b'%' => count.saturating_mul(2),
                        b'|' => count.saturating_mul(2).saturating_add(1),
                        _ => count,
                    };
                    // Every value takes three bytes at least.
                    if self.reply_bytes.saturating_add(values.saturating_mul(3)) > MAX_REPLY_BYTES {
                        return Err(invalid("a Redis reply claiming more than the size bound"));
                    }
                    if self.open.len() >= MAX_DEPTH {
                        return Err(invalid("a Redis reply nested too deep"));
                    }
                    self.open.push(values);
                }
            },
            _ => return Err(invalid("not a Redis reply")),
        }
        Ok(())
    }

    /// One value complete: it may complete the aggregates it is in, and the reply.
    fn value_done(&mut self) {
        loop {
            match self.open.last_mut() {
                None => {
                    self.reply_bytes = 0;
                    return;
                }
                Some(left) => {
                    *left -= 1;
                    if *left > 0 {
                        return;
                    }
                    self.open.pop();
                }
            }
        }
    }
}

/// A length line: `None` for -1 (nil).
fn length(line: &[u8]) -> io::Result<Option<u64>> {
    let text = std::str::from_utf8(line).map_err(|_| invalid("a Redis length that is not a number"))?;
    match text.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(size) if size >= 0 => Ok(Some(size as u64)),
        _ => Err(invalid("a Redis length that is not a number")),
    }
}

fn invalid(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A stream to Redis whose replies are held to the bound.
pub struct BoundedReplies<S> {
    inner: S,
    scanner: ReplyScanner,
    failed: bool,
}

impl<S> BoundedReplies<S> {
    pub fn new(inner: S) -> Self {
        Self { inner, scanner: ReplyScanner::default(), failed: false }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for BoundedReplies<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(invalid("a Redis reply over the size bound")));
        }
        let before = buf.filled().len();
        let this = &mut *self;
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Err(error) = this.scanner.scan(&buf.filled()[before..]) {
            this.failed = true;
            // The bytes stay unread by the parser: it sees the error, not them.
            buf.set_filled(before);
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoundedReplies<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(chunks: &[&[u8]]) -> io::Result<ReplyScanner> {
        let mut scanner = ReplyScanner::default();
        for chunk in chunks {
            scanner.scan(chunk)?;
        }
        Ok(scanner)
    }

    #[test]
    fn ordinary_replies_pass_in_any_pieces_and_each_ends_the_count() {
        let replies: &[u8] = b"+PONG\r\n$5\r\nhello\r\n$-1\r\n*3\r\n:1\r\n$2\r\nab\r\n*2\r\n+a\r\n_\r\n%1\r\n+k\r\n$1\r\nv\r\n*0\r\n-ERR x\r\n";
        let whole = scanned(&[replies]).expect("valid");
        assert_eq!((whole.reply_bytes, whole.open.len()), (0, 0));
        let pieces: Vec<&[u8]> = replies.chunks(3).collect();
        let split = scanned(&pieces).expect("valid in pieces");
        assert_eq!((split.reply_bytes, split.open.len(), split.state), (0, 0, State::Type));
    }

    #[test]
    fn a_bulk_string_claiming_more_than_the_bound_fails_before_its_bytes_come() {
        let claim = format!("${}\r\n", MAX_REPLY_BYTES + 1);
        assert!(scanned(&[claim.as_bytes()]).is_err());
        let big_array = format!("*{}\r\n", MAX_REPLY_BYTES);
        assert!(scanned(&[big_array.as_bytes()]).is_err());
    }

    #[test]
    fn many_small_parts_of_one_reply_add_up_to_the_bound() {
        let mut scanner = ReplyScanner::default();
        scanner.scan(b"*1000000\r\n").expect("a header within the bound");
        let part = b"$100\r\n".iter().copied().chain([b'x'; 100]).chain(*b"\r\n").collect::<Vec<u8>>();
        let mut failed = false;
        for _ in 0..1_000_000 {
            if scanner.scan(&part).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed, "a 100 MB reply in small parts went through");
    }

    #[test]
    fn garbage_and_endless_lines_fail() {
        assert!(scanned(&[b"HTTP/1.1 400 Bad Request\r\n"]).is_err());
        assert!(scanned(&[b"$abc\r\n"]).is_err());
        assert!(scanned(&[b"+", &[b'a'; MAX_LINE + 10]]).is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(scanned(&[deep.as_bytes()]).is_err());
    }
}
