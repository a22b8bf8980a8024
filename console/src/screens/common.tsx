import { t, type Key } from "../i18n";
import { ApiProblem } from "../api/client";

export function Forbidden() {
  return (
    <div class="notice error" role="alert">
      {t("msg.forbidden")}
    </div>
  );
}

/** An API failure as a message: a 403 is the role message, never a blank page. */
export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiProblem && error.status === 403) return <Forbidden />;
  return (
    <div class="notice error" role="alert">
      {t("msg.error")}: {error instanceof Error ? error.message : String(error)}
    </div>
  );
}

import { ZONES } from "../zone";

/** The time zone the screen shows times in, named and switchable. */
export function ZonePicker({ value, onChange }: { value: string; onChange: (z: string) => void }) {
  return (
    <label class="field">
      {t("filter.zone")}
      <select value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        {ZONES.map((z) => (
          <option key={z} value={z}>
            {z}
          </option>
        ))}
      </select>
    </label>
  );
}

/** The period of a log's filter: a preset or, for "custom", a from–to range (the viewer's time). */
export function PeriodFields<P extends string>({
  periods,
  value,
  onPeriod,
  from,
  to,
  onRange,
}: {
  periods: readonly (readonly [P, Key])[];
  value: P;
  onPeriod: (p: P) => void;
  from: string;
  to: string;
  onRange: (from: string, to: string) => void;
}) {
  return (
    <>
      <label class="field">
        {t("filter.period")}
        <select name="period" value={value} onChange={(e) => onPeriod(e.currentTarget.value as P)}>
          {periods.map(([v, k]) => (
            <option key={v} value={v}>
              {t(k)}
            </option>
          ))}
        </select>
      </label>
      {value === "custom" && (
        <>
          <label class="field">
            {t("filter.from")}
            <input type="datetime-local" name="from" value={from} onChange={(e) => onRange(e.currentTarget.value, to)} />
          </label>
          <label class="field">
            {t("filter.to")}
            <input type="datetime-local" name="to" value={to} onChange={(e) => onRange(from, e.currentTarget.value)} />
          </label>
        </>
      )}
    </>
  );
}
