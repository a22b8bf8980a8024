//! Records on DynamoDB: one item per record (`T#{tenant}#R#{id}`, `R`) carrying its body and
//! its index entries as sparse GSI keys (see `keys`), and its time and action index entries in
//! posting items of its append (`postings`); a conditional put makes appends idempotent. Reads go through the
//! planner (`keys::plan`) and the k-way merge (`merge`).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};

use super::keys::{RECORD_SK, TENANTS_PK, index_keys, pair_pk, record_pk, tsid, user_key};
use super::{DynamoStore, Item, classify, get_n, get_s, merge, n, retry_throttled, s, subjects};
use crate::record::{Category, Record};
use crate::store::{
    AppendOutcome, BeforePurge, EventFilter, Order, PageRequest, RecordPage, RecordStore, StoreError, StoreResult,
};

/// DynamoDB's item size limit.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Concurrent conditional writes per append.
const WRITE_CONCURRENCY: usize = 32;

/// A stored record's outcome once its request pair is noted (`outcome`); when the pair's update
/// kept being throttled, Failed: that record alone is sent again (a duplicate then, which notes
/// the pair), not the whole batch.
fn pair_noted(noted: StoreResult<()>, outcome: AppendOutcome) -> StoreResult<AppendOutcome> {
    match noted {
        Ok(()) => Ok(outcome),
        Err(StoreError::Throttled) => Ok(AppendOutcome::Failed {
            reason: "stored, but the store kept throttling the update of its request pair; resend this record".into(),
        }),
        Err(e) => Err(e),
    }
}

