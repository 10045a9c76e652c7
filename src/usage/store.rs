//! Usage in Redis: one hash per user and UTC day, shared by every instance.
//!
//! A write adds one batch of counts (one request's, or several merged while Redis was away) with
//! `HINCRBY`s in a Lua script that first sets the batch's marker with `SET NX`: a batch sent
//! again because its first write went unanswered (a timeout after Redis applied it) finds its
//! marker and adds nothing. The hash expires `USAGE_RETENTION_DAYS` after its day ends.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

use super::day::Day;
use super::record::{Counts, Spent, field};
use crate::redis::{Lua, RedisLink, RedisLinkError};

/// How long a batch's marker outlives its write: a batch is sent again only while its instance
/// still holds it, i.e. while Redis is unreachable from there, which a day comfortably covers.
const BATCH_MARKER_SECONDS: u64 = 86_400;

/// KEYS: the day's hash, the batch's marker. ARGV: expire-at (unix seconds), marker seconds,
/// then field and increment pairs. Returns 1 when added, 0 when the batch was already in.
static ADD_BATCH: LazyLock<Lua> = LazyLock::new(|| {
    Lua::new(
        r"
if not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
  return 0
end
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
",
    )
});

/// The part of a user key that names its slot and its keys: a digest, since user ids may hold
/// braces (a hash tag inside a hash tag) and API-key hashes are long.
fn user_tag(user: &str) -> String {
    hex::encode(&Sha256::digest(user.as_bytes())[..16])
}

/// Add one batch to `user`'s `day`. `Ok(false)`: the batch was already added.
pub async fn add_batch(
    link: &RedisLink,
    user: &str,
    day: Day,
    batch: &str,
    counts: &Counts,
    retention_days: u32,
) -> Result<bool, RedisLinkError> {
    let tag = user_tag(user);
    let key = link.keys().usage_day(&tag, &day.to_string());
    let mut call =
        ADD_BATCH.call().key(&key).key(link.keys().usage_batch(&tag, batch)).arg(day.expires_at(retention_days));
    call = call.arg(BATCH_MARKER_SECONDS);
    for (name, by) in counts.iter() {
        call = call.arg(name).arg(by);
    }
    let added: i64 = link.run(&key, |mut connection| async move { call.invoke(&mut connection).await }).await?;
    Ok(added == 1)
}

/// `user`'s counts on each of `days` (empty counts for a day with none), in one round trip.
pub async fn read_days(link: &RedisLink, user: &str, days: &[Day]) -> Result<Vec<Counts>, RedisLinkError> {
    let tag = user_tag(user);
    let keys: Vec<String> = days.iter().map(|day| link.keys().usage_day(&tag, &day.to_string())).collect();
    let Some(first) = keys.first().cloned() else { return Ok(Vec::new()) };
    let mut pipe = redis::pipe();
    for key in &keys {
        pipe.hgetall(key);
    }
    let hashes: Vec<Vec<(String, i64)>> =
        link.run(&first, |mut connection| async move { pipe.query_async(&mut connection).await }).await?;
    Ok(hashes.into_iter().map(Counts::from_iter).collect())
}

/// What `user` has spent on `day`, as the budgets count it.
pub async fn read_spent(link: &RedisLink, user: &str, day: Day) -> Result<Spent, RedisLinkError> {
    let key = link.keys().usage_day(&user_tag(user), &day.to_string());
    let names = [field::AUDIO_MS, field::TOKENS_INPUT, field::TOKENS_OUTPUT, field::TOKENS_THINKING];
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(&key).arg(&names[..]);
    let values: Vec<Option<i64>> =
        link.run(&key, |mut connection| async move { cmd.query_async(&mut connection).await }).await?;
    let counts: Counts =
        names.iter().zip(values).map(|(name, value)| ((*name).to_owned(), value.unwrap_or(0))).collect();
    Ok(counts.spent())
}
