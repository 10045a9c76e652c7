//! A private Sentinel set-up on free loopback ports: one master, one replica and three
//! sentinels (quorum 2) watching them as `mymaster`, so tests can crash the master and watch the
//! sentinels promote the replica without touching any shared Redis.
//!
//! Gotchas a test must allow for:
//! - A restarted old master comes back as a master (empty: no persistence) and stays one until
//!   a sentinel notices and sends it REPLICAOF. Sentinel polls a replica's INFO every 10 s and
//!   waits 8 s after it last reported a role change, so that takes about 10-20 s: give
//!   `wait_role(old, "slave", ..)` 30 s. A client that bypasses the sentinels meanwhile can write
//!   to it and lose those writes.
//! - Kill the master only once the replica is in sync (`start` ensures it); sentinels won't
//!   promote a replica that has been disconnected for too long.
#![allow(dead_code)] // each test binary uses a different part of this

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::redis_wire::{Process, field, free_port, poll, query, query_as};

const MASTER_NAME: &str = "mymaster";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisSentinel {
    data: Vec<Node>,      // the initial master, then the initial replica
    sentinels: Vec<Node>, // declared before `root`: the servers die before their dirs go
    password: Option<String>,
    root: tempfile::TempDir,
}

struct Node {
    port: u16,
    dir: PathBuf,
    conf: PathBuf,
    sentinel: bool,
    password: Option<String>, // what our own queries must AUTH with
    child: Option<Process>,
}

impl RedisSentinel {
    /// Start master, replica and three sentinels, and wait until every sentinel knows the master,
    /// the replica and both other sentinels. Panics with a clear message when Redis is missing.
    pub fn start() -> Self {
        Self::start_inner(None)
    }

    /// As `start`, with `requirepass` on the sentinels (not on master and replica): clients
    /// must AUTH to the sentinels, and the sentinels use the same password with each other.
    pub fn start_with_sentinel_password(password: &str) -> Self {
        assert!(!password.contains(['"', '\\', ' ']), "keep the test password to plain characters");
        Self::start_inner(Some(password.to_string()))
    }

    fn start_inner(password: Option<String>) -> Self {
        let root = tempfile::tempdir().expect("temporary directory for the sentinel set-up");
        let master = Node::start(root.path(), "master", false, None, "");
        let master_port = master.port;
        let replica = Node::start(root.path(), "replica", false, None, &format!("replicaof 127.0.0.1 {master_port}\n"));
        let mut set = Self { data: vec![master, replica], sentinels: Vec::new(), password, root };
        // Sentinels learn of replicas from the master's INFO, which they poll only every 10 s:
        // a replica linked before they start is in their very first INFO.
        let replica_port = set.data[1].port;
        poll(READY_TIMEOUT, || replica_link_up(replica_port).then_some(()))
            .unwrap_or_else(|| panic!("replica never linked to the master\n{}", set.logs()));
        for index in 0..3 {
            let requirepass = set.password.as_ref().map(|pw| format!("requirepass \"{pw}\"\n")).unwrap_or_default();
            let config = format!(
                "sentinel resolve-hostnames no\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 3000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n{requirepass}"
            );
            let name = format!("sentinel-{index}");
            set.sentinels.push(Node::start(set.root.path(), &name, true, set.password.clone(), &config));
        }
        let ready = |port| {
            let known = set.sentinel_query(port, &["SENTINEL", "master", MASTER_NAME]).map(|text| pairs(&text));
            set.reported_master(port) == Some(master_port)
                && known.is_some_and(|known| {
                    known.get("num-slaves").map(String::as_str) == Some("1")
                        && known.get("num-other-sentinels").map(String::as_str) == Some("2")
                })
        };
        poll(READY_TIMEOUT, || set.sentinel_ports().into_iter().all(ready).then_some(()))
            .unwrap_or_else(|| panic!("sentinels did not all see master, replica and each other\n{}", set.logs()));
        set
    }

    pub fn master_name(&self) -> &str {
        MASTER_NAME
    }

