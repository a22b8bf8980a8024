//! Auditrail's library: the record and its catalogue, validation, query planning, storage ports
//! and adapters, authentication, and the HTTP routers every binary mounts.

pub mod access;
#[cfg(feature = "mimalloc")]
pub mod allocator;
pub mod api;
pub mod app;
pub mod auth;
pub mod blob;
pub mod config;
pub mod crypto;
#[cfg(feature = "embedded")]
pub mod demo;
pub mod dpo;
pub mod error;
pub mod error_report;
pub mod export;
pub mod housekeeping;
pub mod ingest;
pub mod integrity;
pub mod jobs;
pub mod json_bounds;
pub mod keycloak;
#[cfg(feature = "keycloak-pull")]
pub mod keycloak_pull;
#[cfg(feature = "kms")]
pub mod kms;
pub mod merkle;
pub mod private_fs;
pub mod query;
pub mod record;
pub mod retention;
pub mod seal;
pub mod store;
pub mod stream_worker;
pub mod task;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
