// The DPO tool (seed 002), for the `dpo` role only: search by e-mail, phone (with how many of its
// last digits to use, at least 3), first + last name together, and dates (criteria are ORed); the
// "narrow your search" advice above 1000 hits with the choice to go on; result groups with
// per-item and per-group selection; details with attachment downloads; the CSV report of what is
// selected; and erasure, confirmed with its counts, followed to its outcome.
// The criteria are personal data: they stay in memory and never go into the URL or history.
import { useEffect, useState } from "preact/hooks";
import { t, lang, type Key } from "../i18n";
import { api, ok, ApiProblem, type Schemas } from "../api/client";
import { downloadPath, saveFile } from "../download";
import { zone, formatTime } from "../zone";
import { ErrorBox } from "./common";
import { EMPTY, formProblems, phoneDigits, searchRequest, type Form } from "../dpo";

type SearchRequest = Schemas["SearchRequest"];
type Group = Schemas["Group"];
type Erasure = Schemas["ErasureInfo"];

/** The seed's order of the result groups, then audit records and error reports. */
const GROUP_ORDER: Group[] = ["contacts", "directory_entries", "campaign_customers", "consents", "audit_records", "error_reports"];

interface Attachment {
  name: string;
  size: number;
  kind?: string;
  content_type?: string;
  download: string;
}
interface Hit {
  id: string;
  group: Group;
  time: string;
  record: Schemas["Record"];
  attachments: Attachment[];
}

function who(h: Hit): string {
  const s = h.record.subject;
  const name = [s?.first_name, s?.last_name].filter(Boolean).join(" ");
  return [name, ...(s?.emails ?? []), ...(s?.phones ?? [])].filter(Boolean).join(" · ");
}

function Details({ hit, onClose, onError }: { hit: Hit; onClose: () => void; onError: (e: unknown) => void }) {
  return (
    <aside class="panel" aria-label={t("dpo.details", { id: hit.id })}>
      <h2>{t("dpo.details", { id: hit.id })}</h2>
      {hit.attachments.length > 0 && (
        <ul>
          {hit.attachments.map((a) => (
            <li key={a.download}>
              {a.name} ({a.size} B){" "}
              <button type="button" onClick={() => void downloadPath(a.download, a.name).catch(onError)}>
                {t(a.kind === "recording" ? "dpo.listen" : "dpo.show")}
              </button>
            </li>
          ))}
        </ul>
      )}
      <pre>{JSON.stringify(hit.record, null, 2)}</pre>
      <button type="button" onClick={onClose}>
        {t("btn.close")}
      </button>
    </aside>
  );
}

