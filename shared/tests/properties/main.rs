//! Property tests over every input parser (issue #13, "close the class"): whatever a client
//! sends, a parser answers a value or a problem that names a field and a reason — never a panic —
//! and round trips hold where there is one. Inputs are arbitrary garbage and near-valid shapes
//! with one part mutated (huge and negative numbers, empty strings, non-ASCII, control
//! characters, surrounding whitespace). Case counts stay modest so the suite stays fast.

mod common;
mod cursor;
mod dpo;
mod error_reports;
mod exports;
mod ingest;
mod query;
mod records;
mod schedules;
mod tokens;
