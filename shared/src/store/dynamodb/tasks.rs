//! Task records on DynamoDB.
//!
//! | item | pk | sk | index |
//! |---|---|---|---|
//! | task | `T#{tenant}#J#{kind}` | task id (a ULID: creation order) | `g11` = `ACTIVE#{kind}` while queued or running (sort `tsid` = id) |
//!
//! Every save is a conditional put on the version read (`ver = :v`), so a worker that lost its
//! lease cannot overwrite the new owner's checkpoint. The sparse `gsi11` holds only pending tasks,
//! so the sweeper and the local worker find them without a Scan. The table's stream carries
//! `kind` and `status` as top-level attributes so the worker function's event filter can start a
//! worker for every task that becomes `QUEUED`.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{DynamoStore, Item, classify, get_s, n, retry_throttled, s};
use crate::store::{PageRequest, Position, ReadStats, StoreError, StoreResult, TaskStore};
use crate::task::{Task, TaskKind};

pub fn task_pk(tenant: &str, kind: TaskKind) -> String {
    format!("T#{tenant}#J#{}", kind.as_str())
}

fn active_key(kind: TaskKind) -> String {
    format!("ACTIVE#{}", kind.as_str())
}

fn item(t: &Task) -> StoreResult<Item> {
    let mut item = Item::from([
        ("pk".to_owned(), s(task_pk(&t.tenant_id, t.kind))),
        ("sk".to_owned(), s(&t.id)),
        ("tsid".to_owned(), s(&t.id)),
        ("ver".to_owned(), n(t.version as i64)),
        ("kind".to_owned(), s(t.kind.as_str())),
        ("status".to_owned(), s(t.status.as_str())),
        ("tenant".to_owned(), s(&t.tenant_id)),
        ("body".to_owned(), s(serde_json::to_string(t).map_err(StoreError::backend)?)),
    ]);
    if t.status.is_pending() {
        item.insert("g11".to_owned(), s(active_key(t.kind)));
    }
    Ok(item)
}

fn decode(item: &Item) -> StoreResult<Task> {
    let body = get_s(item, "body").ok_or_else(|| StoreError::Corrupt("task item without body".into()))?;
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("task: {e}")))
}

impl DynamoStore {
    async fn put_task(&self, t: &Task, condition: &str, expected: Option<u64>) -> StoreResult<()> {
        let item = item(t)?;
        retry_throttled(|| async {
            let mut req = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression(condition);
            if let Some(v) = expected {
                req = req.expression_attribute_values(":v", n(v as i64));
            }
            req.send().await.map(|_| ()).map_err(|e| classify(e, &self.table))
        })
        .await
    }
}

#[async_trait]
impl TaskStore for DynamoStore {
    async fn create_task(&self, task: &mut Task) -> StoreResult<()> {
        task.version = 1;
        self.put_task(task, "attribute_not_exists(pk)", None).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("task {} exists", task.id)),
            other => other,
        })
    }

    async fn get_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<Option<Task>> {
        self.get_item(task_pk(tenant, kind), id).await?.as_ref().map(decode).transpose()
    }

    async fn list_tasks(
        &self,
        tenant: &str,
        kind: TaskKind,
        page: PageRequest,
    ) -> StoreResult<(Vec<Task>, Option<Position>)> {
        let pk = task_pk(tenant, kind);
        let start = match &page.after {
            None => None,
            Some(p) => {
                let id = p.as_str().ok_or_else(|| StoreError::Invalid("bad task position".into()))?;
                Some(Item::from([("pk".to_owned(), s(&pk)), ("sk".to_owned(), s(id))]))
            }
        };
        let limit = page.limit.clamp(1, 1000);
        // Items can be large (checkpoints): a page may end before the limit.
        let query = |still: usize| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p")
                .expression_attribute_values(":p", s(&pk))
                .scan_index_forward(false)
                .limit(still as i32)
        };
        let tasks =
            self.read_pages(start, limit + 1, &mut ReadStats::default(), query, |i| decode(i).map(Some)).await?.items;
        Ok(crate::store::task_page(tasks, limit))
    }

    async fn save_task(&self, task: &mut Task) -> StoreResult<()> {
        let next = task.next_version();
        self.put_task(&next, "ver = :v", Some(task.version)).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("task {} changed or vanished", task.id)),
            other => other,
        })?;
        *task = next;
        Ok(())
    }

    async fn delete_task(&self, tenant: &str, kind: TaskKind, id: &str) -> StoreResult<()> {
        let pk = task_pk(tenant, kind);
        retry_throttled(|| async {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(&pk))
                .key("sk", s(id))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, &self.table))
        })
        .await
    }

    async fn active_tasks(&self, kind: TaskKind, limit: usize) -> StoreResult<Vec<Task>> {
        let query = |_| {
            self.client
                .query()
                .table_name(&self.table)
                .index_name("gsi11")
                .key_condition_expression("g11 = :k")
                .expression_attribute_values(":k", AttributeValue::S(active_key(kind)))
        };
        // The index is eventually consistent, so a copy may be stale; no re-read here: every use
        // of it (a claim, a re-queue) is a conditional save on the version it carries.
        let mut tasks =
            self.read_pages(None, limit, &mut ReadStats::default(), query, |i| decode(i).map(Some)).await?.items;
        tasks.truncate(limit);
        Ok(tasks)
    }
}
