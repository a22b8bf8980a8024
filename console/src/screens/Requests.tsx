// Requests (seed 004's asynchronous QM actions): the slow ones (min_delay_ms, slowest first) and
// the never-finished ones (unfinished_for, newest first), each opening its trace: both records
// and the delay. The kind and the threshold live in the query string, so a view can be shared.
import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { t, lang } from "../i18n";
import { api, ok, type Schemas } from "../api/client";
import { navigate, linkClick } from "../router";
import { zone, formatTime } from "../zone";
import { ErrorBox, ZonePicker } from "./common";
import { requestsFromSearch, requestsToSearch } from "../requests";
import { usePaged } from "../paged";

type Pair = Schemas["RequestPair"];
type Trace = Schemas["RequestTrace"];

const when = (iso?: string | null) => (iso ? formatTime(iso, zone.value, lang.value) : "");

function Field({ name, children }: { name: string; children: ComponentChildren }) {
  return (
    <div>
      <dt>{name}</dt>
      <dd>{children}</dd>
    </div>
  );
}

function TraceView({ id, onClose }: { id: string; onClose: () => void }) {
  const [trace, setTrace] = useState<Trace | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    setTrace(null);
    api.GET("/v1/requests/{correlation_id}", { params: { path: { correlation_id: id } } }).then((r) => setTrace(ok(r))).catch(setError);
  }, [id]);
  const rec = (r: Trace["start"]) =>
    r ? (
      <a href={`/records/${encodeURIComponent(r.id)}`} onClick={linkClick}>
        {r.id}
      </a>
    ) : (
      "—"
    );
  return (
    <aside class="panel" aria-label={t("req.trace", { id })}>
      <h2>{t("req.trace", { id })}</h2>
      <ErrorBox error={error} />
      {trace && (
        <dl class="fields">
          <Field name={t("col.activity")}>{trace.action}</Field>
          <Field name={t("detail.start")}>
            {when(trace.started_at)} {rec(trace.start)}
          </Field>
          <Field name={t("detail.end")}>
            {trace.ended_at ? when(trace.ended_at) : t("req.noEnd")} {trace.end_id ? rec(trace.end) : ""}
          </Field>
          <Field name={t("detail.delay")}>
            <span data-delay>{trace.delay_ms ?? "—"}</span>
          </Field>
          <Field name={t("col.result")}>{trace.result ?? "—"}</Field>
        </dl>
      )}
      <button type="button" onClick={onClose}>
        {t("btn.close")}
      </button>
    </aside>
  );
}

export function Requests({ search }: { search: string }) {
  const q = requestsFromSearch(search);
  const [form, setForm] = useState(q);
  const [open, setOpen] = useState<string | null>(null);
  const list = usePaged<Pair>(async (after) => {
    const query = q.kind === "slow" ? { min_delay_ms: q.minDelayMs } : { unfinished_for: q.unfinishedFor };
    return ok(await api.GET("/v1/requests", { params: { query: { ...query, limit: 100, ...(after ? { cursor: after } : {}) } } }));
  });
  const { items, loading, error } = list;
  useEffect(() => {
    setForm(q);
    setOpen(null);
    list.reload();
  }, [search]);

  const submit = (e: Event) => {
    e.preventDefault();
    navigate(`/requests${requestsToSearch(form)}`);
  };
  return (
    <section class="screen">
      <h1>{t("nav.requests")}</h1>
      <form class="filters" onSubmit={submit}>
        <fieldset class="field">
          <legend>{t("req.kind")}</legend>
          {(["slow", "unfinished"] as const).map((k) => (
            <label key={k}>
              <input type="radio" name="kind" value={k} checked={form.kind === k} onChange={() => setForm({ ...form, kind: k })} />
              {t(k === "slow" ? "req.slow" : "req.unfinished")}
            </label>
          ))}
        </fieldset>
        {form.kind === "slow" ? (
          <label class="field">
            {t("req.minDelay")}
            <input name="min_delay_ms" type="number" min={0} step={1} value={form.minDelayMs} onInput={(e) => setForm({ ...form, minDelayMs: Math.max(0, Math.trunc(Number(e.currentTarget.value) || 0)) })} />
          </label>
        ) : (
          <label class="field">
            {t("req.unfinishedFor")}
            <select name="unfinished_for" value={form.unfinishedFor} onChange={(e) => setForm({ ...form, unfinishedFor: e.currentTarget.value })}>
              {["30s", "1m", "10m", "1h", "1d"].map((d) => (
                <option key={d} value={d}>
                  {d}
                </option>
              ))}
            </select>
          </label>
        )}
        <ZonePicker value={zone.value} onChange={(z) => (zone.value = z)} />
        <button type="submit">{t("btn.query")}</button>
        <button type="button" onClick={list.reload}>
          {t("filter.refresh")}
        </button>
      </form>
      <ErrorBox error={error} />
      <p class="status" role="status">
        {loading ? t("msg.loading") : items.length ? t("msg.rows", { n: items.length }) : t("req.none")}
      </p>
      {items.length > 0 && (
        <table class="tasks requests">
          <thead>
            <tr>
              <th scope="col">{t("req.correlation")}</th>
              <th scope="col">{t("col.activity")}</th>
              <th scope="col">{t("req.started")}</th>
              <th scope="col">{t("req.ended")}</th>
              <th scope="col">{t("req.delay")}</th>
              <th scope="col">{t("col.result")}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((x) => (
              <tr key={x.correlation_id} data-id={x.correlation_id} data-delay={x.delay_ms ?? ""}>
                <td>
                  <button type="button" class="link" aria-expanded={open === x.correlation_id} onClick={() => setOpen(x.correlation_id)}>
                    {x.correlation_id}
                  </button>
                </td>
                <td>{x.action}</td>
                <td>{when(x.started_at)}</td>
                <td>{x.ended_at ? when(x.ended_at) : t("req.noEnd")}</td>
                <td>{x.delay_ms ?? "—"}</td>
                <td>{x.result ?? "—"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {list.more && (
        <button type="button" onClick={list.more}>
          {t("btn.more")}
        </button>
      )}
      {open && <TraceView id={open} onClose={() => setOpen(null)} />}
    </section>
  );
}