    pub fn sentinel_password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|node| node.port).collect()
    }

    /// `redis://127.0.0.1:S` per sentinel, without the password (see `sentinel_password`).
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(|node| format!("redis://127.0.0.1:{}", node.port)).collect()
    }

    pub fn sentinel_list(&self) -> String {
        self.sentinel_urls().join(",")
    }

    /// The two data nodes' ports: the initial master first.
    pub fn node_ports(&self) -> Vec<u16> {
        self.data.iter().map(|node| node.port).collect()
    }

    /// The master's port as most live sentinels report it.
    pub fn master_port(&self) -> u16 {
        let views: Vec<u16> = self.live_sentinels().filter_map(|port| self.reported_master(port)).collect();
        let votes = |port: &u16| views.iter().filter(|&view| view == port).count();
        views.iter().copied().max_by_key(votes).unwrap_or_else(|| panic!("no sentinel reports {MASTER_NAME}"))
    }

    /// SIGKILL the current master, as a crash would; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        self.kill(port);
        port
    }

    /// SIGKILL any of the data nodes or sentinels.
    pub fn kill(&mut self, port: u16) {
        self.node_mut(port).kill();
    }

    /// Start a killed node again on its port, from its config file: a data node as whatever the
    /// sentinels last made it (they CONFIG REWRITE nodes they reconfigure; a node that was down
    /// then keeps its old role), a sentinel with the state it had rewritten into its file.
    pub fn restart(&mut self, port: u16) {
        let node = self.node_mut(port);
        node.kill();
        assert!(node.spawn(), "redis-server did not start again on port {port}");
    }

    /// Wait until every live sentinel reports a master other than `old_master`, the same one,
    /// and that node answers ROLE master.
    pub fn wait_for_failover(&self, old_master: u16, timeout: Duration) -> u16 {
        let probe = || {
            let mut views = self.live_sentinels().map(|port| self.reported_master(port));
            let first = views.next()??;
            let agreed = views.all(|view| view == Some(first));
            (agreed && first != old_master && role(first).as_deref() == Some("master")).then_some(first)
        };
        poll(timeout, probe)
            .unwrap_or_else(|| panic!("no failover from {old_master} within {timeout:?}\n{}", self.logs()))
    }

    /// Wait until `port` answers ROLE with `role` ("master" or "slave").
    pub fn wait_role(&self, port: u16, role_wanted: &str, timeout: Duration) {
        poll(timeout, || (role(port).as_deref() == Some(role_wanted)).then_some(())).unwrap_or_else(|| {
            panic!("port {port} is {:?}, not {role_wanted}, after {timeout:?}\n{}", role(port), self.logs())
        })
    }

    /// `master`, `slave` or `sentinel`; None when nothing answers on `port`.
    pub fn role(&self, port: u16) -> Option<String> {
        let password = self.sentinels.iter().any(|node| node.port == port).then_some(self.password.as_deref());
        query_as(port, password.flatten(), &["ROLE"])?.lines().next().map(str::to_string)
    }

    /// Ask one sentinel, with AUTH first when the sentinels have a password.
    pub fn sentinel_query(&self, port: u16, args: &[&str]) -> Option<String> {
        query_as(port, self.password.as_deref(), args)
    }

    fn reported_master(&self, sentinel: u16) -> Option<u16> {
        let address = self.sentinel_query(sentinel, &["SENTINEL", "get-master-addr-by-name", MASTER_NAME])?;
        address.lines().nth(1)?.parse().ok()
    }

    fn live_sentinels(&self) -> impl Iterator<Item = u16> + '_ {
        self.sentinels.iter().filter(|node| node.child.is_some()).map(|node| node.port)
    }

    fn node_mut(&mut self, port: u16) -> &mut Node {
        let mut nodes = self.data.iter_mut().chain(self.sentinels.iter_mut());
        nodes.find(|node| node.port == port).unwrap_or_else(|| panic!("no node of this set-up on port {port}"))
    }

    /// The tail of every log, for panic messages: sentinel logs show each step of a failover.
    fn logs(&self) -> String {
        let mut text = String::new();
        for node in self.data.iter().chain(&self.sentinels) {
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let state = if node.child.is_some() { "up" } else { "down" };
            text += &format!("--- {} {} ({state}) ---\n", node.dir.display(), node.port);
            text += &(lines[lines.len().saturating_sub(10)..].join("\n") + "\n");
        }
        text
    }
}

/// Whether the replica on `port` is linked to its master.
pub fn replica_link_up(port: u16) -> bool {
    query(port, &["INFO", "replication"]).is_some_and(|info| field(&info, "master_link_status") == Some("up"))
}

fn role(port: u16) -> Option<String> {
    query(port, &["ROLE"])?.lines().next().map(str::to_string)
}

impl Node {
    /// Write the config (common lines plus `extra`) and start; a port taken before
    /// redis-server binds it makes that server exit, and we try another one.
    fn start(root: &Path, name: &str, sentinel: bool, password: Option<String>, extra: &str) -> Node {
        let dir = root.join(name);
        std::fs::create_dir(&dir).expect("node directory");
        let conf = dir.join(if sentinel { "sentinel.conf" } else { "redis.conf" });
        let mut node = Node { port: 0, dir, conf, sentinel, password, child: None };
        for _ in 0..5 {
            node.port = free_port();
            let mut config = format!(
                "port {}\nbind 127.0.0.1\ndir \"{}\"\nlogfile \"{}\"\n",
                node.port,
                node.dir.display(),
                node.dir.join("redis.log").display()
            );
            if !sentinel {
                // Diskless full sync waits 5 s by default for more replicas to join: pure delay.
                config += "save \"\"\nappendonly no\nrepl-diskless-sync-delay 0\n";
            }
            config += extra;
            std::fs::write(&node.conf, config).expect("write the config file");
            if node.spawn() {
                return node;
            }
        }
        panic!("redis-server ({name}) did not start on any of 5 free ports");
    }

    /// Start redis-server on `self.port`; true once that very process answers there (not another
    /// test's server that took the port first).
    fn spawn(&mut self) -> bool {
        let mut command = Command::new(binary("redis-server"));
        command.arg(&self.conf);
        if self.sentinel {
            command.arg("--sentinel");
        }
        self.child = Process::start(&mut command, self.port, self.password.as_deref());
        self.child.is_some()
    }

    fn kill(&mut self) {
        self.child = None;
    }
}

/// RESP2 flat `key, value, key, value...` replies (SENTINEL master) as a map.
fn pairs(text: &str) -> std::collections::HashMap<String, String> {
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks_exact(2).map(|pair| (pair[0].to_string(), pair[1].to_string())).collect()
}

fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|path| Path::is_file(path)).unwrap_or_else(|| {
        panic!(
            "this test needs `{name}` on PATH to run private Redis Sentinels; install Redis \
             (Debian: `apt-get install redis-server`; `redis-sentinel` is not needed) and run the tests again"
        )
    })
}
