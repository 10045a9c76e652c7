//! The task that writes counts to Redis, off every response's path: what the layer queues is
//! taken up to 64 at a time, merged per user and day, and written one script call per user,
//! side by side; what cannot be written is buffered
//! and flushed each second until Redis takes it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::mpsc;

use super::buffer::Batch;
use super::day::Day;
use super::record::Counts;
use super::{Usage, store};
use crate::redis::{RedisLink, RedisLinkError};

/// Queued spends taken per turn, written side by side.
const PER_TURN: usize = 64;
const FLUSH_EVERY: Duration = Duration::from_secs(1);

pub(super) struct Queued {
    pub user: String,
    pub day: Day,
    pub counts: Counts,
}

pub(super) async fn run(usage: Usage, mut received: mpsc::Receiver<Queued>) {
    let mut ticks = tokio::time::interval(FLUSH_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = Vec::with_capacity(PER_TURN);
    loop {
        tokio::select! {
            biased;
            () = usage.0.stop.cancelled() => break,
            taken = received.recv_many(&mut turn, PER_TURN) => {
                if taken == 0 {
                    break;
                }
                write(&usage, std::mem::take(&mut turn)).await;
            }
            _ = ticks.tick() => flush(&usage).await,
        }
    }
    // Shutdown: what is still queued joins the buffer, and the buffer gets one last try.
    received.close();
    while let Ok(queued) = received.try_recv() {
        usage.keep(&queued.user, queued.day, &queued.counts);
    }
    flush(&usage).await;
    let left = usage.0.buffer.len();
    if left > 0 {
        tracing::warn!(entries = left, "usage counts not written to redis before exit");
    }
}

/// Write each queued spend; while older counts wait in the buffer (Redis was unreachable), new
/// ones join them instead, so the buffer drains in order and merges what it can.
async fn write(usage: &Usage, queued: Vec<Queued>) {
    let Some(link) = usage.0.redis.clone() else {
        for item in &queued {
            usage.keep(&item.user, item.day, &item.counts);
        }
        return;
    };
    if !usage.0.buffer.is_empty() {
        for item in &queued {
            usage.keep(&item.user, item.day, &item.counts);
        }
        flush(usage).await;
        return;
    }
    let retention = usage.0.settings.retention_days;
    let writes = merged(queued).into_iter().map(|item| {
        let link = link.clone();
        async move {
            let id = uuid::Uuid::new_v4().simple().to_string();
            let result = store::add_batch(&link, &item.user, item.day, &id, &item.counts, retention).await;
            (item, id, result)
        }
    });
    for (item, id, result) in join_all(writes).await {
        match result {
            Ok(_) => usage.0.metrics.usage_writes_total.with_label_values(&["written"]).inc(),
            // Never sent: it can join an open entry.
            Err(RedisLinkError::BackingOff) => usage.keep(&item.user, item.day, &item.counts),
            // Maybe applied: only this id may send it again.
            Err(error) => {
                tracing::debug!(%error, "usage write failed; buffered");
                usage.0.metrics.usage_writes_total.with_label_values(&["failed"]).inc();
                let batch = Batch { user: item.user, day: item.day, counts: item.counts, id: Some(id) };
                if !usage.0.buffer.keep_sealed(batch) {
                    usage.0.metrics.usage_dropped_total.inc();
                }
            }
        }
    }
    set_gauge(usage);
}

/// One entry per user and day: a busy learner's answers in one turn are one script, not one
/// each.
fn merged(queued: Vec<Queued>) -> Vec<Queued> {
    let mut merged: Vec<Queued> = Vec::with_capacity(queued.len());
    let mut index: HashMap<(String, Day), usize> = HashMap::with_capacity(queued.len());
    for item in queued {
        match index.entry((item.user.clone(), item.day)) {
            Entry::Occupied(at) => merged[*at.get()].counts.merge(&item.counts),
            Entry::Vacant(slot) => {
                slot.insert(merged.len());
                merged.push(item);
            }
        }
    }
    merged
}

/// Send the buffered batches, oldest first, stopping at the first failure (Redis is still away).
async fn flush(usage: &Usage) {
    let retention = usage.0.settings.retention_days;
    usage.0.buffer.drop_before(Day::today().minus_days(retention));
    let Some(link) = usage.0.redis.as_ref() else { return set_gauge(usage) };
    if usage.0.buffer.is_empty() {
        return;
    }
    for batch in usage.0.buffer.sealed() {
        if !send(usage, link, &batch).await {
            return set_gauge(usage);
        }
    }
    for batch in usage.0.buffer.seal_open() {
        if !send(usage, link, &batch).await {
            break;
        }
    }
    set_gauge(usage);
}

async fn send(usage: &Usage, link: &RedisLink, batch: &Batch) -> bool {
    let Some(id) = batch.id.as_deref() else { return false };
    let retention = usage.0.settings.retention_days;
    match store::add_batch(link, &batch.user, batch.day, id, &batch.counts, retention).await {
        Ok(added) => {
            let result = if added { "flushed" } else { "duplicate" };
            usage.0.metrics.usage_writes_total.with_label_values(&[result]).inc();
            usage.0.buffer.written(id);
            true
        }
        Err(error) => {
            tracing::debug!(%error, "usage flush failed; kept for the next try");
            false
        }
    }
}

fn set_gauge(usage: &Usage) {
    usage.0.metrics.usage_buffered_entries.set(i64::try_from(usage.0.buffer.len()).unwrap_or(i64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(user: &str, day: Day, requests: i64) -> Queued {
        let mut counts = Counts::default();
        counts.add("op:analyze:requests", requests);
        Queued { user: user.to_owned(), day, counts }
    }

    #[test]
    fn a_turn_writes_one_entry_per_user_and_day_with_every_count_added() {
        let today = Day::today();
        let yesterday = today.minus_days(1);
        let turn =
            vec![spend("ana", today, 1), spend("bo", today, 1), spend("ana", today, 2), spend("ana", yesterday, 1)];
        let merged = merged(turn);
        let entries: Vec<(&str, Day, Counts)> =
            merged.iter().map(|item| (item.user.as_str(), item.day, item.counts.clone())).collect();
        assert_eq!(
            entries,
            [
                ("ana", today, spend("", today, 3).counts),
                ("bo", today, spend("", today, 1).counts),
                ("ana", yesterday, spend("", today, 1).counts)
            ]
        );
    }
}
