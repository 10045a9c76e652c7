//! A loopback listener that only counts the connections made to it: the strongest evidence that
//! a refusal happened before any socket was opened towards it.
#![allow(dead_code)] // each test binary uses a different part of this

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::TcpListener;

pub struct Tripwire {
    pub address: SocketAddr,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Tripwire {
    /// `None` when `ip` cannot be bound here (e.g. no IPv6 loopback).
    pub async fn bind(ip: &str) -> Option<Self> {
        let listener = TcpListener::bind((ip, 0)).await.ok()?;
        let address = listener.local_addr().ok()?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let task = tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Some(Self { address, connections, task })
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        self.task.abort();
    }
}
