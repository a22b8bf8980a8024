// "New export task" (seed 003): the password rule checked as the user types, each violation named.
import { useState } from "preact/hooks";
import { t } from "../i18n";
import { api, ok } from "../api/client";
import { passwordViolations } from "../password";
import { ErrorBox } from "./common";

export function ExportDialog({ view, filter, tz, onClose, onCreated }: { view: "events" | "sign-ins"; filter: object; tz: string; onClose: () => void; onCreated?: () => void }) {
  const [pw, setPw] = useState("");
  const [touched, setTouched] = useState(false);
  const [format, setFormat] = useState<"csv" | "jsonl" | "ocsf">("csv");
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const violations = passwordViolations(pw);
  const submit = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    if (violations.length) return;
    try {
      // The list's query as the filter ("export what I see"); the zone goes beside it, not inside.
      const shown = Object.fromEntries(Object.entries(filter).filter(([k, v]) => k !== "tz" && v !== undefined && v !== ""));
      ok(await api.POST("/v1/exports", { body: { filter: { ...shown, view } as unknown as Record<string, never>, format, password: pw, tz, compression: "zip" } }));
      setDone(true);
      onCreated?.();
    } catch (x) {
      setError(x);
    }
  };
  return (
    <div class="backdrop">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="export-title">
      <form class="dialog-form" onSubmit={(e) => void submit(e)}>
        <h2 id="export-title">{t("btn.newExport")}</h2>
        {done ? (
          <p class="notice ok" role="status">
            {t("msg.exportCreated")}
          </p>
        ) : (
          <>
            <label class="field">
              {t("export.password")}
              <input
                name="password"
                type="password"
                autoFocus
                value={pw}
                aria-invalid={touched && violations.length > 0}
                aria-describedby="pw-rule pw-errors"
                onInput={(e) => {
                  setPw(e.currentTarget.value);
                  setTouched(true);
                }}
              />
            </label>
            <p id="pw-rule" class="hint">
              {t("export.password.rule")}
            </p>
            <ul id="pw-errors" class="violations" aria-live="polite">
              {touched && violations.map((v) => <li key={v.key}>{t(v.key, v.vars)}</li>)}
            </ul>
            <label class="field">
              {t("export.format")}
              <select value={format} onChange={(e) => setFormat(e.currentTarget.value as "csv" | "jsonl" | "ocsf")}>
                <option value="csv">CSV</option>
                <option value="jsonl">JSON Lines</option>
                <option value="ocsf">OCSF 1.1 (JSON Lines)</option>
              </select>
            </label>
          </>
        )}
        <ErrorBox error={error} />
        <div class="buttons">
          {!done && (
            <button type="submit" class="primary" disabled={touched && violations.length > 0}>
              {t("btn.ok")}
            </button>
          )}
          <button type="button" onClick={onClose}>
            {done ? t("btn.close") : t("btn.cancel")}
          </button>
        </div>
      </form>
      </div>
    </div>
  );
}
