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
