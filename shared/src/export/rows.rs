//! Rows of an export: the columns each view shows (seed 004's activity log, seed 003's sign-in
//! log) as RFC 4180 CSV with a header row, or one JSON object per line; or OCSF events.

use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::Format;
use super::cells::write_row;
use crate::query::sign_in::{self, SignInRow};
use crate::query::{render_record, render_time};
use crate::record::{Record, ResultCode};

/// Which listing an export reproduces.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum ExportView {
    /// The activity log (`GET /v1/events`).
    Events,
    /// The sign-in log (`GET /v1/sign-ins`).
    SignIns,
}

impl ExportView {
    /// The view's wire name (serde's).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn header(self) -> &'static [&'static str] {
        match self {
            // Seed 004's columns first (date, activity, user full name, username, description,
            // result), then what an auditor needs to follow a record up.
            Self::Events => &[
                "Date",
                "Activity",
                "User full name",
                "Username",
                "Description",
                "Result",
                "Category",
                "User ID",
                "Employee ID",
                "Phase",
                "Correlation ID",
                "Session ID",
                "Source IP",
                "ID",
            ],
            // Seed 003's columns.
            Self::SignIns => &sign_in::CSV_HEADER,
        }
    }
}

/// Encodes records of one view into rows, reusing its buffers.
pub struct RowEncoder {
    view: ExportView,
    format: Format,
    tz: Option<Tz>,
    scratch: String,
}

impl RowEncoder {
    pub fn new(view: ExportView, format: Format, tz: Option<Tz>) -> Self {
        Self { view, format, tz, scratch: String::new() }
    }

    /// The header row (CSV) or nothing (JSON lines).
    pub fn header(&mut self, out: &mut Vec<u8>) {
        if self.format == Format::Csv {
            write_row(out, self.view.header());
        }
    }

    /// Appends one record's row to `out`.
    pub fn row(&mut self, r: &Record, out: &mut Vec<u8>) {
        match self.format {
            Format::Ocsf => {
                serde_json::to_writer(&mut *out, &super::ocsf::event(r)).expect("writes to memory");
                out.push(b'\n');
            }
            Format::Jsonl => {
                let v = match self.view {
                    ExportView::Events => render_record(r, self.tz),
                    // Through a JSON value, as before: the keys in the order a JSON object keeps.
                    ExportView::SignIns => {
                        serde_json::to_value(SignInRow::new(r, self.tz)).expect("a row is a JSON object")
                    }
                };
                serde_json::to_writer(&mut *out, &v).expect("writes to memory");
                out.push(b'\n');
            }
            Format::Csv => match self.view {
                ExportView::Events => {
                    let time = render_time(r.occurred_at, self.tz);
                    self.scratch.clear();
                    if let Some(d) = &r.description {
                        match d {
                            serde_json::Value::String(t) => self.scratch.push_str(t),
                            other => self.scratch.push_str(&other.to_string()),
                        }
                    }
                    let phase = r.phase.map(<&str>::from).unwrap_or("");
                    write_row(
                        out,
                        [
                            time.as_str(),
                            r.action.as_str(),
                            r.actor.full_name.as_deref().unwrap_or(""),
                            r.actor.username.as_deref().unwrap_or(""),
                            self.scratch.as_str(),
                            r.result.map(ResultCode::as_str).unwrap_or(""),
                            r.category.as_str(),
                            r.actor.user_id.as_deref().unwrap_or(""),
                            r.actor.employee_id.as_deref().unwrap_or(""),
                            phase,
                            r.correlation_id.as_deref().unwrap_or(""),
                            r.session_id.as_deref().unwrap_or(""),
                            r.source_ip.as_deref().unwrap_or(""),
                            r.id.as_str(),
                        ],
                    );
                }
                ExportView::SignIns => write_row(out, SignInRow::new(r, self.tz).csv_cells()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_round_trips_with_serdes_name() {
        for &v in <ExportView as strum::VariantArray>::VARIANTS {
            assert_eq!(serde_json::to_value(v).unwrap(), v.as_str());
            assert_eq!(v.as_str().parse::<ExportView>().unwrap(), v);
        }
        assert_eq!(ExportView::SignIns.as_str(), "sign-ins");
    }
}
