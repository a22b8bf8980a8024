//! The table definition (the same as infra/template.yaml), for tests, benches and dev set-up.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};

use super::{DynamoStore, classify};
use crate::store::StoreResult;

/// GSI name → (partition attribute, sort attribute).
pub const INDEXES: [(&str, &str); 11] = [
    ("g1", "tsid"),
    ("g2", "tsid"),
    ("g3", "tsid"),
    ("g4", "tsid"),
    ("g5", "tsid"),
    ("g6", "tsid"),
    ("g7", "tsid"),
    ("g8", "tsid"),
    ("g9", "dk"),
    ("g10", "os"),
    // Pending tasks (jobs): `ACTIVE#{kind}`, sorted by task id.
    ("g11", "tsid"),
];

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().expect("key schema")
}

fn attr(name: &str) -> AttributeDefinition {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .expect("attribute")
}

impl DynamoStore {
    /// Creates the table with every index (on-demand), as the SAM template does.
    pub async fn create_table(&self) -> StoreResult<()> {
        let mut names: Vec<&str> = vec!["pk", "sk", "tsid", "dk", "os"];
        names.extend(INDEXES.iter().map(|(g, _)| *g));
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash))
            .key_schema(key("sk", KeyType::Range))
            .set_attribute_definitions(Some(names.iter().map(|n| attr(n)).collect()));
        for (g, sort) in INDEXES {
            req = req.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(super::keys::gsi(g))
                    .key_schema(key(g, KeyType::Hash))
                    .key_schema(key(sort, KeyType::Range))
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()
                    .expect("index"),
            );
        }
        req.send().await.map_err(|e| classify(e, &self.table))?;
        Ok(())
    }
}
