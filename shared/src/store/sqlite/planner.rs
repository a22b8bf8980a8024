//! The query planner: a filter becomes one indexed query per combination of its multi-valued
//! equalities (actions × categories × the two user columns), each ordered by time then id and
//! limited to the page, so the first page never sorts a whole range; `records` merges them.

use rusqlite::types::Value as SqlValue;

use super::micros;
use crate::record::fold;
use crate::store::{EventFilter, Order};

/// One equality branch of a planned query.
pub(super) struct Branch {
    pub sql: String,
    pub params: Vec<SqlValue>,
    pub index: &'static str,
}

pub(super) fn plan(tenant: &str, f: &EventFilter, after: Option<(i64, String)>, limit: usize) -> Vec<Branch> {
    let desc = f.order == Order::NewestFirst;
    // Equalities shared by every branch.
    let mut common: Vec<(&'static str, SqlValue)> = Vec::new();
    if let Some(e) = &f.employee_id {
        common.push(("employee_id", e.clone().into()));
    }
    if let Some(r) = f.result {
        common.push(("result", r.as_str().to_owned().into()));
    }
    if let Some(s) = &f.session_id {
        common.push(("session_id", s.clone().into()));
    }
    if let Some(s) = &f.correlation_id {
        common.push(("correlation_id", s.clone().into()));
    }

    // Multi-valued attributes become one branch per value (cartesian product).
    let mut variants: Vec<Vec<(&'static str, SqlValue)>> = vec![Vec::new()];
    let mut fan = |col: &'static str, vals: Vec<SqlValue>| {
        if vals.is_empty() {
            return;
        }
        variants = variants
            .iter()
            .flat_map(|v| {
                vals.iter().map(move |val| {
                    let mut v = v.clone();
                    v.push((col, val.clone()));
                    v
                })
            })
            .collect();
    };
    fan("action", f.actions.iter().map(|a| SqlValue::from(a.clone())).collect());
    fan("category", f.categories.iter().map(|c| SqlValue::from(c.as_str().to_owned())).collect());
    if let Some(u) = &f.user {
        variants = variants
            .into_iter()
            .flat_map(|v| {
                let mut by_name = v.clone();
                by_name.push(("username", fold(u).into()));
                let mut by_id = v;
                by_id.push(("user_id", u.clone().into()));
                [by_name, by_id]
            })
            .collect();
    }

    let order = if desc { "DESC" } else { "ASC" };
    variants
        .into_iter()
        .map(|eqs| {
            let mut sql = String::from("SELECT ts, id, body FROM records WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3");
            let mut params: Vec<SqlValue> = vec![tenant.to_owned().into(), micros(f.from).into(), micros(f.to).into()];
            // The index SQLite is expected to use: the most selective equality, in this order.
            let index =
                ["session_id", "correlation_id", "employee_id", "user_id", "username", "action", "category", "result"]
                    .into_iter()
                    .find(|col| eqs.iter().chain(common.iter()).any(|(c, _)| c == col))
                    .unwrap_or("time");
            for (col, val) in eqs.into_iter().chain(common.iter().cloned()) {
                params.push(val);
                // A user id only identifies records that have no username (see `EventFilter`).
                let col = if col == "user_id" { "username IS NULL AND user_id" } else { col };
                sql.push_str(&format!(" AND {col} = ?{}", params.len()));
            }
            if let Some(t) = &f.text {
                params.push(fold(t).into());
                sql.push_str(&format!(
                    " AND instr(auditrail_fold(json_extract(body, '$.description')), ?{}) > 0",
                    params.len()
                ));
            }
            if let Some((ts, id)) = &after {
                params.push((*ts).into());
                params.push(id.clone().into());
                let op = if desc { "<" } else { ">" };
                sql.push_str(&format!(" AND (ts, id) {op} (?{}, ?{})", params.len() - 1, params.len()));
            }
            sql.push_str(&format!(" ORDER BY ts {order}, id {order} LIMIT {}", limit + 1));
            Branch { sql, params, index }
        })
        .collect()
}
