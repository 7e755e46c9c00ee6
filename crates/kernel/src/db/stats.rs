//! How the database's connections stand, for metrics.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Db, lock};

/// One more in a count for as long as it lives.
pub(crate) struct Counted<'a> {
    count: &'a AtomicUsize,
    /// The count on entry, this one included.
    pub(crate) at_entry: usize,
}

impl<'a> Counted<'a> {
    pub(crate) fn enter(count: &'a AtomicUsize) -> Self {
        let at_entry = count.fetch_add(1, Ordering::AcqRel) + 1;
        Self { count, at_entry }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How the database's connections stand, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections lent to a statement or a transaction (SQLite: readers and the writer).
    pub in_use: usize,
    /// Open connections at rest.
    pub idle: usize,
    /// Statements and transactions waiting for a connection.
    pub waiting: usize,
}

impl Db {
    /// How the connections stand now.
    #[must_use]
    pub fn pool_stats(&self) -> PoolStats {
        let mut stats = PoolStats::default();
        if let Some(warm) = &self.0.warm {
            let warm_idle = lock(&warm.idle).len();
            let open = warm.pool.size() as usize;
            let at_rest = warm.pool.num_idle() + warm_idle;
            stats.idle = at_rest;
            stats.in_use = open.saturating_sub(at_rest);
            stats.waiting = warm.waiting.load(Ordering::Acquire);
        }
        if let Some(readers) = &self.0.readers {
            stats.in_use = readers.size - readers.permits.available_permits().min(readers.size);
            stats.idle = lock(&readers.idle).len();
            stats.waiting = readers.waiting.load(Ordering::Acquire);
        }
        if let Some(writer) = &self.0.sqlite_writer {
            let (in_use, waiting) = writer.stats();
            stats.in_use += in_use;
            stats.waiting += waiting;
        }
        stats
    }
}
