//! Lua scripts run by digest (`EVALSHA`), falling back to the source (`EVAL`) when the node does
//! not have it: a replica promoted by a failover, a restarted node, or a cluster node other than
//! the one `SCRIPT LOAD` reached all answer `NOSCRIPT`. `EVAL` caches the script on the node that
//! runs it, so the next `EVALSHA` there succeeds; no admin command is needed.

use redis::{FromRedisValue, ServerErrorKind, ToRedisArgs};

pub struct Lua {
    source: &'static str,
    sha: String,
}

impl Lua {
    pub fn new(source: &'static str) -> Self {
        Self { source, sha: redis::Script::new(source).get_hash().to_owned() }
    }

    /// Starts a call: add the keys (all in one slot on a cluster) and arguments, then `invoke`.
    pub fn call(&self) -> Call<'_> {
        Call { lua: self, keys: Vec::new(), args: Vec::new() }
    }
}

pub struct Call<'a> {
    lua: &'a Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
}

impl Call<'_> {
    pub fn key(mut self, key: impl ToRedisArgs) -> Self {
        self.keys.extend(key.to_redis_args());
        self
    }

    pub fn arg(mut self, arg: impl ToRedisArgs) -> Self {
        self.args.extend(arg.to_redis_args());
        self
    }

    pub async fn invoke<T: FromRedisValue>(&self, conn: &mut impl redis::aio::ConnectionLike) -> redis::RedisResult<T> {
        match self.command("EVALSHA", &self.lua.sha).query_async(conn).await {
            Err(error) if error.kind() == redis::ErrorKind::Server(ServerErrorKind::NoScript) => {
                self.command("EVAL", self.lua.source).query_async(conn).await
            }
            other => other,
        }
    }

    /// `EVALSHA sha n keys... args...` or `EVAL source n keys... args...`: the keys right after
    /// the count, where the cluster driver looks for the slot.
    fn command(&self, name: &str, script: &str) -> redis::Cmd {
        let mut cmd = redis::cmd(name);
        cmd.arg(script).arg(self.keys.len());
        for key in &self.keys {
            cmd.arg(key.as_slice());
        }
        for arg in &self.args {
            cmd.arg(arg.as_slice());
        }
        cmd
    }
}
