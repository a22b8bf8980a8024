//! Request pairs on DynamoDB: one item per correlation id (`T#{tenant}#Q#{corr}`, `Q`), updated
//! by each side as it is appended; once both are known it carries the delay and enters the
//! slow-requests index (`g9`), while a start alone sits in the open-requests index (`g10`).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

use super::keys::{self, PAIR_SK, RECORD_SK, pair_pk, record_pk, tsid};
use super::{DynamoStore, Item, classify, get_n, get_s, n, retry_throttled, s};
use crate::record::{Phase, Record, ResultCode};
use crate::store::{
    PageRequest, ReadStats, RequestPage, RequestPair, RequestQuery, RequestStore, StoreError, StoreResult,
};

/// The update noting a record as one side of its pair.
struct SideUpdate {
    expression: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

/// The pair item's attribute naming the record of side `phase`.
fn side_id(phase: Phase) -> &'static str {
    match phase {
        Phase::Start => "start_id",
        Phase::End => "end_id",
    }
}

/// The update noting record `r` as side `phase` of its pair.
fn side_update(r: &Record, phase: Phase) -> SideUpdate {
    let mut values =
        vec![(":a", s(r.action.clone())), (":id", s(r.id.clone())), (":ts", n(r.occurred_at.timestamp_micros()))];
    match phase {
        Phase::Start => SideUpdate {
            expression: "SET #a = if_not_exists(#a, :a), start_id = :id, start_ts = :ts",
            names: vec![("#a", "action")],
            values,
        },
        Phase::End => {
            values.push((":r", s(r.result.map(|x| x.as_str()).unwrap_or("FAIL"))));
            SideUpdate {
                expression: "SET #a = if_not_exists(#a, :a), end_id = :id, end_ts = :ts, #r = :r REMOVE g10, os",
                names: vec![("#a", "action"), ("#r", "result")],
                values,
            }
        }
    }
}

