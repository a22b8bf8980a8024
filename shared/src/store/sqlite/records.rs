//! Records in SQLite: a row per record with its indexed columns and its body; appends are one
//! transaction that also writes the subject index and the request pairs; queries run the
//! planner's branches and merge them by (time, id).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::OptionalExtension;
use serde_json::json;

use super::append::insert_rows;
use super::planner::{Source, plan, run_branches, trigram_match};
use super::subjects::insert_subjects;
use super::text::{TextOp, race, text_index, text_upto};
use super::{SqliteStore, decode, micros};
use crate::record::{Category, Record, fold};
use crate::store::{
    AppendOutcome, BeforePurge, EventFilter, Order, PageRequest, ReadStats, RecordPage, RecordStore, StoreError,
    StoreResult,
};

/// A record's indexed columns, in the order `?1`–`?12` of the insert and the update.
#[allow(clippy::type_complexity)]
pub(super) fn record_row<'a>(
    tenant: &'a str,
    r: &'a Record,
    body: &'a str,
) -> (
    &'a str,
    &'a str,
    i64,
    &'static str,
    &'a str,
    Option<&'a str>,
    Option<String>,
    Option<&'a str>,
    Option<&'static str>,
    Option<&'a str>,
    Option<&'a str>,
    &'a str,
) {
    (
        tenant,
        &r.id,
        micros(r.occurred_at),
        r.category.as_str(),
        &r.action,
        r.actor.user_id.as_deref(),
        r.actor.username.as_deref().map(fold),
        // Only sign-ins are found by employee id (`Record::is_sign_in`): other rows keep it in the body.
        r.actor.employee_id.as_deref().filter(|_| r.is_sign_in()),
        r.result.map(|x| x.as_str()),
        r.session_id.as_deref(),
        r.correlation_id.as_deref(),
        body,
    )
}

#[async_trait]
impl RecordStore for SqliteStore {
    async fn append(&self, tenant: &str, records: &[Record]) -> StoreResult<Vec<AppendOutcome>> {
        self.append_owned(tenant, records.to_vec()).await
    }

    async fn append_owned(&self, tenant: &str, records: Vec<Record>) -> StoreResult<Vec<AppendOutcome>> {
        let batch = ulid::Ulid::generate().to_string();
        // Each body serialised into one buffer, then copied at its size: `to_string` grows a
        // string per record by doubling (five reallocations for 400 bytes), and the inbox keeps
        // the bodies, slack and all, until they are indexed.
        // The rows are allocated at their number (collecting `Result`s grows the vector by
        // doubling: a batch of records is over half a megabyte, fresh memory at each step).
        let mut buf = Vec::with_capacity(1024);
        let mut rows = Vec::with_capacity(records.len());
        for mut r in records {
            debug_assert_eq!(r.tenant_id, tenant);
            crate::record::integrity::stamp(&mut r, &batch);
            buf.clear();
            serde_json::to_writer(&mut buf, &r).map_err(|e| StoreError::Invalid(e.to_string()))?;
            let body = String::from_utf8(buf.clone()).map_err(|e| StoreError::Invalid(e.to_string()))?;
            rows.push((r, body));
        }
        if let Some(inbox) = self.inner.inbox.get() {
            return inbox.clone().append(self.inner.clone(), tenant, batch, rows).await;
        }
        let tenant = tenant.to_owned();
        self.write(move |conn| {
            let tx = super::pool::write_transaction(conn)?;
            let refs: Vec<(&Record, &str)> = rows.iter().map(|(r, b)| (r, b.as_str())).collect();
            let out = insert_rows(&tx, &tenant, &batch, &refs)?;
            tx.commit().map_err(StoreError::backend)?;
            Ok(out)
        })
        .await
    }