export function Dpo() {
  const [form, setForm] = useState<Form>(EMPTY);
  const [searched, setSearched] = useState<SearchRequest | null>(null);
  const [groups, setGroups] = useState<[Group, Hit[]][]>([]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [large, setLarge] = useState<{ count: number | null; advice: number; hard: number } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [loading, setLoading] = useState(false);
  const [open, setOpen] = useState<Hit | null>(null);
  const [confirm, setConfirm] = useState(false);
  const [erasure, setErasure] = useState<Erasure | null>(null);
  const problems = formProblems(form);
  const blocked = Object.keys(problems).length > 0;

  const search = (acceptLarge: boolean) => {
    const req = searchRequest(form, acceptLarge);
    setLoading(true);
    setError(null);
    setLarge(null);
    setErasure(null);
    api
      .POST("/v1/dpo/searches", { body: req })
      .then((r) => {
        const res = ok(r);
        const gs = (Object.entries(res.groups as Record<string, Hit[]>).filter(([, hits]) => hits.length > 0) as [Group, Hit[]][]).sort(
          ([a], [b]) => GROUP_ORDER.indexOf(a) - GROUP_ORDER.indexOf(b),
        );
        setGroups(gs);
        setSelected(new Set(gs.flatMap(([, hits]) => hits.map((h) => h.id))));
        setSearched(req);
      })
      .catch((e: unknown) => {
        if (e instanceof ApiProblem && e.status === 422) {
          setLarge({ count: (e.body.count as number | null) ?? null, advice: Number(e.body.advice_limit ?? 1000), hard: Number(e.body.hard_limit ?? 10000) });
          setGroups([]);
          setSearched(null);
        } else setError(e);
      })
      .finally(() => setLoading(false));
  };

  // Follows an erasure to its outcome.
  useEffect(() => {
    if (!erasure || erasure.status === "SUCCEEDED" || erasure.status === "FAILED") return;
    const h = setTimeout(() => {
      api
        .GET("/v1/dpo/erasures/{id}", { params: { path: { id: erasure.id } } })
        .then((r) => setErasure(ok(r)))
        .catch(setError);
    }, 500);
    return () => clearTimeout(h);
  }, [erasure]);

  const all = groups.flatMap(([, hits]) => hits);
  const chosen = all.filter((h) => selected.has(h.id));
  const countsOf = (hits: Hit[]) => groups.map(([g]) => [g, hits.filter((h) => h.group === g).length] as const).filter(([, n]) => n > 0);
  const toggle = (ids: string[], on: boolean) =>
    setSelected((old) => {
      const s = new Set(old);
      for (const id of ids) on ? s.add(id) : s.delete(id);
      return s;
    });

  const report = () => {
    if (!searched) return;
    const excludeGroups = groups.filter(([, hits]) => hits.every((h) => !selected.has(h.id))).map(([g]) => g);
    const excludeItems = all.filter((h) => !selected.has(h.id) && !excludeGroups.includes(h.group)).map((h) => h.id);
    api
      .POST("/v1/dpo/reports", { body: { search: { ...searched }, exclude_groups: excludeGroups, exclude_items: excludeItems }, parseAs: "blob" })
      .then((r) => saveFile(ok(r) as unknown as Blob, "dpo-report.csv"))
      .catch(setError);
  };

  const erase = () => {
    setConfirm(false);
    api
      .POST("/v1/dpo/erasures", { body: { items: chosen.map((h) => h.id) } })
      .then((r) => setErasure(ok(r)))
      .catch(setError);
  };

  const field = (name: keyof Form, label: Key, type: "text" | "email" | "tel" | "number" | "date" = "text") => (
    <label class="field">
      {t(label)}
      <input
        name={name}
        // (Preact types `type` as a union per input kind; one helper serves several kinds.)
        type={type as "text"}
        autoComplete="off"
        value={form[name]}
        aria-invalid={!!problems[name]}
        aria-describedby={`dpo-${name}-rule`}
        onInput={(e) => setForm({ ...form, [name]: e.currentTarget.value })}
      />
      <span id={`dpo-${name}-rule`} class="field-error">
        {problems[name] ? t(problems[name]!) : error instanceof ApiProblem ? (error.about(apiField(name)) ?? "") : ""}
      </span>
    </label>
  );

  return (
    <section class="screen">
      <h1>{t("nav.dpo")}</h1>
      <form
        class="filters dpo"
        onSubmit={(e) => {
          e.preventDefault();
          if (!blocked) search(false);
        }}
      >
        {field("email", "dpo.email", "email")}
        {field("phone", "dpo.phone", "tel")}
        {field("digits", "dpo.digits", "number")}
        <p class="hint" aria-live="polite">
          {form.phone.trim() ? t("dpo.digitsHint", { n: phoneDigits(form.phone) }) : ""}
        </p>
        {field("first", "dpo.first")}
        {field("last", "dpo.last")}
        {field("from", "filter.from", "date")}
        {field("to", "filter.to", "date")}
        <p class="hint">{problems.form ? t(problems.form) : t("dpo.or")}</p>
        <button type="submit" class="primary" disabled={blocked || loading}>
          {t("dpo.search")}
        </button>
      </form>
      {error instanceof ApiProblem && error.errors.length ? (
        <p class="notice error" role="alert">
          {error.detail}
        </p>
      ) : (
        <ErrorBox error={error} />
      )}
      {loading && <p role="status">{t("msg.loading")}</p>}
      {large && (
        <div class="notice warn" role="alert">
          <p>{large.count === null ? t("dpo.tooMany", { n: large.hard }) : t("dpo.narrow", { n: large.count, advice: large.advice })}</p>
          {large.count !== null && (
            <button type="button" onClick={() => search(true)}>
              {t("dpo.goOn", { n: large.count })}
            </button>
          )}
        </div>
      )}
      {searched && (
        <>
          <p role="status" class="status">
            {all.length ? t("dpo.found", { n: all.length, chosen: chosen.length }) : t("dpo.none")}
          </p>
          {groups.map(([g, hits]) => {
            const on = hits.filter((h) => selected.has(h.id)).length;
            return (
              <fieldset key={g} class="group" data-group={g}>
                <legend>
                  <label class="check">
                    <input
                      type="checkbox"
                      name={`group-${g}`}
                      checked={on === hits.length}
                      ref={(el) => {
                        if (el) el.indeterminate = on > 0 && on < hits.length;
                      }}
                      onChange={(e) => toggle(hits.map((h) => h.id), e.currentTarget.checked)}
                    />
                    {t(`group.${g}` as Key)} ({on}/{hits.length})
                  </label>
                </legend>
                <table class="tasks">
                  <thead>
                    <tr>
                      <th scope="col">
                        <span class="sr-only">{t("dpo.select")}</span>
                      </th>
                      <th scope="col">{t("col.date")}</th>
                      <th scope="col">{t("col.activity")}</th>
                      <th scope="col">{t("dpo.person")}</th>
                      <th scope="col">{t("col.actions")}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {hits.map((h) => (
                      <tr key={h.id} data-id={h.id}>
                        <td>
                          <input type="checkbox" aria-label={t("dpo.selectItem", { id: h.id })} checked={selected.has(h.id)} onChange={(e) => toggle([h.id], e.currentTarget.checked)} />
                        </td>
                        <td>{formatTime(h.time, zone.value, lang.value)}</td>
                        <td>{h.record.action}</td>
                        <td>{who(h)}</td>
                        <td>
                          <button type="button" onClick={() => setOpen(h)}>
                            {t("btn.details")}
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </fieldset>
            );
          })}
          {all.length > 0 && (
            <div class="buttons">
              <button type="button" disabled={!chosen.length} onClick={report}>
                {t("dpo.report")}
              </button>
              <button type="button" class="danger" disabled={!chosen.length || chosen.length > 1000} onClick={() => setConfirm(true)}>
                {t("btn.delete")}
              </button>
              {chosen.length > 1000 && <span class="hint">{t("dpo.eraseLimit")}</span>}
            </div>
          )}
        </>
      )}
      {erasure && (
        <div class="notice" role="status" data-erasure={erasure.status}>
          <p>
            {t("dpo.erasure", { id: erasure.id })}: {t(`status.${erasure.status}` as Key)}{" "}
            <progress max={erasure.items} value={erasure.done} aria-label={t("dpo.progress")} /> {erasure.done}/{erasure.items}
          </p>
          {erasure.status === "SUCCEEDED" && (
            <p data-outcome>
              {t("dpo.outcome", {
                anonymized: erasure.result.anonymized,
                attachments: erasure.result.attachments_deleted,
                reports: erasure.result.error_reports_deleted,
                exports: erasure.result.exports_deleted.length,
                missing: erasure.result.missing,
              })}
            </p>
          )}
          {erasure.error && <p class="field-error">{erasure.error}</p>}
        </div>
      )}
      {confirm && (
        <div class="backdrop">
          <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="erase-title">
            <h2 id="erase-title">{t("dpo.confirm.title", { n: chosen.length })}</h2>
            <ul>
              {countsOf(chosen).map(([g, n]) => (
                <li key={g}>
                  {t(`group.${g}` as Key)}: {n}
                </li>
              ))}
            </ul>
            <p>{t("dpo.confirm.body")}</p>
            <div class="buttons">
              <button type="button" class="danger" onClick={erase}>
                {t("dpo.confirm.erase")}
              </button>
              <button type="button" autoFocus onClick={() => setConfirm(false)}>
                {t("btn.cancel")}
              </button>
            </div>
          </div>
        </div>
      )}
      {open && <Details hit={open} onClose={() => setOpen(null)} onError={setError} />}
    </section>
  );
}

/** The API's name of a form field, for its field errors. */
function apiField(name: keyof Form): string {
  return { email: "email", phone: "phone", digits: "phone_digits", first: "first_name", last: "last_name", from: "from", to: "to" }[name];
}
