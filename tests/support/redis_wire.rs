//! Talking to a test's own Redis processes without the crate under test: RESP by hand over a
//! std socket (enough for INFO, ROLE, CLUSTER and SENTINEL queries), polling, free ports. Shared
//! by the cluster and Sentinel harnesses.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use super::redis_support::free_port;

/// Send one command as a RESP array and read its reply. Arrays come back one element per line
/// (nested ones flattened); error and nil replies, and no answer at all, are None.
pub fn query(port: u16, args: &[&str]) -> Option<String> {
    query_as(port, None, args)
}

pub fn query_as(port: u16, password: Option<&str>, args: &[&str]) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let stream = TcpStream::connect_timeout(&address, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = BufReader::new(&stream);
    let mut send = |args: &[&str]| {
        let mut command = format!("*{}\r\n", args.len());
        for arg in args {
            command += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        (&stream).write_all(command.as_bytes()).ok()?;
        read_reply(&mut reader).ok()?
    };
    if let Some(password) = password {
        send(&["AUTH", password])?;
    }
    send(args)
}

/// Err: the connection broke or spoke something else than RESP2.
fn read_reply(reader: &mut impl BufRead) -> Result<Option<String>, ()> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(drop)?;
    let line = line.strip_suffix("\r\n").ok_or(())?;
    let (kind, rest) = (line.get(..1).ok_or(())?, &line[1..]);
    let length = || rest.parse::<i64>().map_err(drop);
    match kind {
        "+" | ":" => Ok(Some(rest.to_string())),
        "-" => Ok(None),
        "$" if length()? < 0 => Ok(None),
        "$" => {
            let mut bytes = vec![0; length()? as usize + 2];
            reader.read_exact(&mut bytes).map_err(drop)?;
            bytes.truncate(bytes.len() - 2);
            Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
        }
        "*" if length()? < 0 => Ok(None),
        "*" => {
            let items: Result<Vec<_>, ()> = (0..length()?).map(|_| read_reply(reader)).collect();
            Ok(Some(items?.into_iter().map(Option::unwrap_or_default).collect::<Vec<_>>().join("\n")))
        }
        _ => Err(()),
    }
}

/// `key:value` from INFO-style text.
pub fn field<'a>(info: &'a str, key: &str) -> Option<&'a str> {
    info.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(':')).map(str::trim)
}

/// Poll every 50 ms until `probe` yields a value or `timeout` passes.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A redis-server of a test's own, killed (SIGKILL, as a crash would) when dropped.
pub struct Process(Child);

impl Process {
    /// Start `command` and wait until that very process answers on `port` (`INFO` process_id,
    /// after `AUTH` with `password`): not another test's server that took the port first.
    /// `None` when it exited (it could not bind the port) or never answered.
    pub fn start(command: &mut Command, port: u16, password: Option<&str>) -> Option<Self> {
        let child = command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
        let mut process = Self(child.unwrap_or_else(|error| panic!("could not start redis-server: {error}")));
        let answered = poll(Duration::from_secs(10), || {
            if process.0.try_wait().ok().flatten().is_some() {
                return Some(false);
            }
            (serving_pid(port, password) == Some(process.0.id())).then_some(true)
        });
        (answered == Some(true)).then_some(process)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serving_pid(port: u16, password: Option<&str>) -> Option<u32> {
    field(&query_as(port, password, &["INFO", "server"])?, "process_id")?.parse().ok()
}
