//! A proxy in front of a test's Redis that counts round trips: the client's commands pass at
//! once, Redis's replies are held back until the test releases them. Every command a client
//! sends before it has seen a reply belongs to one round; the next round starts only once the
//! test releases that round's replies. So a request's rounds are counted exactly, with no clock
//! in the count: the only waits are for the client to fall quiet (nothing more to send without
//! a reply), bounded far above a loopback send.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct RoundCounter {
    pub port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    /// While false (warming up), replies pass at once.
    holding: AtomicBool,
    /// Replies read at generation g are forwarded once the generation is past g.
    generation: tokio::sync::watch::Sender<u64>,
    /// Bytes the clients have sent, to tell when they have fallen quiet.
    sent: AtomicU64,
    /// Command names sent since the last `take`.
    commands: Mutex<Vec<String>>,
}

impl RoundCounter {
    pub async fn start(redis_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().expect("address").port();
        let shared = Arc::new(Shared::default());
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", redis_port)).await else { continue };
                tokio::spawn(relay(client, server, accepting.clone()));
            }
        });
        Self { port, shared, accept }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// From now on replies wait for `release`.
    pub fn hold(&self) {
        self.shared.holding.store(true, Ordering::SeqCst);
    }

    /// Wait until the clients have sent nothing for a while, then take what they sent.
    pub async fn quiet_commands(&self) -> Vec<String> {
        let mut last = self.shared.sent.load(Ordering::SeqCst);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.shared.sent.load(Ordering::SeqCst);
            if now == last {
                return std::mem::take(&mut *self.shared.commands.lock());
            }
            last = now;
        }
    }

    /// Let every reply held so far through.
    pub fn release(&self) {
        self.shared.generation.send_modify(|generation| *generation += 1);
    }

    /// Run `request` and count its rounds: each time the clients fall quiet with commands sent,
    /// one round; its replies are then released. Rounds of only `PING` (the link's health probe)
    /// are released but not counted. Returns the request's output and each round's commands.
    /// Whatever is sent after the answer (a store that does not hold it up) is let through and
    /// left out, so it is counted neither here nor in the next request's rounds.
    pub async fn rounds<T: Send + 'static>(
        &self,
        request: impl std::future::Future<Output = T> + Send + 'static,
    ) -> (T, Vec<Vec<String>>) {
        self.hold();
        let mut request = tokio::spawn(request);
        let mut rounds = Vec::new();
        loop {
            // A request that needs no more replies ends while its commands are still being
            // watched: what it sends on its way out is not a round it waited for.
            let commands = tokio::select! {
                output = &mut request => {
                    self.shared.holding.store(false, Ordering::SeqCst);
                    self.release();
                    let _after_the_answer = self.quiet_commands().await;
                    return (output.expect("the request ran"), rounds);
                }
                commands = self.quiet_commands() => commands,
            };
            if !commands.is_empty() && commands.iter().any(|name| name != "PING") {
                rounds.push(commands);
            }
            self.release();
            assert!(rounds.len() < 20, "no end to the rounds: {rounds:?}");
        }
    }
}

impl Drop for RoundCounter {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, shared: Arc<Shared>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upward = shared.clone();
    let up = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut pending = Vec::new();
        while let Ok(read) = client_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            pending.extend_from_slice(&buffer[..read]);
            let names = take_commands(&mut pending);
            upward.commands.lock().extend(names);
            upward.sent.fetch_add(read as u64, Ordering::SeqCst);
            if server_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        let mut generations = shared.generation.subscribe();
        while let Ok(read) = server_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if shared.holding.load(Ordering::SeqCst) {
                let read_at = *generations.borrow_and_update();
                while *generations.borrow() <= read_at && shared.holding.load(Ordering::SeqCst) {
                    if generations.changed().await.is_err() {
                        return;
                    }
                }
            }
            if client_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(up, down);
}

/// The names of the complete RESP commands at the front of `pending`, which keeps the rest.
fn take_commands(pending: &mut Vec<u8>) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match parse_command(pending) {
            Some((name, used)) => {
                names.push(name);
                pending.drain(..used);
            }
            None => return names,
        }
    }
}

/// `*N\r\n` then N `$len\r\nbytes\r\n`: the first argument, upper-cased, and the bytes used.
fn parse_command(bytes: &[u8]) -> Option<(String, usize)> {
    let line = |from: usize| -> Option<(&[u8], usize)> {
        let end = bytes[from..].windows(2).position(|pair| pair == b"\r\n")? + from;
        Some((&bytes[from..end], end + 2))
    };
    let (header, mut at) = line(0)?;
    let count: usize = std::str::from_utf8(header.strip_prefix(b"*")?).ok()?.parse().ok()?;
    let mut name = String::new();
    for index in 0..count {
        let (length, start) = line(at)?;
        let length: usize = std::str::from_utf8(length.strip_prefix(b"$")?).ok()?.parse().ok()?;
        let end = start + length;
        if bytes.len() < end + 2 {
            return None;
        }
        if index == 0 {
            name = String::from_utf8_lossy(&bytes[start..end]).to_ascii_uppercase();
        }
        at = end + 2;
    }
    Some((name, at))
}
