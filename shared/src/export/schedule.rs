//! Scheduled exports: a cron expression or a fixed rate, and a window relative to each run
//! ("yesterday", "the last 7 days", …). The scheduler (the `scheduler` function in AWS, a loop
//! in `auditrail serve`) creates an export task for every schedule that is due; the schedule's
//! own conditional save makes sure one run creates one export, however many schedulers run.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{Compression, ExportRequest, Format};
use crate::crypto::{Sealer, seal_context};
use crate::error::{ApiError, FieldError};
use crate::jobs::{Task, TaskKind, TaskStatus};
use crate::query::{CursorKey, render_time};
use crate::record::{Actor, ActorKind, Record, ResultCode};
use crate::store::{RecordStore, SettingsStore, StoreError, StoreResult, TaskStore};

/// The window each run exports, relative to the run's scheduled time in the schedule's zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// The previous calendar day.
    Yesterday,
    #[serde(rename = "last_24h")]
    Last24h,
    #[serde(rename = "last_7d")]
    Last7d,
    #[serde(rename = "last_30d")]
    Last30d,
    /// The previous calendar month.
    PreviousMonth,
}

impl Window {
    /// The window of a run at `at`, in `tz`: always `from < to`. Calendar windows start at local
    /// midnight; where a zone skips midnight (America/Santiago, Africa/Cairo, … on the day
    /// clocks go forward) the day starts at its first instant that exists, and where midnight
    /// happens twice, at the first of them.
    pub fn bounds(self, at: DateTime<Utc>, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let local = at.with_timezone(&tz);
        let (from, to) = match self {
            Self::Yesterday => {
                let today = local.date_naive();
                (day_start(tz, today.pred_opt().unwrap_or(today)), day_start(tz, today))
            }
            Self::Last24h => (at - Duration::hours(24), at),
            Self::Last7d => (at - Duration::days(7), at),
            Self::Last30d => (at - Duration::days(30), at),
            Self::PreviousMonth => {
                let first = local.date_naive().with_day(1).unwrap_or(local.date_naive());
                let prev = first.pred_opt().unwrap_or(first).with_day(1).unwrap_or(first);
                (day_start(tz, prev), day_start(tz, first))
            }
        };
        // Only a calendar day that never happened in the zone (Pacific/Apia skipped 30 December
        // 2011) gives an empty window; its run exports the 24 hours before instead.
        if from < to { (from, to) } else { (to - Duration::hours(24), to) }
    }
}

/// The first instant of local date `day` in `tz`: its midnight (the earlier one when midnight
/// happens twice), or, when the zone skips midnight that day, the first minute after the gap.
fn day_start(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_time(NaiveTime::MIN);
    // Gaps last at most a day (Apia, 2011); a minute-by-minute search finds their end, which is
    // on a whole minute in every zone of the tz database since 1970.
    (0..=2 * 24 * 60)
        .find_map(|m| tz.from_local_datetime(&(midnight + Duration::minutes(m))).earliest())
        .map(|t| t.with_timezone(&Utc))
        // Unreachable with the tz database; the UTC reading of midnight keeps the order anyway.
        .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
}

/// `POST /v1/export-schedules`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    pub name: String,
    /// Five-field cron (minute hour day-of-month month day-of-week), in `tz`; e.g. `0 2 * * *`.
    pub cron: Option<String>,
    /// Or a fixed rate: `15m`, `6h`, `1d`, `7d` (at least 15 minutes).
    pub every: Option<String>,
    pub window: Window,
    /// As for `POST /v1/exports`, without `from`, `to` and `period` (they come from `window`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub filter: Map<String, Value>,
    #[serde(default)]
    pub format: Format,
    pub compression: Option<Compression>,
    pub password: Option<String>,
    /// Zone of the cron expression, the window and the exported times (default UTC).
    pub tz: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct ScheduleBody {
    pub name: String,
    pub cron: Option<String>,
    pub every_minutes: Option<i64>,
    pub window: Window,
    pub filter: Map<String, Value>,
    pub format: Format,
    pub compression: Option<Compression>,
    pub tz: Option<String>,
    pub sealed_password: Option<String>,
    pub next_run_at: DateTime<Utc>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_export_id: Option<String>,
    pub created_by: Actor,
}

