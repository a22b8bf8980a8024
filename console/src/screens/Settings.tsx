// Settings (tenant admins): retention days per category, how long export archives stay, the
// legal hold, and what agents may do with the sign-in log. Every change is shown old → new and
// confirmed before it is sent; the API's field errors appear next to their field.
import { useEffect, useState } from "preact/hooks";
import { t, type Key } from "../i18n";
import { api, ok, ApiProblem, type Schemas } from "../api/client";
import { CATEGORIES } from "../filters";
import { ErrorBox } from "./common";

type Retention = Schemas["Retention"];
type Access = Schemas["Access"];
type KeycloakSettings = Schemas["KeycloakSettings"];

interface Change {
  what: string;
  from: string;
  to: string;
}

function ConfirmDialog({ title, changes, onConfirm, onCancel }: { title: string; changes: Change[]; onConfirm: () => void; onCancel: () => void }) {
  return (
    <div class="backdrop">
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-title">
        <h2 id="confirm-title">{title}</h2>
        <ul class="changes">
          {changes.map((c) => (
            <li key={c.what}>
              {c.what}: <del>{c.from}</del> → <ins>{c.to}</ins>
            </li>
          ))}
        </ul>
        <div class="buttons">
          <button type="button" class="primary" autoFocus onClick={onConfirm}>
            {t("settings.confirm")}
          </button>
          <button type="button" onClick={onCancel}>
            {t("btn.cancel")}
          </button>
        </div>
      </div>
    </div>
  );
}

const yesNo = (b: boolean | undefined) => t(b ? "settings.yes" : "settings.no");

function FieldError({ id, error, field }: { id: string; error: unknown; field: string }) {
  const reason = error instanceof ApiProblem ? error.about(field) : undefined;
  return reason ? (
    <span id={id} class="field-error" role="alert">
      {reason}
    </span>
  ) : null;
}

/** One settings document: as saved, as edited, and the confirm-then-save round. */
function useSetting<T>(load: () => Promise<T>, store: (v: T) => Promise<T>) {
  const [saved, setSaved] = useState<T | null>(null);
  const [form, setForm] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState(false);
  const [done, setDone] = useState(false);
  const took = (v: T) => {
    setSaved(v);
    setForm(v);
  };
  useEffect(() => {
    load().then(took).catch(setError);
  }, []);
  const send = () => {
    setConfirm(false);
    if (!form) return;
    store(form)
      .then((v) => {
        took(v);
        setError(null);
        setDone(true);
      })
      .catch(setError);
  };
  return { saved, form, setForm, error, setError, confirm, setConfirm, done, setDone, send };
}

type Setting<T> = ReturnType<typeof useSetting<T>>;

/** The form around a setting's fields: its title, the API's refusal, Save (after the old → new
 * confirmation) and Reset. */
function SettingsForm<T>({ id, title, setting, changes, children }: { id: string; title: string; setting: Setting<T>; changes: Change[]; children: preact.ComponentChildren }) {
  const { error, done, confirm } = setting;
  return (
    <form
      class="settings"
      aria-labelledby={id}
      onSubmit={(e) => {
        e.preventDefault();
        setting.setDone(false);
        if (changes.length) setting.setConfirm(true);
      }}
    >
      <h2 id={id}>{title}</h2>
      {children}
      {error instanceof ApiProblem && error.errors.length ? (
        <p class="notice error" role="alert">
          {error.detail}
        </p>
      ) : (
        <ErrorBox error={error} />
      )}
      {done && (
        <p class="notice ok" role="status">
          {t("settings.saved")}
        </p>
      )}
      <div class="buttons">
        <button type="submit" class="primary" disabled={!changes.length}>
          {t("settings.save")}
        </button>
        <button type="button" disabled={!changes.length} onClick={() => (setting.setForm(setting.saved), setting.setError(null))}>
          {t("btn.reset")}
        </button>
      </div>
      {confirm && <ConfirmDialog title={t("settings.confirm.title")} changes={changes} onConfirm={setting.send} onCancel={() => setting.setConfirm(false)} />}
    </form>
  );
}

