//! Tasks: fenced saves, listings, the active index, tenant and kind isolation.

use std::sync::Arc;

use serde_json::json;

use super::{FullStore, tenant};
use crate::store::{PageRequest, StoreError};

/// Task saves are fenced by version, listings are newest first and paged, the active index
/// holds exactly the pending tasks, and tenants never see each other's tasks.
pub async fn task_saves_are_fenced_and_listed(store: Arc<dyn FullStore>) {
    use crate::jobs::{Task, TaskKind, TaskStatus};
    let t = tenant("tasks");
    let mut made = Vec::new();
    for i in 0..3 {
        let mut task = Task::new(&t, TaskKind::Export, TaskStatus::Queued, &json!({"n": i}));
        store.create_task(&mut task).await.unwrap();
        assert_eq!(task.version, 1);
        made.push(task);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let mut dup = made[0].clone();
    assert!(matches!(store.create_task(&mut dup).await, Err(StoreError::Conflict(_))), "ids are unique");
    let mut a = store.get_task(&t, TaskKind::Export, &made[0].id).await.unwrap().unwrap();
    let mut b = a.clone();
    a.status = TaskStatus::Running;
    store.save_task(&mut a).await.unwrap();
    assert_eq!(a.version, 2);
    b.status = TaskStatus::Failed;
    assert!(matches!(store.save_task(&mut b).await, Err(StoreError::Conflict(_))), "a stale copy cannot win");
    assert_eq!(store.get_task(&t, TaskKind::Export, &a.id).await.unwrap().unwrap().status, TaskStatus::Running);

    let (p1, next) = store.list_tasks(&t, TaskKind::Export, PageRequest { limit: 2, after: None }).await.unwrap();
    let (p2, end) = store.list_tasks(&t, TaskKind::Export, PageRequest { limit: 2, after: next }).await.unwrap();
    let listed: Vec<String> = p1.iter().chain(&p2).map(|t| t.id.clone()).collect();
    let mut want: Vec<String> = made.iter().map(|t| t.id.clone()).collect();
    want.reverse();
    assert_eq!(listed, want, "newest first, every task once");
    assert!(end.is_none());

    a.status = TaskStatus::Succeeded;
    store.save_task(&mut a).await.unwrap();
    let active: Vec<String> = store
        .active_tasks(TaskKind::Export, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|x| x.tenant_id == t)
        .map(|x| x.id)
        .collect();
    assert_eq!(active, vec![made[1].id.clone(), made[2].id.clone()], "pending only, oldest first");
    assert!(store.get_task(&tenant("other"), TaskKind::Export, &a.id).await.unwrap().is_none());
    assert!(store.get_task(&t, TaskKind::Erasure, &a.id).await.unwrap().is_none(), "kinds are separate");
    store.delete_task(&t, TaskKind::Export, &a.id).await.unwrap();
    assert!(store.get_task(&t, TaskKind::Export, &a.id).await.unwrap().is_none());
}
