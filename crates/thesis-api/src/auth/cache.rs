//! What tokens were found to be, kept for the requests that follow, so that a response's
//! critical path does not wait on the database for its caller.
//!
//! Every entry is tagged with the auth generation (a counter the database's triggers move
//! forward on every change to tokens, users, memberships and organizations, see migration
//! m0005) that was current before it was read, and is served only while that is still the
//! generation last read from the database. The server reads the counter every
//! [`POLL_INTERVAL`], and again before answering any request that changed something, so:
//! - on the instance that made a change (a logout, a revoked key, a removed member), no later
//!   request is served from before it;
//! - on every other instance, within one poll interval;
//! - when the counter cannot be read (the database is unreachable), the cache is not used at all
//!   once [`TRUST`] has passed since the last good read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement};
use uuid::Uuid;

use super::Lookup;

/// How often the auth generation is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How long a read of the generation may be relied on.
pub const TRUST: Duration = Duration::from_millis(300);
/// How long an entry is served at most, whatever the generation says.
const MAX_AGE: Duration = Duration::from_secs(60);
/// Entries kept at most; past it the cache starts over.
const MAX_ENTRIES: usize = 10_000;

/// A token (by hash) and, for organization lookups, the organization named explicitly.
type Key = (String, Option<Option<Uuid>>);

struct Entry {
    generation: i64,
    read_at: Instant,
    lookup: Lookup,
}

pub struct AuthCache {
    started: Instant,
    entries: Mutex<HashMap<Key, Entry>>,
    /// The generation last read from the database (-1 before the first read).
    generation: AtomicI64,
    /// Milliseconds since `started` of the last good read.
    read_at_ms: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache {
            started: Instant::now(),
            entries: Mutex::new(HashMap::new()),
            generation: AtomicI64::new(-1),
            read_at_ms: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

impl AuthCache {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The generation, if it was read recently enough to be relied on.
    pub fn trusted_generation(&self) -> Option<i64> {
        let generation = self.generation.load(Ordering::Acquire);
        let read_at = Duration::from_millis(self.read_at_ms.load(Ordering::Acquire));
        (generation >= 0 && self.started.elapsed().saturating_sub(read_at) < TRUST)
            .then_some(generation)
    }

    pub fn get(&self, key: &Key) -> Option<Lookup> {
        let found = self.trusted_generation().and_then(|generation| {
            let entries = self.entries();
            let entry = entries.get(key)?;
            (entry.generation == generation && entry.read_at.elapsed() < MAX_AGE)
                .then(|| entry.lookup.clone())
        });
        let (counter, metric) = match found {
            Some(_) => (&self.hits, "auth_cache_hits_total"),
            None => (&self.misses, "auth_cache_misses_total"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(metric).increment(1);
        found
    }

    /// Lookups answered from the cache, and not, since start.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Keeps `lookup`, read from the database after `generation` was current, unless the
    /// generation has moved since (then it may be from before a change).
    pub fn put(&self, key: Key, generation: i64, lookup: Lookup) {
        let mut entries = self.entries();
        if self.trusted_generation() != Some(generation) {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                read_at: Instant::now(),
                lookup,
            },
        );
    }

    /// Drops every entry.
    pub fn clear(&self) {
        self.entries().clear();
    }

    /// Drops every entry of a token (by hash).
    pub fn forget_token(&self, token_hash: &str) {
        self.entries().retain(|(hash, _), _| hash != token_hash);
    }

    /// Reads the generation from the database; a new one empties the cache.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<i64, DbErr> {
        let before = self.started.elapsed();
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT n FROM auth_generation WHERE id = 1",
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("the auth_generation row".into()))?;
        let n: i64 = row.try_get("", "n")?;
        let mut entries = self.entries();
        if self.generation.swap(n, Ordering::AcqRel) != n {
            entries.clear();
        }
        // trust runs from when the read was sent: the value is at least that fresh
        self.read_at_ms
            .fetch_max(before.as_millis() as u64, Ordering::AcqRel);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_trusted_before_the_first_read() {
        let cache = AuthCache::default();
        assert_eq!(cache.trusted_generation(), None);
    }
}
