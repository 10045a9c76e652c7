//! Which protocol a new connection speaks, told by peeking at its first bytes (the HTTP/2
//! preface) rather than reading them: hyper-util's auto-detection reads them and hands them back
//! in front of the stream, and hyper's first read then finds its 8 KB buffer partly used, asks
//! for 8 KB more and the buffer doubles: 8 KB more per HTTP/1.1 connection for as long as it
//! lived (heaptrack showed 16 KB read buffers; with 10,000 connections held, peak RSS fell from
//! 422 to 383 MiB without them).

use std::time::Duration;

use tokio::net::TcpStream;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    /// HTTP/2 without TLS, by prior knowledge (h2c).
    Http2,
}

/// What every HTTP/2 connection starts with (RFC 9113, section 3.4).
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol of a new connection, from its first bytes, which stay unread for hyper. Decided
/// as soon as they differ from the HTTP/2 preface: an HTTP/1.1 method differs by its second byte.
pub(super) async fn sniff(stream: &TcpStream) -> std::io::Result<Protocol> {
    let mut head = [0u8; HTTP2_PREFACE.len()];
    loop {
        let seen = stream.peek(&mut head).await?;
        // Nothing (the client closed): hyper reads the end and closes too.
        if seen == 0 || head[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(Protocol::Http1);
        }
        if seen == HTTP2_PREFACE.len() {
            return Ok(Protocol::Http2);
        }
        // Part of the preface so far. A peek answers at once while those bytes wait unread, so
        // pause before looking again; the caller's head timeout bounds the wait.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    /// A connection over loopback whose client has sent `chunks`, a pause after each.
    async fn sniffed(chunks: &[&[u8]]) -> Protocol {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let chunks: Vec<Vec<u8>> = chunks.iter().map(|chunk| chunk.to_vec()).collect();
        // Then it closes: bytes sent before that can still be peeked at.
        tokio::spawn(async move {
            for chunk in chunks {
                client.write_all(&chunk).await.expect("write");
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        });
        tokio::time::timeout(Duration::from_secs(10), sniff(&server)).await.expect("decided").expect("sniff")
    }

    #[tokio::test]
    async fn the_protocol_is_told_by_the_preface() {
        assert_eq!(sniffed(&[b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"]).await, Protocol::Http1);
        // POST and PRI share their first byte.
        assert_eq!(sniffed(&[b"P", b"OST /api/analyze HTTP/1.1\r\n"]).await, Protocol::Http1);
        assert_eq!(sniffed(&[HTTP2_PREFACE]).await, Protocol::Http2);
        // A preface that arrives in pieces is waited for.
        assert_eq!(sniffed(&[b"PRI * HTTP/2", b".0\r\n\r\nSM\r\n\r\n"]).await, Protocol::Http2);
        // A client that closes at once is left to hyper.
        assert_eq!(sniffed(&[]).await, Protocol::Http1);
    }

    #[tokio::test]
    async fn the_bytes_sniffed_are_still_there_for_hyper() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        client.write_all(b"GET / HTTP/1.1\r\n").await.expect("write");
        assert_eq!(sniff(&server).await.expect("sniff"), Protocol::Http1);
        let mut read = [0u8; 16];
        let mut server = server;
        tokio::io::AsyncReadExt::read_exact(&mut server, &mut read).await.expect("read");
        assert_eq!(&read, b"GET / HTTP/1.1\r\n");
    }
}