    async fn get(&self, tenant: &str, id: &str) -> StoreResult<Option<Record>> {
        if let Some(r) = self.inner.inbox.get().and_then(|i| i.get(tenant, id)) {
            return r.map(Some);
        }
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.read(move |conn| {
            let body: Option<String> = conn
                .prepare_cached("SELECT body FROM records WHERE tenant = ?1 AND id = ?2")
                .and_then(|mut s| s.query_row([&tenant, &id], |r| r.get(0)).optional())
                .map_err(StoreError::backend)?;
            body.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn query(&self, tenant: &str, filter: &EventFilter, page: PageRequest) -> StoreResult<RecordPage> {
        let after = match page.after {
            None => None,
            Some(p) => {
                let ts = p.get("ts").and_then(|v| v.as_i64());
                let id = p.get("id").and_then(|v| v.as_str()).map(str::to_owned);
                match (ts, id) {
                    (Some(ts), Some(id)) => Some((ts, id)),
                    _ => return Err(StoreError::Invalid("cursor position is not a SQLite position".into())),
                }
            }
        };
        let limit = page.limit.max(1);
        let inbox = self.inner.inbox.get().cloned();
        let first_budget = self.text_budget;
        let filter = filter.clone();
        let tenant = tenant.to_owned();
        self.read(move |conn| {
            // The inbox's tail before SQLite: a record leaves the tail only once it is committed
            // there, so none falls between the two reads (one in both is merged below).
            let tail = inbox.map(|i| i.matches(&tenant, &filter, after.as_ref(), limit + 1)).unwrap_or_default();
            let desc = filter.order == Order::NewestFirst;
            let mut stats = ReadStats::default();
            let folded = filter.text.as_deref().map(fold);
            let trigrams = folded.as_deref().and_then(trigram_match);
            let (mut rows, plan_name) = match &trigrams {
                None => {
                    let branches = plan(&tenant, &filter, after, limit, Source::Indexes);
                    let name = branches.first().map(|b| b.index).unwrap_or("time").to_owned();
                    (run_branches(conn, &branches, &mut stats)?.0, name)
                }
                Some(m) => race(conn, &tenant, &filter, after, limit, m, first_budget, &mut stats)?,
            };
            stats.items_read += tail.len() as u64;
            rows.extend(tail);
            rows.sort_by(|a, b| {
                let o = (a.0, &a.1).cmp(&(b.0, &b.1));
                if desc { o.reverse() } else { o }
            });
            rows.dedup_by(|a, b| a.1 == b.1);
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = if more { rows.last().map(|(ts, id, _)| json!({"ts": ts, "id": id})) } else { None };
            let records = rows.iter().map(|(_, _, body)| decode(body)).collect::<StoreResult<Vec<_>>>()?;
            stats.items_returned = records.len() as u64;
            Ok(RecordPage { records, next, stats, plan: plan_name, searched_until: None })
        })
        .await
    }

    async fn purge_with(
        &self,
        tenant: &str,
        category: Category,
        before: DateTime<Utc>,
        limit: usize,
        first: &dyn BeforePurge,
    ) -> StoreResult<Vec<Record>> {
        self.settled().await?;
        let t = tenant.to_owned();
        let found: Vec<(i64, String)> = self
            .write(move |conn| {
                let mut stmt = conn
                    .prepare_cached(
                        "SELECT seq, body FROM records WHERE tenant = ?1 AND category = ?2 AND ts < ?3 \
                         ORDER BY ts, id LIMIT ?4",
                    )
                    .map_err(StoreError::backend)?;
                stmt.query_map(rusqlite::params![t, category.as_str(), micros(before), limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(StoreError::backend)?
                .collect::<Result<_, _>>()
                .map_err(StoreError::backend)
            })
            .await?;
        if found.is_empty() {
            return Ok(Vec::new());
        }
        let records = found.iter().map(|(_, body)| decode(body)).collect::<StoreResult<Vec<_>>>()?;
        first.run(&records).await?;
        // Then exactly those rows (one that came since with an older time waits for the next call;
        // one already gone is skipped), in one transaction.
        let tenant = tenant.to_owned();
        // By seq and id: a row deleted meanwhile (another purge) may have left its seq to a new one.
        let rows: Vec<(i64, String)> =
            found.into_iter().zip(&records).map(|((seq, _), r)| (seq, r.id.clone())).collect();
        self.write(move |conn| {
            let tx = super::pool::write_transaction(conn)?;
            let mut out = Vec::with_capacity(rows.len());
            let upto = text_upto(&tx)?;
            for (seq, id) in rows {
                let body: Option<String> = tx
                    .query_row(
                        "SELECT body FROM records WHERE seq = ?1 AND tenant = ?2 AND id = ?3",
                        rusqlite::params![seq, tenant, id],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(StoreError::backend)?;
                let Some(body) = body else { continue };
                let rec = decode(&body)?;
                if seq <= upto {
                    text_index(&tx, TextOp::Unindex, "seq = ?1", seq)?;
                }
                tx.execute("DELETE FROM records WHERE seq = ?1", [seq]).map_err(StoreError::backend)?;
                tx.execute("DELETE FROM subjects WHERE tenant = ?1 AND record_id = ?2", rusqlite::params![tenant, rec.id])
                    .map_err(StoreError::backend)?;
                if let Some(corr) = &rec.correlation_id {
                    tx.execute(
                        "DELETE FROM requests WHERE tenant = ?1 AND correlation_id = ?2 AND (start_id = ?3 OR end_id = ?3)",
                        rusqlite::params![tenant, corr, rec.id],
                    )
                    .map_err(StoreError::backend)?;
                }
                out.push(rec);
            }
            tx.commit().map_err(StoreError::backend)?;
            Ok(out)
        })
        .await
    }

    async fn replace(&self, tenant: &str, r: &Record) -> StoreResult<()> {
        let body = serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?;
        self.settled().await?;
        let (tenant, r) = (tenant.to_owned(), r.clone());
        self.write(move |conn| {
            let tx = super::pool::write_transaction(conn)?;
            let seq: Option<i64> = tx
                .query_row("SELECT seq FROM records WHERE tenant = ?1 AND id = ?2", [&tenant, &r.id], |row| row.get(0))
                .optional()
                .map_err(StoreError::backend)?;
            let Some(seq) = seq else {
                return Err(StoreError::NotFound);
            };
            // A row of the tail has no text in the index yet: its new text goes in with the tail.
            let indexed = seq <= text_upto(&tx)?;
            if indexed {
                text_index(&tx, TextOp::Unindex, "seq = ?1", seq)?;
            }
            let n = tx
                .execute(
                    "UPDATE records SET ts = ?3, category = ?4, action = ?5, user_id = ?6, username = ?7, employee_id = ?8, \
                     result = ?9, session_id = ?10, correlation_id = ?11, body = ?12 WHERE tenant = ?1 AND id = ?2",
                    record_row(&tenant, &r, &body),
                )
                .map_err(StoreError::backend)?;
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            if indexed {
                text_index(&tx, TextOp::Index, "seq = ?1", seq)?;
            }
            tx.execute("DELETE FROM subjects WHERE tenant = ?1 AND record_id = ?2", rusqlite::params![tenant, r.id])
                .map_err(StoreError::backend)?;
            insert_subjects(&tx, &tenant, &r)?;
            tx.commit().map_err(StoreError::backend)
        })
        .await
    }

    async fn maintain(&self) -> StoreResult<()> {
        self.optimize().await
    }

    async fn settle(&self) -> StoreResult<()> {
        self.settled().await
    }

    async fn wipe_removed(&self) -> StoreResult<()> {
        // The inbox's log holds the bodies the records were appended with: emptied once they are
        // all in SQLite, where the caller has changed or removed them.
        if let Some(inbox) = self.inner.inbox.get().cloned() {
            tokio::task::spawn_blocking(move || inbox.clear()).await.map_err(StoreError::backend)??;
        }
        self.write(|c| {
            // A reader in the middle of a statement keeps the log busy: wait for it (readers
            // hold no transaction between calls), then give up as a transient failure, so the
            // job is retried rather than reported done with the bytes still in the log.
            for _ in 0..100 {
                let (busy, _, _): (i64, i64, i64) = c
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .map_err(StoreError::backend)?;
                if busy == 0 {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(StoreError::Backend(anyhow::anyhow!("the WAL stayed busy: removed data is not wiped yet")))
        })
        .await
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use serde_json::json;

    use super::SqliteStore;
    use crate::record::{Category, ResultCode};
    use crate::store::{EventFilter, Order, PageRequest, RecordStore, StoreError};
    use crate::testkit::conformance::{all, rec, t0, window};

    /// Terms of the trigram index that name at least one row.
    async fn indexed_terms(store: &SqliteStore) -> Vec<String> {
        store
            .write(|c| {
                c.execute_batch(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.vocab USING fts5vocab(main, records_text, 'row')",
                )
                .map_err(StoreError::backend)?;
                let mut s = c.prepare("SELECT term FROM temp.vocab WHERE doc > 0").map_err(StoreError::backend)?;
                s.query_map([], |r| r.get(0))
                    .map_err(StoreError::backend)?
                    .collect::<Result<_, _>>()
                    .map_err(StoreError::backend)
            })
            .await
            .unwrap()
    }

    fn texted(tenant: &str, id: &str, minutes: i64, text: &str) -> crate::record::Record {
        let mut r = rec(tenant, id, minutes, "LOGIN", "ann", ResultCode::Ok);
        r.description = Some(json!({"note": text}));
        r
    }

    async fn search(
        store: &SqliteStore,
        tenant: &str,
        q: &str,
        f: impl Fn(&mut EventFilter),
    ) -> (Vec<String>, String, u64) {
        let mut filter = window();
        filter.text = Some(q.to_owned());
        f(&mut filter);
        let page = store.query(tenant, &filter, PageRequest { limit: 5, after: None }).await.unwrap();
        (page.records.into_iter().map(|r| r.id).collect(), page.plan, page.stats.items_read)
    }

    #[tokio::test]
    async fn a_rare_text_is_read_from_the_index_and_a_common_one_from_a_bounded_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap().with_text_budget(50);
        let mut recs: Vec<_> = (0..400).map(|i| texted("t", &format!("c{i:03}"), i, "routine call Ω")).collect();
        recs.push(texted("t", "rare", 500, "Faktura ČEZ-4471"));
        recs.push(texted("t", "long-ago", -40 * 24 * 60, "Faktura ČEZ-4471"));
        recs.push(texted("other", "theirs", 500, "Faktura ČEZ-4471"));
        store.append("t", &recs[..402]).await.unwrap();
        store.append("other", &recs[402..]).await.unwrap();
        store.index_text().await.unwrap();

        // A rare text: the index names two rows of the window's days (one of another tenant; not
        // the one 40 days before), one is returned.
        let (ids, plan, read) = search(&store, "t", "čez-44", |_| ()).await;
        assert_eq!((ids, plan.as_str()), (vec!["rare".to_owned()], "text"));
        assert_eq!(read, 3, "two candidates counted and one row read");
        let (ids, _, _) = search(&store, "t", "čez-44", |f| f.from = t0() - Duration::days(41)).await;
        assert_eq!(ids, ["rare", "long-ago"]);
        // A common text: the newest rows of the time index, not every candidate of the index.
        let (ids, plan, read) = search(&store, "t", "ROUTINE", |_| ()).await;
        assert_eq!(ids, ["c399", "c398", "c397", "c396", "c395"]);
        assert_eq!(plan, "time+scan");
        assert!(read < 120, "read {read} rows for a page of 5");
        // A common text with a filter that leaves few rows: the filter's index, then the text.
        let (ids, plan, _) = search(&store, "t", "routine", |f| f.actions = vec!["LOGIN".into()]).await;
        assert_eq!((ids.len(), plan.as_str()), (5, "action+scan"));
        // Under three characters the index cannot help; the equality index is read as before.
        let (ids, _, _) = search(&store, "t", "Ω", |f| f.from = t0() + Duration::minutes(398)).await;
        assert_eq!(ids, ["c399", "c398"]);
        // Case folding as everywhere: upper-case Czech finds lower-case and back.
        assert_eq!(search(&store, "t", "FAKTURA čez", |_| ()).await.0, ["rare"]);
    }

    /// The whole database file after a checkpoint.
    async fn file_bytes(store: &SqliteStore) -> Vec<u8> {
        store.wipe_removed().await.unwrap();
        std::fs::read(store.path()).unwrap()
    }

    fn holds(hay: &[u8], needle: &str) -> bool {
        hay.windows(needle.len()).any(|w| w == needle.as_bytes())
    }

    #[tokio::test]
    async fn erasure_and_purge_leave_no_entry_of_the_old_text_in_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        // A Georgian name among ASCII text: the smallest trigram starting with a Georgian letter
        // follows an ASCII term in the index, so its page stores it whole, bytes a probe can find.
        let name = "Nino Beridze / ნინო ბერიძე +995 555 123 456";
        let mut a = texted("t", "a", 1, "");
        a.description = Some(json!(name));
        store.append("t", &[a, texted("t", "b", 2, "xyz")]).await.unwrap();
        assert_eq!(store.index_text().await.unwrap(), 2);
        let chars: Vec<char> = name.to_lowercase().chars().collect();
        let probe = chars
            .windows(3)
            .map(|w| w.iter().collect::<String>())
            .filter(|g| g.as_bytes()[0] >= 0xE1)
            .min_by(|x, y| x.as_bytes().cmp(y.as_bytes()))
            .unwrap();
        // The row stays out of `body` in the probe: its text is compared in the index's pages.
        let index_bytes = |store: &SqliteStore| {
            let store = store.clone();
            async move {
                store
                    .read(|c| {
                        let mut s = c.prepare("SELECT block FROM records_text_data").map_err(StoreError::backend)?;
                        let blocks: Vec<Vec<u8>> = s
                            .query_map([], |r| r.get(0))
                            .map_err(StoreError::backend)?
                            .collect::<Result<_, _>>()
                            .map_err(StoreError::backend)?;
                        Ok(blocks.concat())
                    })
                    .await
                    .unwrap()
            }
        };
        assert!(holds(&index_bytes(&store).await, &probe), "the probe `{probe}` finds the indexed name");
        let terms = indexed_terms(&store).await;
        assert!(terms.contains(&"555".to_owned()) && terms.contains(&probe), "{terms:?}");

        // Erasure replaces the description: the old text is neither found nor in the index, not
        // even as a deleted entry on a page, nor anywhere in the file.
        let mut a = store.get("t", "a").await.unwrap().unwrap();
        a.description = Some(json!("{Anonymized by DPO}"));
        store.replace("t", &a).await.unwrap();
        assert!(search(&store, "t", "ნინო", |_| ()).await.0.is_empty());
        assert_eq!(search(&store, "t", "anonymized", |_| ()).await.0, ["a"]);
        let terms = indexed_terms(&store).await;
        for gone in [probe.as_str(), "555", "nin", "456"] {
            assert!(!terms.contains(&gone.to_owned()), "`{gone}` of the erased text is still indexed: {terms:?}");
        }
        assert!(!holds(&index_bytes(&store).await, &probe), "`{probe}` is still on an index page");
        assert!(!holds(&file_bytes(&store).await, &probe), "`{probe}` is still in the database file");
        // Purge by retention takes the records' entries with them.
        let purged = store.purge("t", Category::SignIn, t0() + Duration::days(1), 10).await.unwrap();
        assert_eq!(purged.len(), 2);
        assert_eq!(indexed_terms(&store).await, Vec::<String>::new());
    }

    /// A text the index names often, none of it where the filter looks: the window grows until it
    /// has read the filter's whole range (a branch that matched nothing must not make it ask SQLite
    /// for an impossible LIMIT), and the page is rightly empty.
    #[tokio::test]
    async fn a_common_text_absent_from_the_filtered_rows_ends_in_an_empty_page() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap().with_text_budget(1);
        let mut recs: Vec<_> = (0..40).map(|i| texted("t", &format!("l{i:02}"), i, "routine")).collect();
        for i in 0..40 {
            let mut r = rec("t", &format!("c{i:02}"), i, "CONTACT", "bob", ResultCode::Ok);
            r.description = Some(json!("special offer"));
            recs.push(r);
        }
        store.append("t", &recs).await.unwrap();
        store.index_text().await.unwrap();
        let (ids, plan, read) = search(&store, "t", "special", |f| f.actions = vec!["LOGIN".into()]).await;
        assert_eq!((ids, plan.as_str()), (Vec::<String>::new(), "action+scan"));
        assert!(read >= 40, "the whole LOGIN range was read: {read}");
        assert_eq!(search(&store, "t", "special", |f| f.actions = vec!["CONTACT".into()]).await.0.len(), 5);
    }

    /// A text every record of five days holds, few enough for the index to serve it, enough to be
    /// read in spans from the page's edge: a page is the newest (oldest) matches, and paging
    /// through every match in either order returns each once, in order.
    #[tokio::test]
    async fn a_page_from_the_text_index_reads_the_days_at_its_edge_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap().with_text_budget(1_000);
        let recs: Vec<_> = (0..5)
            .flat_map(|d| (0..100).map(move |i| texted("t", &format!("d{d}-{i:03}"), d * 24 * 60 + i, "routine call")))
            .collect();
        store.append("t", &recs).await.unwrap();
        store.index_text().await.unwrap();
        let edge = |f: &mut EventFilter| {
            f.from = t0();
            f.to = t0() + Duration::days(4) + Duration::hours(2);
        };
        // Served from the index (500 candidates, under the budget: read in spans); which spans is
        // `text::tests` (the rows a span's query examines are not counted, only those it returns).
        let (ids, plan, _) = search(&store, "t", "routine", edge).await;
        assert_eq!(ids, ["d4-099", "d4-098", "d4-097", "d4-096", "d4-095"]);
        assert_eq!(plan, "text");
        let (ids, _, _) = search(&store, "t", "routine", |f| {
            edge(f);
            f.order = Order::OldestFirst;
        })
        .await;
        assert_eq!(ids, ["d0-000", "d0-001", "d0-002", "d0-003", "d0-004"]);
        for order in [Order::NewestFirst, Order::OldestFirst] {
            let mut f = window();
            edge(&mut f);
            f.order = order;
            f.text = Some("ROUTINE".into());
            let mut got: Vec<String> = all(&store, "t", &f, 37).await.into_iter().map(|r| r.id).collect();
            if order == Order::NewestFirst {
                got.reverse();
            }
            assert_eq!(got, recs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), "{order:?}");
        }
    }

    #[tokio::test]
    async fn a_store_from_before_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let store = SqliteStore::open(&path).unwrap();
        store.append("t", &[texted("t", "old", 1, "before the index")]).await.unwrap();
        store.write(|c| c.execute_batch("DROP TABLE records_text;").map_err(StoreError::backend)).await.unwrap();
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        let (ids, plan, _) = search(&store, "t", "the index", |_| ()).await;
        assert_eq!((ids, plan.as_str()), (vec!["old".to_owned()], "text"));
    }

    /// The rows appended since the text index's last batch (the tail) are found by a search before
    /// their text is indexed, an erasure among them leaves nothing of the old text to index, and
    /// a purge of the last rows does not let new rows take ids the index's mark has passed. The
    /// store's indexer indexes the tail a moment after appends, and an append that fills it does.
    #[tokio::test]
    async fn the_text_of_new_rows_is_found_before_and_after_it_is_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db")).unwrap();
        let upto = |store: &SqliteStore| {
            let store = store.clone();
            async move { store.read(super::text_upto).await.unwrap() }
        };
        store
            .append("t", &[texted("t", "a", 1, "Jana Nováková"), texted("t", "b", 2, "Faktura ČEZ-4471")])
            .await
            .unwrap();
        store.append("other", &[texted("other", "theirs", 2, "Faktura ČEZ-4471")]).await.unwrap();
        assert_eq!(upto(&store).await, 0, "appends leave their text to the tail's batch");
        assert!(indexed_terms(&store).await.is_empty());
        assert_eq!(search(&store, "t", "čez-44", |_| ()).await.0, ["b"]);
        assert_eq!(search(&store, "t", "NOVÁK", |_| ()).await.0, ["a"]);
        // Erased before its text was indexed: the new text is found, and is what gets indexed.
        let mut a = store.get("t", "a").await.unwrap().unwrap();
        a.description = Some(json!("{Anonymized by DPO}"));
        store.replace("t", &a).await.unwrap();
        assert!(search(&store, "t", "novák", |_| ()).await.0.is_empty());
        store.index_text().await.unwrap();
        assert_eq!(upto(&store).await, 3);
        let terms = indexed_terms(&store).await;
        assert!(terms.contains(&"ymi".to_owned()) && !terms.contains(&"vák".to_owned()), "{terms:?}");
        assert_eq!(search(&store, "t", "čez-44", |_| ()).await.0, ["b"]);
        // The last row purged: the next row's id is still above the mark, so its text is read
        // from the tail, then indexed.
        assert_eq!(store.purge("other", Category::SignIn, t0() + Duration::days(1), 10).await.unwrap().len(), 1);
        store.append("other", &[texted("other", "new", 3, "Faktura ČEZ-9")]).await.unwrap();
        assert_eq!(search(&store, "other", "čez-9", |_| ()).await.0, ["new"]);
        assert_eq!(upto(&store).await, 3);
        // A store's indexer (here: of another handle on the file) takes it within a few seconds.
        let indexing = SqliteStore::open(store.path()).unwrap();
        indexing.start_text_indexer();
        let mut waited = 0;
        while upto(&store).await < 4 {
            assert!(waited < 50, "the indexer did not run");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            waited += 1;
        }
        assert_eq!(search(&store, "other", "čez-9", |_| ()).await.0, ["new"]);
        // An append that fills the tail indexes it.
        let many: Vec<_> =
            (0..super::super::text::TEXT_BATCH).map(|i| texted("t", &format!("m{i}"), 10 + i / 100, "bulk")).collect();
        store.append("t", &many).await.unwrap();
        assert_eq!(upto(&store).await, 4 + super::super::text::TEXT_BATCH);
    }
}