pub(crate) fn decode(item: &Item) -> StoreResult<Record> {
    let body = get_s(item, "body").ok_or_else(|| StoreError::Corrupt("record item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Write units a record costs by the key design: one per started KB of the item, for the item
/// and for each GSI entry it projects into (projections are ALL); its share of the time and action
/// posting items comes on top (`posting_units`).
pub fn write_units(r: &Record) -> StoreResult<u64> {
    let per_copy = item_bytes(&record_item(r)?).div_ceil(1024) as u64;
    Ok(per_copy * (1 + index_keys(r).len() as u64))
}

/// Bytes a record occupies as DynamoDB bills storage: the item and each index entry (a full
/// copy, projections are ALL), each with the 100 bytes DynamoDB adds per item and per entry.
pub fn stored_bytes(r: &Record) -> StoreResult<u64> {
    let per_copy = item_bytes(&record_item(r)?) as u64 + 100;
    Ok(per_copy * (1 + index_keys(r).len() as u64))
}

/// Attribute names and values, a number taken as 8 bytes (the write-unit accounting above).
fn item_bytes(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.as_s().map(String::len).unwrap_or(8)).sum()
}

/// The record item: its keys, index keys and the attributes residual filters read.
pub(crate) fn record_item(r: &Record) -> StoreResult<Item> {
    let body = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let ts = r.occurred_at.timestamp_micros();
    let mut item: Item = HashMap::new();
    item.insert("pk".into(), s(record_pk(&r.tenant_id, &r.id)));
    item.insert("sk".into(), s(RECORD_SK));
    item.insert("tsid".into(), s(tsid(ts, &r.id)));
    item.insert("ts".into(), n(ts));
    item.insert("category".into(), s(r.category.as_str()));
    item.insert("action".into(), s(r.action.clone()));
    if let Some(u) = user_key(r) {
        item.insert("uk".into(), s(u));
    }
    if let Some(x) = r.result {
        item.insert("result".into(), s(x.as_str()));
    }
    if let Some(v) = &r.session_id {
        item.insert("sid".into(), s(v.clone()));
    }
    if let Some(v) = &r.correlation_id {
        item.insert("corr".into(), s(v.clone()));
    }
    if let Some(v) = &r.actor.employee_id {
        item.insert("emp".into(), s(v.clone()));
    }
    if let Some(d) = r.description_text() {
        item.insert("dl".into(), s(crate::record::fold(&d)));
    }
    for (k, v) in index_keys(r) {
        item.insert(k.into(), s(v));
    }
    item.insert("body".into(), s(body));
    let size: usize = item.iter().map(|(k, v)| k.len() + v.as_s().map(String::len).unwrap_or(24)).sum();
    if size > MAX_ITEM_BYTES {
        return Err(StoreError::Invalid(format!(
            "the record is {size} bytes stored; DynamoDB items are at most 400 KB"
        )));
    }
    Ok(item)
}

impl DynamoStore {
    /// One conditional put of a record's item (`record_item`) with retries: Created, Duplicate, or
    /// Failed after every retry.
    async fn put_record(&self, r: &Record, item: Item) -> StoreResult<AppendOutcome> {
        // Subject index entries first: a record without its entries would be invisible to the
        // DPO. When the id turns out to be taken they are undone (`undo_refused`); when a write
        // keeps being throttled they are undone too if another record holds the id, else they
        // stay until the client resends the record (one never resent leaves entries of what was
        // sent: a search shows them; deleting them could hide this very record if its put was
        // applied after all).
        let indexed = r.subject.is_some() || !r.attachments.is_empty();
        let ours = item.get("body").cloned();
        if indexed {
            match self.put_subjects(r).await {
                Ok(()) => {}
                Err(StoreError::Throttled) => {
                    self.undo_if_taken(r, ours.as_ref()).await;
                    return Ok(AppendOutcome::Failed {
                        reason: "the store kept throttling; resend this record".into(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        // The body carries this append's batch in its integrity stamp: a stored item with the same
        // body is this put, applied before an answer that was lost (a 5xx, a timeout) and retried.
        // Another is a record stored under this id before (`Taken`, with its item).
        enum Put {
            Written(Option<f64>),
            Taken(Option<Item>),
        }
        let res = retry_throttled(|| async {
            match self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
                .await
            {
                Ok(out) => Ok(Put::Written(out.consumed_capacity().and_then(|c| c.capacity_units()))),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(c)) => Ok(match c.item() {
                        Some(old) if ours.is_some() && old.get("body") == ours.as_ref() => Put::Written(None),
                        old => Put::Taken(old.cloned()),
                    }),
                    _ => Err(classify(e, &self.table)),
                },
            }
        })
        .await;
        match res {
            Ok(Put::Written(units)) => {
                self.count_write(units);
                match (r.phase, &r.correlation_id) {
                    (Some(phase), Some(corr)) => {
                        pair_noted(self.pair_upsert(r, phase, corr, false).await, AppendOutcome::Created)
                    }
                    _ => Ok(AppendOutcome::Created),
                }
            }
            Ok(Put::Taken(old)) => {
                if indexed && let Some(failed) = self.undo_refused(r, old.clone()).await? {
                    return Ok(failed);
                }
                // Perhaps an earlier append of this very record, whose request pair was never
                // noted (its update kept being throttled, the client sent the record again):
                // noted now from the stored record, unless the pair notes another. Only one side
                // of a request pair needs its record (and the body parsed).
                let stored = old.filter(|o| o.contains_key("corr")).and_then(|o| decode(&o).ok());
                match stored.as_ref().and_then(|s| Some((s, s.phase?, s.correlation_id.as_deref()?))) {
                    Some((stored, phase, corr)) => {
                        pair_noted(self.pair_upsert(stored, phase, corr, true).await, AppendOutcome::Duplicate)
                    }
                    None => Ok(AppendOutcome::Duplicate),
                }
            }
            Err(StoreError::Conflict(_)) => Ok(AppendOutcome::Duplicate),
            Err(StoreError::Throttled) => {
                if indexed {
                    self.undo_if_taken(r, ours.as_ref()).await;
                }
                Ok(AppendOutcome::Failed { reason: "the store kept throttling; resend this record".into() })
            }
            Err(StoreError::Invalid(reason)) => Ok(AppendOutcome::Failed { reason }),
            Err(other) => Err(other),
        }
    }

    /// Undoes the subject entries of `r`, refused because `old` (the item the answer carried, if
    /// any) holds its id: `Some(Failed)` when that could not be finished now (the client resends
    /// the record, and the undo runs again).
    async fn undo_refused(&self, r: &Record, old: Option<Item>) -> StoreResult<Option<AppendOutcome>> {
        let undone = match old {
            Some(item) => self.undo_subjects(r, Some(item)).await,
            None => match self.get_item(record_pk(&r.tenant_id, &r.id), RECORD_SK).await {
                Ok(item) => self.undo_subjects(r, item).await,
                Err(e) => Err(e),
            },
        };
        match undone {
            Ok(()) => Ok(None),
            Err(StoreError::Throttled | StoreError::Conflict(_) | StoreError::Invalid(_)) => {
                Ok(Some(AppendOutcome::Failed {
                    reason: "another record has this id, and undoing this one's index entries could not be finished \
                             (throttled, or the stored record kept changing): resend it"
                        .into(),
                }))
            }
            // Nothing to undo against: the refused entries stay (a leak, never a hidden record).
            Err(StoreError::Corrupt(why)) => {
                tracing::error!(tenant = %r.tenant_id, id = %r.id, %why, "stored record unreadable; a refused duplicate's index entries stay");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// After a throttled write of `r` whose subject entries were (perhaps partly) written: if
    /// another record holds its id, the entries are undone against it (best effort: it is
    /// logged when that fails too, and a resend of `r` undoes them).
    async fn undo_if_taken(&self, r: &Record, ours: Option<&AttributeValue>) {
        let undone = match self.get_item(record_pk(&r.tenant_id, &r.id), RECORD_SK).await {
            Ok(Some(item)) if item.get("body") != ours => self.undo_subjects(r, Some(item)).await,
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = undone {
            tracing::warn!(tenant = %r.tenant_id, id = %r.id, error = %e, "a refused record's index entries stay until it is resent");
        }
    }

    /// `put_record` of a storable record; Failed, with the reason, for another.
    async fn put_item_of(&self, r: &Record, item: &Result<Item, String>) -> StoreResult<AppendOutcome> {
        match item {
            Ok(item) => self.put_record(r, item.clone()).await,
            Err(reason) => Ok(AppendOutcome::Failed { reason: reason.clone() }),
        }
    }

    fn count_write(&self, units: Option<f64>) {
        self.counters.records_written.fetch_add(1, Ordering::Relaxed);
        if let Some(u) = units {
            self.counters.write_tenths.fetch_add((u * 10.0).round() as u64, Ordering::Relaxed);
        }
    }

    /// The oldest record time of a tenant (its registry entry), if it has records.
    pub(crate) async fn oldest(&self, tenant: &str) -> StoreResult<Option<DateTime<Utc>>> {
        let reg = self.get_item(TENANTS_PK.to_owned(), tenant).await?;
        Ok(reg.as_ref().and_then(|i| get_n(i, "oldest")).and_then(DateTime::from_timestamp_micros))
    }

    /// Notes the oldest record time of a tenant, which bounds the retention purge; no update when
    /// this process knows it is already at or before `ts` (a live feed: one update per process).
    async fn note_oldest(&self, tenant: &str, ts: i64) -> StoreResult<()> {
        let known = self.oldest_known.lock().unwrap_or_else(|e| e.into_inner()).get(tenant).copied();
        if known.is_some_and(|k| k <= ts) {
            return Ok(());
        }
        self.counters.registry_updates.fetch_add(1, Ordering::Relaxed);
        // Done or refused (then it is already older): either way `oldest` ≤ `ts` now.
        self.update_with_retry(|| {
            self.tenant_update(tenant)
                .update_expression("SET oldest = :t")
                .condition_expression("attribute_not_exists(oldest) OR oldest > :t")
                .expression_attribute_values(":t", n(ts))
        })
        .await?;
        let mut cache = self.oldest_known.lock().unwrap_or_else(|e| e.into_inner());
        let k = cache.entry(tenant.to_owned()).or_insert(ts);
        *k = (*k).min(ts);
        Ok(())
    }
}

#[async_trait]
impl RecordStore for DynamoStore {
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let started = Utc::now();
        // The journal entry first: a record is never stored without one (the sealer keeps only
        // the records that carry this batch, so duplicates and failed writes listed are harmless).
        let batch = ulid::Ulid::generate().to_string();
        let records: Vec<Record> = records
            .iter()
            .map(|r| {
                let mut r = r.clone();
                crate::record::integrity::stamp(&mut r, &batch);
                r
            })
            .collect();
        let records = records.as_slice();
        let mut listed = std::collections::HashSet::new();
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).filter(|id| listed.insert(*id)).collect();
        self.put_journal(tenant, &batch, &ids, &[]).await?;
        // Each record's item, or why it cannot be stored (too large): such a record is not listed.
        let items: Vec<Result<Item, String>> = records
            .iter()
            .map(|r| match record_item(r) {
                Ok(item) => Ok(Ok(item)),
                Err(StoreError::Invalid(reason)) => Ok(Err(reason)),
                Err(e) => Err(e),
            })
            .collect::<StoreResult<_>>()?;
        // The purge's bounds (`settings`) before anything is listed, for every record given
        // whatever its outcome (one written by an earlier try comes back as a duplicate, listed
        // again): the oldest record, and the late records' start and horizons.
        let oldest = super::settings::oldest_by_category(records);
        if let Some(min) = oldest.values().min() {
            self.note_oldest(tenant, *min).await?;
            self.note_late(tenant, &oldest, started).await?;
        }
        // Then the time and action postings: a record is never stored without its entries (an
        // entry whose record is not written is skipped by reads).
        let storable = records.iter().zip(&items).filter(|(_, i)| i.is_ok()).map(|(r, _)| r);
        self.put_postings(tenant, &batch, storable).await?;
        // Records of one batch may repeat an id: write those one after the other so the second
        // is a duplicate, never a race.
        let mut seen = std::collections::HashSet::new();
        let (first, repeats): (Vec<_>, Vec<_>) =
            records.iter().enumerate().partition(|(_, r)| seen.insert(r.id.as_str()));
        let mut results: Vec<Option<StoreResult<AppendOutcome>>> = (0..records.len()).map(|_| None).collect();
        // The sides of one request pair in a batch are written one after the other (their pair is
        // one item, whose updates then never race); everything else at once.
        let mut chains: Vec<Vec<usize>> = Vec::new();
        let mut chain_of_pair: HashMap<&str, usize> = HashMap::new();
        for (i, r) in first {
            match (r.phase, r.correlation_id.as_deref()) {
                (Some(_), Some(corr)) => {
                    let c = *chain_of_pair.entry(corr).or_insert_with(|| {
                        chains.push(Vec::new());
                        chains.len() - 1
                    });
                    chains[c].push(i);
                }
                _ => chains.push(vec![i]),
            }
        }
        let items = &items;
        let writes: Vec<_> = chains
            .into_iter()
            .map(|chain| {
                Box::pin(async move {
                    let mut done = Vec::with_capacity(chain.len());
                    for i in chain {
                        done.push((i, self.put_item_of(&records[i], &items[i]).await));
                    }
                    done
                })
            })
            .collect();
        let done: Vec<Vec<(usize, StoreResult<AppendOutcome>)>> =
            futures_util::stream::iter(writes).buffer_unordered(WRITE_CONCURRENCY).collect().await;
        for (i, res) in done.into_iter().flatten() {
            results[i] = Some(res);
        }
        for (i, r) in repeats {
            results[i] = Some(self.put_item_of(r, &items[i]).await);
        }
        results.into_iter().map(|r| r.expect("every record has an outcome")).collect()
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Record>> {
        self.get_item(record_pk(tenant, id), RECORD_SK).await?.as_ref().map(decode).transpose()
    }

    async fn query(&self, tenant: &str, filter: &EventFilter, page: PageRequest) -> StoreResult<RecordPage> {
        let page = merge::run(self, tenant, filter, page).await?;
        self.counters.items_read.fetch_add(page.stats.items_read, Ordering::Relaxed);
        self.counters.items_returned.fetch_add(page.stats.items_returned, Ordering::Relaxed);
        Ok(page)
    }

    async fn purge_with(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
        first: &dyn BeforePurge,
    ) -> StoreResult<Vec<Record>> {
        // From the category's horizon (or the tenant's oldest record): every record of the
        // category is at or after it.
        let horizon = self.horizon(tenant, category).await?;
        let Some(start) = horizon.start else {
            return Ok(Vec::new());
        };
        // Or from where the last call of a purge in chunks stopped, if the horizon is held back
        // below it (`purge_chain::Chain`).
        let chain = self.purge_chain(tenant, category, before, start);
        let oldest = chain.as_ref().map_or(start, |c| c.upto);
        if oldest >= before {
            self.note_purge_chain(tenant, category, None);
            return Ok(Vec::new());
        }
        // Oldest first through the time index, only this category, never past `before`.
        let mut f = EventFilter::window(oldest, before);
        f.categories = vec![category];
        f.order = Order::OldestFirst;
        let found = merge::run_on_time_index(self, tenant, &f, limit).await?;
        // Every record of the category before `emptied` is gone once these are.
        let emptied = match found.last() {
            _ if found.len() < limit => before,
            Some(last) => last.occurred_at,
            None => {
                self.note_purge_chain(tenant, category, None);
                return Ok(found);
            }
        };
        first.run(&found).await?;
        // Their actions are marked pending first: if this call stops before it has dropped their
        // posting items, the next one still knows to (`pending`).
        let gone_actions: BTreeSet<String> = found.iter().map(|r| r.action.clone()).collect();
        self.mark_pending(tenant, category, gone_actions.iter().cloned().collect(), emptied).await?;
        let mut keys = Vec::with_capacity(found.len());
        for r in &found {
            keys.push(Self::key(record_pk(tenant, &r.id), RECORD_SK));
            keys.extend(subjects::subject_item_keys(r));
        }
        self.batch_delete(keys).await?;
        // Their pairs, a handful at once (each a conditional delete that may find the pair gone).
        let pairs: Vec<(String, String)> =
            found.iter().filter_map(|r| Some((pair_pk(tenant, r.correlation_id.as_deref()?), r.id.clone()))).collect();
        let drops: Vec<_> = pairs.iter().map(|(pk, id)| self.drop_pair_noting(pk, id)).collect();
        futures_util::stream::iter(drops).buffer_unordered(16).try_collect::<()>().await?;
        // Then the posting items of the category before `emptied`, whose entries are all of records
        // gone (dropped last: a crash before leaves them to skip, and to the next call to drop):
        // the time postings from the horizon, and the action postings of every pending action.
        let pending: BTreeSet<String> = self.pending_actions(tenant, category).await?.into_keys().collect();
        // A call continuing a chain drops only items named before the grace preceding its first
        // call: it did not read the records the chain had passed, and a later item may list one
        // (of an append in flight then) written since.
        let first_read_at = chain.as_ref().map_or(horizon.read_at, |c| c.first_read_at);
        let cut = super::postings_purge::Cut { before: emptied, read_at: first_read_at, last: emptied == before };
        let actions = self.drop_action_postings(tenant, category, (&pending, oldest), cut).await?;
        // (Not when continuing a chain: it read from where the last call stopped, and the items
        // kept before there are left to a purge from the horizon, which may clear the marks.)
        if chain.is_none() {
            let cleared = pending.difference(&actions.pending).cloned().collect();
            self.clear_pending(tenant, category, cleared, emptied).await?;
        }
        // Left with items of the hour of `emptied`: pending up to it (those of the records removed
        // already are).
        let left = actions.pending.difference(&gone_actions).cloned().collect();
        self.mark_pending(tenant, category, left, emptied).await?;
        let times = self.drop_postings(tenant, category, oldest, cut).await?;
        // The horizon moves up to `emptied`, or to the items kept for appends in flight, which the
        // next purge must reach to drop them (if no late append may be in flight: `settings`);
        // so the next call reads from there, not again over the records this one removed.
        let kept =
            times.kept_from.into_iter().chain(actions.kept_from).chain(chain.as_ref().and_then(|c| c.kept_from)).min();
        let horizon_to = kept.map_or(emptied, |k| k.min(emptied));
        self.raise_horizon(tenant, category, horizon_to, &horizon, first_read_at).await?;
        let next = (found.len() == limit).then_some(super::purge_chain::Chain {
            before,
            first_read_at,
            upto: emptied,
            kept_from: kept,
            horizon: start,
        });
        self.note_purge_chain(tenant, category, next);
        Ok(found)
    }

    async fn replace(&self, tenant: &str, r: &Record) -> StoreResult<()> {
        let started = Utc::now();
        let old = self.get(tenant, &r.id).await?.ok_or(StoreError::NotFound)?;
        let item = record_item(r)?;
        // A record old enough to be purged may be, between this write and its new listing: noted
        // as a late append notes its records (`settings`), so that no purge meanwhile raises the
        // horizon past its new time listing; its action is marked pending once it is listed.
        let late = r.occurred_at < started - super::settings::late_after();
        if late {
            self.note_late(tenant, &super::settings::oldest_by_category([r]), started).await?;
        }
        retry_throttled(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.table))
        })
        .await?;
        // List it again (reads keep one entry of each): a record stored under an earlier key
        // layout and erased before `upgrade-keys` reached it would otherwise leave the time index.
        self.put_postings(tenant, &ulid::Ulid::generate().to_string(), [r]).await?;
        // (A purge that removed the record meanwhile may have cleared the action's mark, finding
        // none of its items: it is marked again, so the next purge drops the new listing.)
        if late {
            self.mark_pending(tenant, r.category, vec![r.action.clone()], r.occurred_at).await?;
        }
        let new_keys = subjects::subject_item_keys(r);
        let gone: Vec<Item> = subjects::subject_item_keys(&old).into_iter().filter(|k| !new_keys.contains(k)).collect();
        self.batch_delete(gone).await?;
        if r.subject.is_some() || !r.attachments.is_empty() {
            self.put_subjects(r).await?;
        }
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "dynamodb"
    }
}