impl ScheduleBody {
    fn zone(&self) -> Tz {
        self.tz.as_deref().and_then(|z| z.parse().ok()).unwrap_or(Tz::UTC)
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match (&self.cron, self.every_minutes) {
            (Some(c), _) => {
                let cron: croner::Cron = c.parse().ok()?;
                cron.find_next_occurrence(&after.with_timezone(&self.zone()), false).ok().map(|t| t.with_timezone(&Utc))
            }
            (None, Some(m)) => after.checked_add_signed(Duration::try_minutes(m)?),
            (None, None) => None,
        }
    }

    /// The export request of a run at `at`.
    fn request(&self, at: DateTime<Utc>, password: Option<String>) -> ExportRequest {
        let (from, to) = self.window.bounds(at, self.zone());
        let mut filter = self.filter.clone();
        filter.insert("from".into(), from.to_rfc3339().into());
        filter.insert("to".into(), to.to_rfc3339().into());
        ExportRequest { filter, format: self.format, compression: self.compression, password, tz: self.tz.clone() }
    }
}

/// `every` in whole minutes, from 15 minutes to 366 days.
fn parse_every(s: &str) -> Option<i64> {
    let d = crate::query::params::parse_duration(s)?;
    let whole_minutes = d.subsec_nanos() == 0 && d.num_seconds() % 60 == 0;
    let minutes = d.num_minutes();
    (whole_minutes && (15..=366 * 1440).contains(&minutes)).then_some(minutes)
}