function RetentionForm() {
  const setting = useSetting<Retention>(
    async () => ok(await api.GET("/v1/settings/retention")),
    async (v) => ok(await api.PUT("/v1/settings/retention", { body: { days: v.days, export_archive_days: v.export_archive_days, legal_hold: v.legal_hold } })),
  );
  const { saved, form, setForm, error } = setting;
  if (!form || !saved) return <ErrorBox error={error} />;
  const changes: Change[] = [
    ...CATEGORIES.filter((c) => form.days[c] !== saved.days[c]).map((c) => ({ what: t(`cat.${c}` as Key), from: String(saved.days[c] ?? ""), to: String(form.days[c] ?? "") })),
    ...(form.export_archive_days !== saved.export_archive_days ? [{ what: t("settings.archiveDays"), from: String(saved.export_archive_days), to: String(form.export_archive_days) }] : []),
    ...(form.legal_hold !== saved.legal_hold ? [{ what: t("settings.legalHold"), from: yesNo(saved.legal_hold), to: yesNo(form.legal_hold) }] : []),
  ];
  const num = (v: string) => (v.trim() === "" ? Number.NaN : Number(v));
  const invalid = (field: string) => error instanceof ApiProblem && error.about(field) !== undefined;
  return (
    <SettingsForm id="retention-title" title={t("settings.retention")} setting={setting} changes={changes}>
      <p class="hint">{t("settings.retention.hint")}</p>
      <table class="tasks">
        <thead>
          <tr>
            <th scope="col">{t("col.category")}</th>
            <th scope="col">{t("settings.days")}</th>
          </tr>
        </thead>
        <tbody>
          {CATEGORIES.map((c) => (
            <tr key={c}>
              <th scope="row">
                <label for={`days-${c}`}>{t(`cat.${c}` as Key)}</label>
              </th>
              <td>
                <input
                  id={`days-${c}`}
                  name={`days.${c}`}
                  type="number"
                  step={1}
                  value={Number.isNaN(form.days[c]) ? "" : (form.days[c] ?? "")}
                  aria-invalid={invalid(`days.${c}`)}
                  aria-describedby={`days-${c}-error`}
                  onInput={(e) => setForm({ ...form, days: { ...form.days, [c]: num(e.currentTarget.value) } })}
                />{" "}
                <FieldError id={`days-${c}-error`} error={error} field={`days.${c}`} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <label class="field">
        {t("settings.archiveDays")}
        <input
          name="export_archive_days"
          type="number"
          step={1}
          value={Number.isNaN(form.export_archive_days) ? "" : form.export_archive_days}
          aria-invalid={invalid("export_archive_days")}
          aria-describedby="archive-error"
          onInput={(e) => setForm({ ...form, export_archive_days: num(e.currentTarget.value) })}
        />
        <FieldError id="archive-error" error={error} field="export_archive_days" />
      </label>
      <label class="check">
        <input name="legal_hold" type="checkbox" checked={form.legal_hold} onChange={(e) => setForm({ ...form, legal_hold: e.currentTarget.checked })} />
        {t("settings.legalHold")}
      </label>
      <p class="hint">{t("settings.legalHold.hint")}</p>
    </SettingsForm>
  );
}

function AccessForm() {
  const setting = useSetting<Access>(
    async () => ok(await api.GET("/v1/settings/access")),
    async (v) => ok(await api.PUT("/v1/settings/access", { body: v })),
  );
  const { saved, form, setForm, error } = setting;
  if (!form || !saved) return <ErrorBox error={error} />;
  const grant = (a: Access) => a.agent_sign_in_log ?? {};
  const changes: Change[] = (["read", "export"] as const)
    .filter((k) => !!grant(form)[k] !== !!grant(saved)[k])
    .map((k) => ({ what: t(k === "read" ? "settings.agentsRead" : "settings.agentsExport"), from: yesNo(grant(saved)[k]), to: yesNo(grant(form)[k]) }));
  return (
    <SettingsForm id="access-title" title={t("settings.access")} setting={setting} changes={changes}>
      {(["read", "export"] as const).map((k) => (
        <label class="check" key={k}>
          <input
            name={`agent_sign_in_log.${k}`}
            type="checkbox"
            checked={!!grant(form)[k]}
            onChange={(e) => setForm({ ...form, agent_sign_in_log: { ...grant(form), [k]: e.currentTarget.checked } })}
          />
          {t(k === "read" ? "settings.agentsRead" : "settings.agentsExport")}
        </label>
      ))}
    </SettingsForm>
  );
}

function KeycloakForm() {
  const setting = useSetting<KeycloakSettings>(
    async () => ok(await api.GET("/v1/settings/keycloak")),
    async (v) => ok(await api.PUT("/v1/settings/keycloak", { body: v })),
  );
  const { saved, form, setForm, error } = setting;
  if (!form || !saved) return <ErrorBox error={error} />;
  const what = t("settings.keycloakRepresentation");
  const changes: Change[] =
    !!form.store_representation !== !!saved.store_representation
      ? [{ what, from: yesNo(saved.store_representation), to: yesNo(form.store_representation) }]
      : [];
  return (
    <SettingsForm id="keycloak-title" title={t("settings.keycloak")} setting={setting} changes={changes}>
      <label class="check">
        <input
          name="store_representation"
          type="checkbox"
          checked={!!form.store_representation}
          onChange={(e) => setForm({ ...form, store_representation: e.currentTarget.checked })}
        />
        {what}
      </label>
    </SettingsForm>
  );
}

export function Settings() {
  return (
    <section class="screen">
      <h1>{t("nav.settings")}</h1>
      <RetentionForm />
      <AccessForm />
      <KeycloakForm />
    </section>
  );
}
