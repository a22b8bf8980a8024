//! The conformance suite every adapter must pass: the same test code, run against the embedded
//! store (SQLite, files) and against DynamoDB and S3 (on the moto emulator). One file per port:
//! `records`, `pairs` (request pairs), `settings`, `tasks`, `subjects`, `blobs`. Each check builds
//! its own tenant, so the checks can run in parallel on one store.
//!
//! In a back end's test module, `conformance_tests!(store: factory)` (the factory an async fn
//! returning `Arc<dyn FullStore>`; it may hand out one shared store) or `conformance_tests!(blobs:
//! factory)` (returning `Arc<dyn BlobStore>`) expands to one `#[tokio::test]` per check.
//!
//! Every `pub async fn` of a check file is a check, and the macro's lists are the one place that
//! names them: a listed check that does not exist does not compile, and
//! `every_check_written_is_listed` fails for a check that is written but not listed.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::json;

use crate::record::{Actor, Category, Record, ResultCode};
use crate::store::{EventFilter, PageRequest, RecordStore, RequestStore, SettingsStore, SubjectStore, TaskStore};

pub mod blobs;
pub mod pairs;
pub mod records;
pub mod settings;
pub mod subjects;
pub mod tasks;

/// A unique tenant per check, so checks do not see each other's records.
pub fn tenant(check: &str) -> String {
    format!("{check}-{}", ulid::Ulid::generate().to_string().to_lowercase())
}

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 8, 0, 0).unwrap()
}

/// A plain audit record at `t0 + minutes`.
pub fn rec(tenant: &str, id: &str, minutes: i64, action: &str, user: &str, result: ResultCode) -> Record {
    let mut r = Record::system(
        tenant,
        action,
        Actor { user_id: Some(format!("uid-{user}")), username: Some(user.to_owned()), ..Default::default() },
        Some(result),
        json!(format!("{action} by {user}")),
    );
    r.id = id.to_owned();
    r.occurred_at = t0() + Duration::minutes(minutes);
    r.category = crate::record::lookup(action).map(|d| d.category).unwrap_or(Category::Audit);
    r
}

pub(crate) fn window() -> EventFilter {
    EventFilter::window(t0() - Duration::days(1), t0() + Duration::days(30))
}

pub(crate) async fn all(store: &dyn RecordStore, tenant: &str, f: &EventFilter, limit: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.query(tenant, f, PageRequest { limit, after }).await.expect("query");
        assert!(page.records.len() <= limit, "page larger than its limit");
        out.extend(page.records);
        match page.next {
            Some(p) => after = Some(p),
            None => return out,
        }
    }
}

pub(crate) fn ids(rs: &[Record]) -> Vec<&str> {
    rs.iter().map(|r| r.id.as_str()).collect()
}

/// Everything a full record back end provides (the `store:` factory returns one).
pub trait FullStore: RecordStore + RequestStore + SettingsStore + TaskStore + SubjectStore {}
impl<T: RecordStore + RequestStore + SettingsStore + TaskStore + SubjectStore> FullStore for T {}

/// `conformance_tests!(store: factory)` / `conformance_tests!(blobs: factory)`: one
/// `#[tokio::test]` per check of the suite, each calling `factory().await` for its store.
///
/// The two lists below are the only place the checks are named; keep them in file order.
#[macro_export]
macro_rules! conformance_tests {
    (store: $factory:path) => {
        $crate::conformance_tests!(@store tests $factory);
    };
    (blobs: $factory:path) => {
        $crate::conformance_tests!(@blobs tests $factory);
    };
    (@store $($how:tt)*) => {
        $crate::conformance_tests! {@emit [$($how)*]
            records::replayed_ids_are_stored_once,
            records::tenants_never_see_each_other,
            records::newest_first_paging_is_complete_and_stable,
            records::every_filter_matches_the_reference,
            records::time_window_is_half_open,
            records::non_ascii_text_folds_alike,
            pairs::request_pairs_are_joined_at_write_time,
            pairs::slow_and_unfinished_pairs_are_listed_and_paged,
            settings::settings_are_per_tenant_and_overwritten,
            settings::settings_swap_only_over_what_was_read,
            settings::tenants_are_registered_once,
            tasks::task_saves_are_fenced_and_listed,
            subjects::subject_index_follows_its_records,
            subjects::a_refused_duplicate_leaves_no_subject_entry}
    };
    (@blobs $($how:tt)*) => {
        $crate::conformance_tests! {@emit [$($how)*]
            blobs::blobs_round_trip_and_stream,
            blobs::blob_keys_stay_under_their_tenant,
            blobs::multipart_uploads_complete_in_part_order,
            blobs::a_failed_or_aborted_upload_leaves_nothing,
            blobs::urls_where_the_back_end_has_them}
    };
    (@emit [names] $($port:ident :: $check:ident),*) => {
        [$(concat!(stringify!($port), "::", stringify!($check))),*]
    };
    (@emit [tests $factory:path] $($port:ident :: $check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::testkit::conformance::$port::$check($factory().await).await;
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    /// A check that is written but not listed would never run: every `pub async fn` of every file
    /// of `conformance/` must be in one of the macro's lists (and every listed one exists, or the
    /// back ends' test modules do not compile).
    #[test]
    fn every_check_written_is_listed() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/testkit/conformance");
        let mut written = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let port = path.file_stem().unwrap().to_string_lossy().into_owned();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(rest) = line.trim_start().strip_prefix("pub async fn ") {
                    let name = rest.split(['(', '<']).next().unwrap().trim();
                    written.push(format!("{port}::{name}"));
                }
            }
        }
        let mut listed: Vec<String> = crate::conformance_tests!(@store names)
            .into_iter()
            .chain(crate::conformance_tests!(@blobs names))
            .map(str::to_owned)
            .collect();
        written.sort();
        listed.sort();
        assert!(written.len() >= 17, "the scan found too few checks: {written:?}");
        assert_eq!(written, listed, "written (left) vs listed in `conformance_tests!` (right)");
    }
}
