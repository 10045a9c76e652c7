//! A private six-node Redis Cluster (3 masters, 3 replicas) on free loopback ports, so tests can
//! crash a master and watch its replica take over without touching any shared Redis.
//!
//! Rules for tests that fail a shard over:
//! - Call `wait_replicas_synced()` before killing a master. A replica that has not linked to its
//!   master (or lags behind it) either refuses to be elected (its data counts as too old under
//!   `cluster-replica-validity-factor`) or wins and silently drops the writes it never received.
//! - Call `settle_between_failovers()` between two failovers. A master refuses to vote twice
//!   within 2 x node-timeout for replicas of the same failed master, and a replica whose election
//!   got no majority retries only after 4 x node-timeout; elections in quick succession also
//!   misbehave in Redis 7.0 (redis/redis#8752: a node that flips roles fast wins a second
//!   election inside that window, then full-syncs as a replica anyway). Waiting 4 x node-timeout
//!   keeps each failover a clean, single election.
#![allow(dead_code)] // each test binary uses a different part of this

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::redis_wire::{Process, field, free_port, poll, query};

const NODES: usize = 6;
const NODE_TIMEOUT_MS: u64 = 1000;
const READY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct RedisCluster {
    nodes: Vec<Node>,
    root: tempfile::TempDir, // declared after `nodes`: the servers die before their dirs go
}

struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Process>,
    /// What the node served when `kill` took it down: the slots a failover has to hand over.
    slots_at_kill: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Start six empty nodes, join them into a cluster and wait until every node sees all slots
    /// covered and every replica is in sync. Panics with a clear message when Redis is missing.
    pub fn start() -> Self {
        let root = tempfile::tempdir().expect("temporary directory for the cluster");
        let mut nodes = Vec::with_capacity(NODES);
        for index in 0..NODES {
            let dir = root.path().join(format!("node-{index}"));
            std::fs::create_dir(&dir).expect("node directory");
            let mut node = Node { port: 0, dir, child: None, slots_at_kill: Vec::new() };
            // A port free a moment ago can be taken before redis-server binds it (or its bus
            // port): that server exits, and we try again elsewhere.
            let started = (0..5).any(|_| {
                node.port = cluster_port();
                node.spawn()
            });
            assert!(started, "redis-server (cluster node) did not start on any of 5 free ports");
            nodes.push(node);
        }
        let cluster = Self { nodes, root };
        cluster.create();
        cluster.wait_replicas_synced();
        let masters = cluster.masters().len();
        assert_eq!(masters, 3, "redis-cli --cluster create made {masters} masters, not 3\n{}", cluster.logs());
        cluster
    }

    /// Every node's port, masters and replicas alike, dead or alive.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    /// `redis://` URLs of all six nodes: a client may seed from any of them.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("redis://127.0.0.1:{}", node.port)).collect()
    }

    pub fn seed_list(&self) -> String {
        self.seeds().join(",")
    }

    /// Live nodes that call themselves master. Just after `restart` of a failed-over master this
    /// includes it for a moment, until gossip demotes it: use `wait_role` first.
    pub fn masters(&self) -> Vec<u16> {
        self.live().filter(|&port| self.role(port).as_deref() == Some("master")).collect()
    }

    /// Live replicas replicating from `master`.
    pub fn replicas_of(&self, master: u16) -> Vec<u16> {
        self.live().filter(|&port| replica_of(port) == Some(master)).collect()
    }

    /// `master`, `slave`, or None when nothing answers on `port`.
    pub fn role(&self, port: u16) -> Option<String> {
        query(port, &["ROLE"])?.lines().next().map(str::to_string)
    }

    pub fn key_slot(&self, key: &str) -> u16 {
        let live = self.live().next().expect("a live cluster node");
        query(live, &["CLUSTER", "KEYSLOT", key]).and_then(|slot| slot.parse().ok()).expect("CLUSTER KEYSLOT")
    }

    /// The master owning `slot` in the view most live nodes share (views differ for a moment
    /// during a failover). The owner may be a dead master that has not been replaced yet.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        let views: Vec<u16> = self.live().filter_map(|port| slot_owner_seen_by(port, slot)).collect();
        let votes = |port: &u16| views.iter().filter(|&view| view == port).count();
        views.iter().copied().max_by_key(votes).unwrap_or_else(|| panic!("no live node knows who owns slot {slot}"))
    }

    /// Keys held by each master: shows that a test's keys really spread over the shards.
    pub fn dbsize_per_master(&self) -> Vec<(u16, u64)> {
        let size = |port| query(port, &["DBSIZE"]).and_then(|n| n.parse().ok()).unwrap_or(0);
        self.masters().into_iter().map(|port| (port, size(port))).collect()
    }

    /// SIGKILL the node on `port`, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let index = self.index(port);
        if self.nodes[index].child.is_some() {
            self.nodes[index].slots_at_kill = own_slots(port);
        }
        self.nodes[index].kill();
    }

    /// Start the node again on its port and in its directory: it reads its nodes.conf and rejoins
    /// as the node it was. It comes back empty (no persistence); a failed-over master claims its
    /// old slots for a moment before gossip demotes it to a replica of its successor.
    pub fn restart(&mut self, port: u16) {
        let index = self.index(port);
        let node = &mut self.nodes[index];
        node.kill();
        assert!(node.spawn(), "redis-server did not start again on port {port}");
    }

    /// Wait until every live node routes the slots `old_master` served when killed to one live
    /// replacement that answers ROLE master, and all of them report cluster_state:ok.
    pub fn wait_for_failover(&self, old_master: u16, timeout: Duration) -> u16 {
        let node = &self.nodes[self.index(old_master)];
        assert!(node.child.is_none(), "kill({old_master}) before waiting for its failover");
        assert!(!node.slots_at_kill.is_empty(), "port {old_master} served no slots when killed: not a master");
        let probe = || {
            let mut owner = None;
            for port in self.live() {
                for &(first, _) in &node.slots_at_kill {
                    let seen = slot_owner_seen_by(port, first)?;
                    if seen == old_master || owner.is_some_and(|owner| owner != seen) {
                        return None;
                    }
                    owner = Some(seen);
                }
                cluster_ok(port).then_some(())?;
            }
            let owner = owner?;
            (self.is_live(owner) && self.role(owner).as_deref() == Some("master")).then_some(owner)
        };
        poll(timeout, probe)
            .unwrap_or_else(|| panic!("no failover of master {old_master} within {timeout:?}\n{}", self.logs()))
    }

    /// Wait until `port` answers ROLE with `role` ("master" or "slave").
    pub fn wait_role(&self, port: u16, role: &str, timeout: Duration) {
        poll(timeout, || (self.role(port).as_deref() == Some(role)).then_some(())).unwrap_or_else(|| {
            panic!("port {port} is {:?}, not {role}, after {timeout:?}\n{}", self.role(port), self.logs())
        })
    }

    /// Wait until every live replica is linked to its master and has caught up with its offset,
    /// and every live node reports cluster_state:ok.
    pub fn wait_replicas_synced(&self) {
        let healthy = |port| cluster_ok(port) && (self.role(port).as_deref() == Some("master") || synced(port));
        poll(READY_TIMEOUT, || self.live().all(healthy).then_some(()))
            .unwrap_or_else(|| panic!("replicas not in sync after {READY_TIMEOUT:?}\n{}", self.logs()));
    }

    fn create(&self) {
        let out_path = self.root.path().join("cluster-create.log");
        let out = std::fs::File::create(&out_path).expect("redis-cli output file");
        let mut child = Command::new(binary("redis-cli"))
            .args(["--cluster", "create"])
            .args(self.nodes.iter().map(|node| format!("127.0.0.1:{}", node.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("redis-cli output file"))
            .stderr(out)
            .spawn()
            .expect("start redis-cli --cluster create");
        let status = poll(READY_TIMEOUT, || child.try_wait().ok().flatten());
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let output = std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(status.is_some_and(|status| status.success()), "redis-cli --cluster create failed:\n{output}");
    }

    fn live(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes.iter().filter(|node| node.child.is_some()).map(|node| node.port)
    }

    fn is_live(&self, port: u16) -> bool {
        self.live().any(|live| live == port)
    }

    fn index(&self, port: u16) -> usize {
        self.nodes.iter().position(|node| node.port == port).unwrap_or_else(|| panic!("no cluster node on port {port}"))
    }

    /// The tail of every node's log, for panic messages: a stuck failover is explained there.
    fn logs(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text += &format!("--- node {} ({}) ---\n", node.port, if node.child.is_some() { "up" } else { "down" });
            text += &(lines[lines.len().saturating_sub(8)..].join("\n") + "\n");
        }
        text
    }
}

