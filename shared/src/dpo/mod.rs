//! The DPO: subject index keys, personal-data search, report and erasure (seed 002).

pub mod erasure;
pub mod search;
pub mod subject;