/// Checks a schedule request (the filter as an export would be checked) and builds its body.
pub fn resolve(
    req: ScheduleRequest,
    tenant: &str,
    key: &CursorKey,
    sealer: &Sealer,
    id: &str,
    by: Actor,
    now: DateTime<Utc>,
) -> Result<ScheduleBody, ApiError> {
    let mut errs = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        errs.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    for k in ["from", "to", "period"] {
        if req.filter.contains_key(k) {
            errs.push(FieldError::new(format!("filter.{k}"), "a schedule's window comes from `window`"));
        }
    }
    let (cron, every_minutes) = match (&req.cron, &req.every) {
        (Some(c), None) => match c.parse::<croner::Cron>() {
            Ok(_) if c.split_whitespace().count() == 5 => (Some(c.trim().to_owned()), None),
            _ => {
                errs.push(FieldError::new("cron", "not a five-field cron expression (minute hour day month weekday)"));
                (None, None)
            }
        },
        (None, Some(e)) => match parse_every(e) {
            Some(m) => (None, Some(m)),
            None => {
                errs.push(FieldError::new("every", "a number and m, h or d, from 15m to 366d (e.g. `6h`, `1d`)"));
                (None, None)
            }
        },
        _ => {
            errs.push(FieldError::new("cron", "give exactly one of `cron` and `every`"));
            (None, None)
        }
    };
    let body = ScheduleBody {
        name,
        cron,
        every_minutes,
        window: req.window,
        filter: req.filter,
        format: req.format,
        compression: req.compression,
        tz: req.tz,
        sealed_password: None,
        next_run_at: now,
        last_run_at: None,
        last_export_id: None,
        created_by: by,
    };
    // The filter, password and zone are checked exactly as a run would check them.
    if let Err(ApiError::Invalid(e)) = super::resolve(body.request(now, req.password.clone()), tenant, key, now) {
        errs.extend(e);
    }
    if !errs.is_empty() {
        return Err(ApiError::Invalid(errs));
    }
    let mut body = body;
    body.next_run_at = body.next_after(now).ok_or_else(|| ApiError::field("cron", "never fires"))?;
    body.sealed_password = req.password.as_deref().map(|pw| sealer.seal(&seal_context(tenant, id), pw));
    Ok(body)
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ScheduleInfo {
    pub id: String,
    pub name: String,
    pub cron: Option<String>,
    pub every_minutes: Option<i64>,
    pub window: Window,
    #[schema(value_type = Object)]
    pub filter: Map<String, Value>,
    pub format: Format,
    pub compression: Option<Compression>,
    pub encrypted: bool,
    pub tz: Option<String>,
    pub next_run_at: String,
    pub last_run_at: Option<String>,
    pub last_export_id: Option<String>,
    pub created_by: Option<String>,
    /// `ACTIVE`, or `FAILED` when a run failed in a way that would repeat every time (e.g. the
    /// filter no longer resolves); see `error`. A failed schedule never runs again.
    pub status: TaskStatus,
    pub error: Option<String>,
}

impl ScheduleInfo {
    pub fn of(task: &Task) -> Result<Self, StoreError> {
        let b: ScheduleBody = task.body()?;
        let tz = Some(b.zone());
        Ok(Self {
            id: task.id.clone(),
            name: b.name.clone(),
            cron: b.cron.clone(),
            every_minutes: b.every_minutes,
            window: b.window,
            filter: b.filter.clone(),
            format: b.format,
            compression: b.compression,
            encrypted: b.sealed_password.is_some(),
            tz: b.tz.clone(),
            next_run_at: render_time(b.next_run_at, tz),
            last_run_at: b.last_run_at.map(|t| render_time(t, tz)),
            last_export_id: b.last_export_id.clone(),
            created_by: b.created_by.username.clone(),
            status: task.status,
            error: task.failure.clone(),
        })
    }
}

/// Creates the exports of every due schedule of every tenant; returns the export task ids.
pub async fn run_due(
    tasks: &dyn TaskStore,
    records: &dyn RecordStore,
    settings: &dyn SettingsStore,
    sealer: &Sealer,
    key: &CursorKey,
    now: DateTime<Utc>,
) -> StoreResult<Vec<String>> {
    let mut created = Vec::new();
    for tenant in settings.tenants().await? {
        let mut pages = crate::jobs::pages(tasks, &tenant, TaskKind::ExportSchedule);
        while let Some(page) = pages.next().await? {
            for t in page {
                match run_one(tasks, records, sealer, key, t, now).await {
                    Ok(Some(id)) => created.push(id),
                    Ok(None) => {}
                    Err(e) => tracing::error!(tenant = %tenant, error = %e, "scheduled export failed to start"),
                }
            }
        }
    }
    Ok(created)
}

async fn run_one(
    tasks: &dyn TaskStore,
    records: &dyn RecordStore,
    sealer: &Sealer,
    key: &CursorKey,
    mut schedule: Task,
    now: DateTime<Utc>,
) -> StoreResult<Option<String>> {
    let mut body: ScheduleBody = schedule.body()?;
    if schedule.status != TaskStatus::Active || body.next_run_at > now {
        return Ok(None);
    }
    let run_at = body.next_run_at;
    let tenant = schedule.tenant_id.clone();
    // Claim the run first: of several schedulers, only the one whose save wins creates it.
    let last_run_at = body.last_run_at;
    body.last_run_at = Some(run_at);
    body.next_run_at = body.next_after(now).unwrap_or(now + Duration::days(36500));
    schedule.set_body(&body);
    match tasks.save_task(&mut schedule).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    let system = Actor { kind: Some(ActorKind::System), username: Some("scheduler".into()), ..Default::default() };
    let started = async {
        let password = match &body.sealed_password {
            Some(s) => Some(
                sealer
                    .open(&seal_context(&tenant, &schedule.id), s)
                    .map_err(|e| StoreError::Corrupt(format!("the schedule's password cannot be opened: {e}")))?,
            ),
            None => None,
        };
        let resolved = super::resolve(body.request(run_at, password), &tenant, key, run_at).map_err(|e| {
            let why = match e {
                crate::error::ApiError::Invalid(errs) => {
                    errs.iter().map(|f| format!("{}: {}", f.field, f.reason)).collect::<Vec<_>>().join("; ")
                }
                other => other.to_string(),
            };
            StoreError::Invalid(format!("the schedule no longer resolves: {why}"))
        })?;
        super::create(tasks, sealer, &tenant, body.created_by.clone(), resolved, Some(schedule.id.clone())).await
    }
    .await;
    let task = match started {
        Ok(task) => task,
        // Give the run back, so the next round tries it again.
        Err(e) if e.is_transient() => {
            body.last_run_at = last_run_at;
            body.next_run_at = run_at;
            schedule.set_body(&body);
            if let Err(e) = tasks.save_task(&mut schedule).await {
                tracing::warn!(error = %e, schedule = %schedule.id, "could not give a failed run back");
            }
            return Err(e);
        }
        // It would fail the same way every time: the schedule ends FAILED with the reason, shown
        // in the schedule list and recorded, instead of a log line every round.
        Err(e) => {
            let reason = e.to_string();
            schedule.status = TaskStatus::Failed;
            schedule.failure = Some(reason.clone());
            tasks.save_task(&mut schedule).await?;
            let rec = Record::system(
                &tenant,
                "DATA_EXPORT_RUN_SCHEDULED",
                system,
                Some(ResultCode::Fail),
                json!({"schedule_id": schedule.id, "name": body.name, "run_at": run_at, "error": reason}),
            );
            records.append(&tenant, &[rec]).await?;
            return Err(e);
        }
    };
    body.last_export_id = Some(task.id.clone());
    schedule.set_body(&body);
    if let Err(e) = tasks.save_task(&mut schedule).await {
        tracing::warn!(error = %e, "could not note the last export of a schedule");
    }
    let rec = Record::system(
        &tenant,
        "DATA_EXPORT_RUN_SCHEDULED",
        system,
        Some(ResultCode::Ok),
        json!({"schedule_id": schedule.id, "name": body.name, "export_id": task.id, "run_at": run_at}),
    );
    records.append(&tenant, &[rec]).await?;
    Ok(Some(task.id))
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};
    use chrono_tz::Tz;
    use proptest::prelude::*;

    use super::{Window, day_start, parse_every};

    #[test]
    fn every_takes_whole_minutes_from_15m_to_366d() {
        for (s, m) in [("15m", 15), ("6h", 360), ("1d", 1440), ("7d", 10_080), ("366d", 527_040), (" 90m ", 90)] {
            assert_eq!(parse_every(s), Some(m), "{s}");
        }
        for s in ["14m", "367d", "901s", "15", "", "soon", "-1d", "999999999999d", "9223372036854775807h"] {
            assert_eq!(parse_every(s), None, "{s}");
        }
    }

    const WINDOWS: [Window; 5] =
        [Window::Yesterday, Window::Last24h, Window::Last7d, Window::Last30d, Window::PreviousMonth];

    /// Zones whose clocks jump over or repeat local midnight.
    const MIDNIGHT_GAPS: [&str; 6] =
        ["America/Santiago", "Africa/Cairo", "America/Havana", "Asia/Beirut", "America/Asuncion", "Pacific/Apia"];

    fn utc(s: &str) -> chrono::DateTime<Utc> {
        s.parse().unwrap()
    }

    /// What a user checks of a window: it is not empty, calendar windows start and end at the
    /// first instant of a local day, and the rolling ones are exactly as long as they say.
    fn check(w: Window, at: chrono::DateTime<Utc>, tz: Tz) {
        let (from, to) = w.bounds(at, tz);
        assert!(from < to, "{w:?} at {at} in {tz}: {from} .. {to}");
        match w {
            Window::Last24h => assert_eq!((to - from).num_hours(), 24),
            Window::Last7d => assert_eq!((to - from).num_days(), 7),
            Window::Last30d => assert_eq!((to - from).num_days(), 30),
            Window::Yesterday | Window::PreviousMonth => {
                assert!(to <= at, "{w:?} ends after the run: {to} > {at} in {tz}");
                let today = at.with_timezone(&tz).date_naive();
                let end_day = if w == Window::Yesterday { today } else { today.with_day0(0).unwrap() };
                assert_eq!(to, day_start(tz, end_day), "{w:?} at {at} in {tz}");
                // Every instant just before `to` is on an earlier local day.
                let before = (to - chrono::Duration::seconds(1)).with_timezone(&tz).date_naive();
                assert!(before < end_day, "{w:?} at {at} in {tz}: {before} is not before {end_day}");
            }
        }
    }

    use chrono::Datelike;

    #[test]
    fn santiago_day_without_midnight_starts_at_one() {
        // 2022-09-11: Chile went from 00:00 -04 straight to 01:00 -03.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let (from, to) = Window::Yesterday.bounds(utc("2022-09-12T12:00:00Z"), tz);
        assert_eq!(from, utc("2022-09-11T04:00:00Z"));
        assert_eq!(to, utc("2022-09-12T03:00:00Z"));
        let (from, to) = Window::Yesterday.bounds(utc("2022-09-11T12:00:00Z"), tz);
        assert_eq!((from, to), (utc("2022-09-10T04:00:00Z"), utc("2022-09-11T04:00:00Z")));
    }

    #[test]
    fn cairo_day_without_midnight_starts_at_one() {
        // 2023-04-28: Egypt went from 00:00 EET straight to 01:00 EEST.
        let tz: Tz = "Africa/Cairo".parse().unwrap();
        let (from, to) = Window::Yesterday.bounds(utc("2023-04-28T12:00:00Z"), tz);
        assert_eq!((from, to), (utc("2023-04-26T22:00:00Z"), utc("2023-04-27T22:00:00Z")));
        let (from, _) = Window::Yesterday.bounds(utc("2023-04-29T12:00:00Z"), tz);
        assert_eq!(from, utc("2023-04-27T22:00:00Z"));
    }

    #[test]
    fn every_window_is_valid_on_every_day_of_a_decade_in_zones_that_skip_midnight() {
        for zone in MIDNIGHT_GAPS {
            let tz: Tz = zone.parse().unwrap();
            let mut day = NaiveDate::from_ymd_opt(2010, 1, 1).unwrap();
            while day.year() < 2026 {
                for hour in [0, 1, 12, 23] {
                    let local = day.and_hms_opt(hour, 30, 0).unwrap();
                    let Some(at) = tz.from_local_datetime(&local).earliest() else { continue };
                    for w in WINDOWS {
                        check(w, at.with_timezone(&Utc), tz);
                    }
                }
                day = day.succ_opt().unwrap();
            }
        }
    }

    #[test]
    fn a_day_that_never_happened_still_gives_a_window() {
        // Samoa skipped 2011-12-30 altogether.
        let tz: Tz = "Pacific/Apia".parse().unwrap();
        let (from, to) = Window::Yesterday.bounds(utc("2011-12-31T00:00:00Z"), tz);
        assert!(from < to);
        assert_eq!((to - from).num_hours(), 24);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn any_window_in_any_zone_at_any_time_is_valid(
            zone in 0..chrono_tz::TZ_VARIANTS.len(),
            secs in 0i64..4_102_444_800, // 1970 .. 2100
            w in 0..WINDOWS.len(),
        ) {
            let tz = chrono_tz::TZ_VARIANTS[zone];
            let at = Utc.timestamp_opt(secs, 0).unwrap();
            check(WINDOWS[w], at, tz);
        }
    }
}
