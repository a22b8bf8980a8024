import { t } from "../i18n";
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