impl DynamoStore {
    /// Records one side of a request pair, then the delay once both sides are known.
    ///
    /// With `repair` (a stored record noted again, `put_record`): only while the record is still
    /// stored, in one transaction with a check of its item (a retention purge between the
    /// duplicate and this update would otherwise leave a pair behind that no purge removes), and
    /// only if the pair notes no other record on that side: another record it notes keeps its
    /// place, and a pair that notes this very record is updated again in full, the same values,
    /// which finishes what a failed earlier update left undone. A record just written that a purge
    /// can reach (older than `late_after`: a backfill) is checked after the update instead (one
    /// read, where a transaction would double the writes of every backfilled pair).
    pub(super) async fn pair_upsert(&self, r: &Record, phase: Phase, corr: &str, repair: bool) -> StoreResult<()> {
        let t = &r.tenant_id;
        let pk = pair_pk(t, corr);
        let key = |b: aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder| {
            b.table_name(&self.table).key("pk", s(pk.clone())).key("sk", s(PAIR_SK))
        };
        let after = if repair {
            if self.pair_complete_or_taken(&pk, &r.id, phase).await? || !self.note_side_if_stored(r, phase, &pk).await?
            {
                return Ok(());
            }
            self.get_item(pk.clone(), PAIR_SK).await?
        } else {
            let u = side_update(r, phase);
            self.update_with_retry(|| {
                let b = key(self.client.update_item()).update_expression(u.expression);
                let b = u.names.iter().fold(b, |b, (k, v)| b.expression_attribute_names(*k, *v));
                u.values.iter().fold(b, |b, (k, v)| b.expression_attribute_values(*k, v.clone()))
            })
            .await?
        };
        let Some(item) = after else { return Ok(()) };
        // Both follow-ups are conditional on the sides they derive from, so an update that comes
        // after the pair was purged does not leave a stub of it behind.
        match (get_n(&item, "start_ts"), get_n(&item, "end_ts")) {
            (Some(start), Some(end)) => {
                let delay = (end - start) / 1000;
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression("SET delay_ms = :d, g9 = :g, dk = :k REMOVE g10, os")
                        .condition_expression("attribute_exists(start_ts) AND attribute_exists(end_ts)")
                        .expression_attribute_values(":d", n(delay))
                        .expression_attribute_values(":g", s(format!("T#{t}#DELAY")))
                        .expression_attribute_values(":k", s(format!("{:015}#{corr}", delay.max(0))))
                })
                .await?;
            }
            (Some(start), None) => {
                self.update_with_retry(|| {
                    key(self.client.update_item())
                        .update_expression("SET g10 = :g, os = :o")
                        .condition_expression("attribute_exists(start_ts) AND attribute_not_exists(end_ts)")
                        .expression_attribute_values(":g", s(format!("T#{t}#OPEN")))
                        .expression_attribute_values(":o", s(tsid(start, corr)))
                })
                .await?;
            }
            _ => {}
        }
        // A purge that deleted the record before the update above noted it deleted no pair (the
        // pair did not name it yet); one that deletes it from now on deletes the pair too.
        if !repair && r.occurred_at < Utc::now() - super::settings::late_after() {
            self.drop_pair_if_purged(r, &pk).await?;
        }
        Ok(())
    }

    /// Deletes pair `pk` if it notes `r` and `r`'s item is gone.
    async fn drop_pair_if_purged(&self, r: &Record, pk: &str) -> StoreResult<()> {
        if self.get_item(record_pk(&r.tenant_id, &r.id), RECORD_SK).await?.is_some() {
            return Ok(());
        }
        self.drop_pair_noting(pk, &r.id).await
    }

    /// Deletes pair item `pk` if it notes record `id` on either side (a record is only ever one
    /// side of one pair); nothing if it notes others or is gone. The retention purge's way of
    /// removing the pairs of the records it deletes.
    pub(super) async fn drop_pair_noting(&self, pk: &str, id: &str) -> StoreResult<()> {
        let res = retry_throttled(|| async {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk.to_owned()))
                .key("sk", s(PAIR_SK))
                .condition_expression("start_id = :id OR end_id = :id")
                .expression_attribute_values(":id", s(id.to_owned()))
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Notes `r` as side `phase` of pair `pk` in one transaction with a check that its record item
    /// is still stored, unless that side notes another record. False when either condition
    /// failed (nothing written).
    async fn note_side_if_stored(&self, r: &Record, phase: Phase, pk: &str) -> StoreResult<bool> {
        let side = side_id(phase);
        let u = side_update(r, phase);
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk.to_owned()))
            .key("sk", s(PAIR_SK))
            .update_expression(u.expression)
            .condition_expression(format!("attribute_not_exists({side}) OR {side} = :id"))
            .set_expression_attribute_names(Some(
                u.names.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ))
            .set_expression_attribute_values(Some(u.values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
            .build()
            .map_err(StoreError::backend)?;
        let stored = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(record_pk(&r.tenant_id, &r.id)))
            .key("sk", s(RECORD_SK))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(StoreError::backend)?;
        let res = retry_throttled(|| async {
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().condition_check(stored.clone()).build())
                .transact_items(TransactWriteItem::builder().update(update.clone()).build())
                .send()
                .await
                .map_err(|e| classify(e, &self.table))
        })
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(StoreError::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl DynamoStore {
    /// Whether the pair item `pk` needs no update for record `id` on side `phase`: it notes
    /// another record there, or notes this one with everything that follows from it (the delay
    /// once both sides are known, the open-requests entry while only the start is). One
    /// consistent read instead of two writes for the usual duplicate, whose pair is whole.
    async fn pair_complete_or_taken(&self, pk: &str, id: &str, phase: Phase) -> StoreResult<bool> {
        let Some(item) = self.get_item(pk.to_owned(), PAIR_SK).await? else { return Ok(false) };
        let side = get_s(&item, side_id(phase));
        Ok(match side {
            None => false,
            Some(other) if other != id => true,
            Some(_) => match (get_n(&item, "start_ts"), get_n(&item, "end_ts")) {
                (Some(_), Some(_)) => item.contains_key("delay_ms") && item.contains_key("g9"),
                (Some(_), None) => item.contains_key("g10"),
                _ => true,
            },
        })
    }
}

fn pair_from(item: &Item) -> RequestPair {
    let time = |k: &str| get_n(item, k).and_then(DateTime::from_timestamp_micros);
    RequestPair {
        correlation_id: get_s(item, "pk").and_then(|p| p.splitn(4, '#').nth(3)).unwrap_or_default().to_owned(),
        action: get_s(item, "action").unwrap_or_default().to_owned(),
        start_id: get_s(item, "start_id").map(str::to_owned),
        end_id: get_s(item, "end_id").map(str::to_owned),
        started_at: time("start_ts"),
        ended_at: time("end_ts"),
        delay_ms: get_n(item, "delay_ms"),
        result: get_s(item, "result").and_then(ResultCode::parse),
    }
}

#[async_trait]
impl RequestStore for DynamoStore {
    async fn pair(&self, tenant: &str, correlation_id: &str) -> StoreResult<Option<RequestPair>> {
        Ok(self.get_item(pair_pk(tenant, correlation_id), PAIR_SK).await?.as_ref().map(pair_from))
    }

    async fn pairs(&self, tenant: &str, q: &RequestQuery, page: PageRequest) -> StoreResult<RequestPage> {
        let limit = page.limit.max(1);
        let (index, pk_attr, sort_attr, pk, lo, hi, filter) = match q {
            RequestQuery::SlowerThan { min_delay_ms, from, to } => (
                "g9",
                "g9",
                "dk",
                format!("T#{tenant}#DELAY"),
                format!("{:015}", (*min_delay_ms).max(0)),
                "~".to_string(),
                Some((from.timestamp_micros(), to.timestamp_micros())),
            ),
            RequestQuery::Unfinished { started_before, from } => (
                "g10",
                "g10",
                "os",
                format!("T#{tenant}#OPEN"),
                format!("{:020}", from.timestamp_micros()),
                format!("{:020}", started_before.timestamp_micros()),
                None,
            ),
        };
        let start: Option<Item> = page.after.as_ref().and_then(|p| p.get("k")).and_then(|k| k.as_str()).map(|k| {
            let corr = k.rsplit_once('#').map(|(_, c)| c).unwrap_or_default();
            HashMap::from([
                ("pk".to_string(), s(pair_pk(tenant, corr))),
                ("sk".to_string(), s(PAIR_SK)),
                (pk_attr.to_string(), s(pk.clone())),
                (sort_attr.to_string(), s(k)),
            ])
        });
        let mut stats = ReadStats::default();
        let query = |still: usize| {
            let qb = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(keys::gsi(index))
                .key_condition_expression("#p = :p AND #s BETWEEN :lo AND :hi")
                .expression_attribute_names("#p", pk_attr)
                .expression_attribute_names("#s", sort_attr)
                .expression_attribute_values(":p", s(pk.clone()))
                .expression_attribute_values(":lo", s(lo.clone()))
                .expression_attribute_values(":hi", s(hi.clone()))
                .scan_index_forward(false)
                .limit(still as i32);
            match filter {
                Some((from, to)) => qb
                    .filter_expression("start_ts >= :f AND start_ts < :t")
                    .expression_attribute_values(":f", n(from))
                    .expression_attribute_values(":t", n(to)),
                None => qb,
            }
        };
        let mut pairs = self
            .read_pages(start, limit + 1, &mut stats, query, |item| {
                Ok(Some((pair_from(item), get_s(item, sort_attr).map(str::to_owned))))
            })
            .await?
            .items;
        let more = pairs.len() > limit;
        pairs.truncate(limit);
        let next =
            if more { pairs.last().and_then(|(_, k)| k.clone()).map(|k| serde_json::json!({ "k": k })) } else { None };
        let pairs: Vec<RequestPair> = pairs.into_iter().map(|(p, _)| p).collect();
        stats.items_returned = pairs.len() as u64;
        Ok(RequestPage { pairs, next, stats })
    }
}
