//! The sign-in log's view of a record (seed 003), in one place: operation labels both ways,
//! result labels, and the row that `GET /v1/sign-ins`, its JSON-lines export and its CSV export
//! all show.

use chrono_tz::Tz;
use serde::Serialize;
use utoipa::ToSchema;

use super::render_time;
use crate::record::{Record, ResultCode};

/// The operations of the sign-in log, as the filter names them and the rows show them.
pub const OPERATIONS: [&str; 4] = ["Sign In", "Sign Out", "Forcible Sign In", "Forcible Sign Out"];

/// The columns of a sign-in CSV export (seed 003's), in the order `SignInRow::csv_cells` gives.
pub const CSV_HEADER: [&str; 8] =
    ["Account", "Employee ID", "Operation", "Time", "Result", "Sign-in IP", "Failure Reason Code", "ID"];

/// The operation label (seed 003) a row shows for an action.
pub fn operation_label(action: &str) -> &'static str {
    match action {
        "FORCIBLE_SIGN_IN" => "Forcible Sign In",
        "FORCIBLE_SIGN_OUT" => "Forcible Sign Out",
        "SIGN_OUT" | "LOGOUT" | "LOGOUT_ERROR" | "USER_LOGOUT" => "Sign Out",
        _ => "Sign In",
    }
}

/// The actions an operation name stands for (any case; `_` or `-` for spaces), the filter's
/// side of `operation_label`.
pub fn operation_actions(s: &str) -> Option<&'static [&'static str]> {
    Some(match s.to_ascii_lowercase().replace(['_', '-'], " ").as_str() {
        "sign in" => &["SIGN_IN", "LOGIN", "LOGIN_ERROR", "USER_LOGIN", "LOGGED_IN"],
        "sign out" => &["SIGN_OUT", "LOGOUT", "LOGOUT_ERROR", "USER_LOGOUT"],
        "forcible sign in" => &["FORCIBLE_SIGN_IN"],
        "forcible sign out" => &["FORCIBLE_SIGN_OUT"],
        _ => return None,
    })
}

/// The result label a row shows: `Successful` for OK, `Failed` for anything else.
pub fn result_label(r: Option<ResultCode>) -> &'static str {
    match r {
        Some(ResultCode::Ok) => "Successful",
        _ => "Failed",
    }
}

/// The result a label (any case) stands for: the other way of `result_label`.
pub fn result_from_label(s: &str) -> Option<ResultCode> {
    match s.to_ascii_lowercase().as_str() {
        "successful" | "success" => Some(ResultCode::Ok),
        "failed" | "failure" => Some(ResultCode::Fail),
        _ => None,
    }
}

/// One row of the sign-in log, with the columns of seed 003.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInRow {
    pub id: String,
    pub account: Option<String>,
    pub employee_id: Option<String>,
    /// Sign In, Sign Out, Forcible Sign In or Forcible Sign Out.
    pub operation: &'static str,
    pub action: String,
    pub time: String,
    /// Successful or Failed.
    pub result: &'static str,
    pub sign_in_ip: Option<String>,
    pub failure_reason_code: Option<String>,
}

impl SignInRow {
    /// A record's row, its time in the viewer's zone.
    pub fn new(r: &Record, tz: Option<Tz>) -> Self {
        Self {
            id: r.id.clone(),
            account: r.actor.username.clone(),
            employee_id: r.actor.employee_id.clone(),
            operation: operation_label(&r.action),
            action: r.action.clone(),
            time: render_time(r.occurred_at, tz),
            result: result_label(r.result),
            sign_in_ip: r.source_ip.clone(),
            failure_reason_code: r.failure_reason_code.clone(),
        }
    }

    /// The row's CSV cells, in `CSV_HEADER`'s order (absent values empty).
    pub fn csv_cells(&self) -> [&str; 8] {
        fn s(o: &Option<String>) -> &str {
            o.as_deref().unwrap_or("")
        }
        [
            s(&self.account),
            s(&self.employee_id),
            self.operation,
            self.time.as_str(),
            self.result,
            s(&self.sign_in_ip),
            s(&self.failure_reason_code),
            self.id.as_str(),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::catalogue;

    #[test]
    fn operations_cover_every_catalogue_sign_in_action_once() {
        for a in catalogue::sign_in_actions() {
            let owners: Vec<&str> =
                OPERATIONS.into_iter().filter(|o| operation_actions(o).unwrap().contains(a)).collect();
            assert_eq!(owners.len(), 1, "{a} is under {owners:?}");
            assert_eq!(owners[0], operation_label(a), "{a}: the row's label and the filter disagree");
        }
        for o in OPERATIONS {
            assert!(operation_actions(o).unwrap().iter().all(|a| catalogue::is_sign_in(a)), "{o}");
        }
    }

    #[test]
    fn result_labels_both_ways() {
        for r in [Some(ResultCode::Ok), Some(ResultCode::Fail)] {
            assert_eq!(result_from_label(result_label(r)), r);
        }
        assert_eq!(result_label(None), "Failed");
        assert_eq!(result_label(Some(ResultCode::Unauthorized)), "Failed");
    }
}