impl Node {
    /// Start redis-server on `self.port`; true once that very process answers there (not another
    /// test's server that took the port first).
    fn spawn(&mut self) -> bool {
        let port = self.port.to_string();
        let mut command = Command::new(binary("redis-server"));
        command
            .args(["--port", &port, "--bind", "127.0.0.1", "--cluster-enabled", "yes"])
            .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            // With the default (yes) every node refuses every key while any one slot is
            // uncovered, so a single shard's failover would stop the whole cluster. The service
            // must keep working on the healthy shards meanwhile, and that is what tests check.
            .args(["--cluster-require-full-coverage", "no"])
            // A node that sees the cluster down must not serve reads either: no stale answers.
            .args(["--cluster-allow-reads-when-down", "no"])
            .args(["--save", "", "--appendonly", "no"])
            // Diskless full sync waits 5 s by default for more replicas to join: pure delay here.
            .args(["--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"));
        // None: it could not bind the port (or its bus port), which another process took.
        self.child = Process::start(&mut command, self.port, None);
        self.child.is_some()
    }

    fn kill(&mut self) {
        self.child = None;
    }
}

/// Sleep 4 x node-timeout between two failovers (see the module comment for why).
pub fn settle_between_failovers() {
    std::thread::sleep(Duration::from_millis(4 * NODE_TIMEOUT_MS));
}

fn cluster_ok(port: u16) -> bool {
    query(port, &["CLUSTER", "INFO"]).is_some_and(|info| field(&info, "cluster_state") == Some("ok"))
}

/// A replica linked to its master and caught up with the master's replication offset.
fn synced(replica: u16) -> bool {
    let Some(info) = query(replica, &["INFO", "replication"]) else { return false };
    let offset = |info: &str, key| field(info, key).and_then(|n| n.parse::<u64>().ok());
    let master_offset = replica_of(replica)
        .and_then(|master| query(master, &["INFO", "replication"]))
        .and_then(|master| offset(&master, "master_repl_offset"));
    field(&info, "master_link_status") == Some("up")
        && offset(&info, "slave_repl_offset").zip(master_offset).is_some_and(|(own, master)| own >= master)
}

/// The port a replica replicates from (ROLE: slave, ip, port, state, offset).
fn replica_of(port: u16) -> Option<u16> {
    let role = query(port, &["ROLE"])?;
    let mut lines = role.lines();
    (lines.next()? == "slave").then_some(())?;
    lines.nth(1)?.parse().ok()
}

/// CLUSTER NODES line fields: id, ip:port@bus, flags, master-id, ping, pong, epoch, link, slots...
fn cluster_nodes(port: u16) -> Option<Vec<Vec<String>>> {
    let text = query(port, &["CLUSTER", "NODES"])?;
    let lines = text.lines().map(|line| line.split_whitespace().map(str::to_string).collect::<Vec<_>>());
    Some(lines.filter(|fields| fields.len() >= 8).collect())
}

fn slot_ranges(fields: &[String]) -> Vec<(u16, u16)> {
    // "[slot->-id]" entries are slots being migrated: not owned yet.
    let range = |text: &str| match text.split_once('-') {
        Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
        None => text.parse().ok().map(|slot| (slot, slot)),
    };
    fields[8..].iter().filter(|text| !text.starts_with('[')).filter_map(|text| range(text)).collect()
}

fn slot_owner_seen_by(port: u16, slot: u16) -> Option<u16> {
    cluster_nodes(port)?.into_iter().find_map(|fields| {
        let is_master = fields[2].split(',').any(|flag| flag == "master");
        let owns = slot_ranges(&fields).iter().any(|&(first, last)| (first..=last).contains(&slot));
        (is_master && owns).then(|| fields[1].split('@').next()?.rsplit(':').next()?.parse().ok()).flatten()
    })
}

fn own_slots(port: u16) -> Vec<(u16, u16)> {
    let myself = cluster_nodes(port).and_then(|nodes| nodes.into_iter().find(|fields| fields[2].contains("myself")));
    myself.map(|fields| slot_ranges(&fields)).unwrap_or_default()
}

fn binary(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|path| Path::is_file(path)).unwrap_or_else(|| {
        panic!(
            "this test needs `{name}` on PATH to run a private Redis Cluster; install Redis \
             (Debian: `apt-get install redis-server`, which brings redis-cli too) and run the tests again"
        )
    })
}

/// A free port that leaves room for the cluster bus on port + 10000, which must be free too.
/// Ephemeral ports above 55535 have no room, so those are skipped.
fn cluster_port() -> u16 {
    for _ in 0..1000 {
        let port = free_port();
        if port <= 55535 && TcpListener::bind(("127.0.0.1", port + 10000)).is_ok() {
            return port;
        }
    }
    panic!("found no free port P with P + 10000 free as well for the cluster bus");
}
