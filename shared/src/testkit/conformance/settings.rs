//! Settings (small JSON documents per tenant) and the registry of tenants that have data.

use std::sync::Arc;

use serde_json::json;

use super::{FullStore, tenant};

pub async fn settings_are_per_tenant_and_overwritten(store: Arc<dyn FullStore>) {
    let (t1, t2) = (tenant("settings-a"), tenant("settings-b"));
    assert_eq!(store.get_setting(&t1, "retention").await.unwrap(), None);
    store.put_setting(&t1, "retention", &json!({"days": 30})).await.unwrap();
    let second = json!({"days": 90, "note": "Příliš žluťoučký kůň", "nested": [1, {"a": null}]});
    store.put_setting(&t1, "retention", &second).await.unwrap();
    store.put_setting(&t1, "other", &json!("x")).await.unwrap();
    assert_eq!(store.get_setting(&t1, "retention").await.unwrap(), Some(second), "the last write wins");
    assert_eq!(store.get_setting(&t1, "other").await.unwrap(), Some(json!("x")));
    assert_eq!(store.get_setting(&t2, "retention").await.unwrap(), None, "tenants never see each other's settings");
}

/// A swap stores its value only over what it read: a change made meanwhile is a conflict and
/// stays; a swap repeated after it was applied succeeds; of many swaps at once from the same
/// read, with different values, exactly one wins.
pub async fn settings_swap_only_over_what_was_read(store: Arc<dyn FullStore>) {
    use crate::store::StoreError;
    let t = tenant("settings-swap");
    let (a, b) =
        (json!({"days": {"audit": 30}, "legal_hold": false}), json!({"days": {"audit": 30}, "legal_hold": true}));
    store.swap_setting(&t, "retention", None, &a).await.unwrap();
    let again = store.swap_setting(&t, "retention", None, &b).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "stored meanwhile: {again:?}");
    // What get_setting gave is what a swap compares with.
    let read = store.get_setting(&t, "retention").await.unwrap().unwrap();
    store.swap_setting(&t, "retention", Some(&read), &b).await.unwrap();
    // The same swap again (a retry after its answer was lost) finds its own value: done.
    store.swap_setting(&t, "retention", Some(&read), &b).await.unwrap();
    let stale = store.swap_setting(&t, "retention", Some(&a), &json!({"days": {}})).await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(store.get_setting(&t, "retention").await.unwrap(), Some(b.clone()), "the conflict changed nothing");
    let swaps = (0..8).map(|i| {
        let (store, t, b) = (store.clone(), t.clone(), b.clone());
        tokio::spawn(async move { store.swap_setting(&t, "retention", Some(&b), &json!({"writer": i})).await })
    });
    let won = futures_util::future::join_all(swaps).await.into_iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    assert_eq!(won, 1, "one of eight swaps from the same read");
}

pub async fn tenants_are_registered_once(store: Arc<dyn FullStore>) {
    let (t1, t2) = (tenant("registry-a"), tenant("registry-b"));
    store.register_tenant(&t1).await.unwrap();
    store.register_tenant(&t1).await.unwrap();
    store.register_tenant(&t2).await.unwrap();
    let all = store.tenants().await.unwrap();
    for t in [&t1, &t2] {
        assert_eq!(all.iter().filter(|x| x == &t).count(), 1, "{t} listed once: {all:?}");
    }
}
