//! A retention purge in chunks, as this process runs it (`records.rs`, `purge`): where the last
//! call of a chain stopped, so that the next reads on from there while the horizon is held back.

use chrono::{DateTime, Utc};

use super::DynamoStore;
use crate::record::Category;

/// A purge in chunks, as this process runs it: a call that removed as many records as it was
/// allowed (`limit`) is followed by another with the same cut. The next call reads from where the
/// last one emptied the category (`upto`), not from the horizon, which may be held back: by an
/// append of late records that started within the append grace (`postings_purge::APPEND_GRACE`)
/// before the first call read (such an append may write records the calls do not see, so none
/// raises the horizon past them), or by posting items kept for such appends. So each chunk reads
/// what it removes, not again what the chunks before it removed; what they left for appends in
/// flight, the first purge after the grace reads from the horizon.
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    /// The cut of the calls.
    pub before: DateTime<Utc>,
    /// When the first call read the horizon: appends that started within the append grace before
    /// it hold the horizon back for every call of the chain.
    pub first_read_at: DateTime<Utc>,
    /// Every record of the category before it that the calls could see is gone.
    pub upto: DateTime<Utc>,
    /// The earliest hour of an item the calls kept for an append in flight.
    pub kept_from: Option<DateTime<Utc>>,
    /// Where the last call read the horizon: a horizon lowered since (a late append) ends the
    /// chain, so that the next call reads its records.
    pub horizon: DateTime<Utc>,
}

/// How long a chain is followed: a purge job's run, with room (a Lambda runs 15 minutes at most).
const CHAIN_LIFE: chrono::Duration = chrono::Duration::hours(1);

impl DynamoStore {
    /// The chain of chunks a call continues, if the last call of this process on the category
    /// stopped on its limit with the same cut, recently, and the horizon `start` it read is held
    /// back below where that call stopped, not lowered since.
    pub(crate) fn purge_chain(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        start: DateTime<Utc>,
    ) -> Option<Chain> {
        let chains = self.purge_chains.lock().unwrap_or_else(|e| e.into_inner());
        let chain = chains.get(&(tenant.to_owned(), category))?;
        let recent = Utc::now() - chain.first_read_at < CHAIN_LIFE;
        (chain.before == before && recent && chain.horizon <= start && start < chain.upto).then(|| chain.clone())
    }

    /// Notes how far a call went: the chain goes on if it stopped on its limit, else it ends.
    pub(crate) fn note_purge_chain(&self, tenant: &str, category: Category, chain: Option<Chain>) {
        let mut chains = self.purge_chains.lock().unwrap_or_else(|e| e.into_inner());
        match chain {
            Some(c) => chains.insert((tenant.to_owned(), category), c),
            None => chains.remove(&(tenant.to_owned(), category)),
        };
    }
}
