//! The local persistent tier, via `cacache`: content-addressed and integrity-checked on every
//! read, so a torn or tampered file is detected rather than served. A corrupt entry is removed
//! on sight so it costs one miss, not one per request. Expiry lives in the envelope.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;

/// A stuck disk (network volume, full device) must not hold a request hostage.
const DISK_OP_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) enum DiskRead {
    Found(Bytes),
    Missing,
    /// Failed its integrity check (or its index line was unreadable); already removed.
    Corrupt(String),
    Error(String),
}

pub(crate) struct DiskTier {
    dir: PathBuf,
}

impl DiskTier {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub async fn get(&self, key: &str) -> DiskRead {
        let read = match tokio::time::timeout(DISK_OP_TIMEOUT, cacache::read(&self.dir, key)).await {
            Ok(read) => read,
            Err(_) => return DiskRead::Error(format!("disk read timed out after {DISK_OP_TIMEOUT:?}")),
        };
        match read {
            Ok(bytes) => DiskRead::Found(Bytes::from(bytes)),
            Err(cacache::Error::EntryNotFound(..)) => DiskRead::Missing,
            Err(cacache::Error::IoError(error, _)) if error.kind() == ErrorKind::NotFound => {
                // The index names content that is gone: drop the dangling index entry.
                self.remove(key).await;
                DiskRead::Missing
            }
            Err(
                error @ (cacache::Error::IntegrityError(_)
                | cacache::Error::SizeMismatch(..)
                | cacache::Error::SerdeError(..)),
            ) => {
                self.remove(key).await;
                DiskRead::Corrupt(error.to_string())
            }
            Err(error) => DiskRead::Error(error.to_string()),
        }
    }

    pub async fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(DISK_OP_TIMEOUT, cacache::write(&self.dir, key, value)).await {
            Ok(Ok(_integrity)) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("disk write timed out after {DISK_OP_TIMEOUT:?}")),
        }
    }

    /// Remove the index entry and its content file. Best effort: a failure leaves at worst an
    /// entry that fails its check again next time.
    pub async fn remove(&self, key: &str) {
        let fully = cacache::RemoveOpts::new().remove_fully(true);
        if tokio::time::timeout(DISK_OP_TIMEOUT, fully.remove(&self.dir, key)).await.map_or(true, |r| r.is_err()) {
            // The content file may already be gone; at least forget the key.
            let _ = tokio::time::timeout(DISK_OP_TIMEOUT, cacache::remove(&self.dir, key)).await;
        }
    }
}
