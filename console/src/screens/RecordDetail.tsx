// One record: every field; a co-browsing session's timeline; an asynchronous action's start, end and delay.
import { useEffect, useState } from "preact/hooks";
import { t, lang } from "../i18n";
import { api, ok, ApiProblem, type Schemas } from "../api/client";
import { seen } from "../records";
import { linkClick } from "../router";
import { zone, formatTime } from "../zone";
import { ErrorBox } from "./common";

function flatten(prefix: string, v: unknown, out: [string, string][]) {
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(prefix ? `${prefix}.${k}` : k, x, out);
  } else if (v !== undefined && v !== null) {
    out.push([prefix, typeof v === "string" ? v : JSON.stringify(v)]);
  }
}

/** Where the record stands in the tamper evidence: sealed and unchanged, changed, or not sealed yet. */
function Integrity({ proof, unsealed }: { proof: Schemas["Proof"] | null; unsealed: boolean }) {
  if (!proof && !unsealed) return null;
  return (
    <section aria-labelledby="integrity-h">
      <h2 id="integrity-h">{t("detail.integrity")}</h2>
      {unsealed && <p>{t("detail.notSealed")}</p>}
      {proof && proof.leaf === proof.leaf_now && (
        <p class="ok">
          {t("detail.sealed", { seq: String(proof.statement.seq), at: formatTime(proof.statement.sealed_at, zone.value, lang.value) })}
        </p>
      )}
      {proof && proof.leaf !== proof.leaf_now && (
        <p class="error" role="alert">
          {t("detail.changed", { seq: String(proof.statement.seq) })}
        </p>
      )}
      {proof && proof.erased_by.length > 0 && <p>{t("detail.erased", { jobs: proof.erased_by.join(", ") })}</p>}
    </section>
  );
}

export function RecordDetail({ id }: { id: string }) {
  const [r, setR] = useState<Schemas["Record"] | undefined>(seen.get(id));
  const [timeline, setTimeline] = useState<Schemas["SessionEvent"][]>([]);
  const [trace, setTrace] = useState<Schemas["RequestTrace"] | null>(null);
  const [proof, setProof] = useState<Schemas["Proof"] | null>(null);
  const [unsealed, setUnsealed] = useState(false);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    // A shared link opens the record itself, not only one seen in a list. What the list holds is
    // looked up now, not at the first render: a list page landing in between used to leave the
    // screen waiting for a record it would never fetch.
    const known = seen.get(id);
    if (known) setR(known);
    else api.GET("/v1/events/{id}", { params: { path: { id }, query: { tz: zone.value } } }).then((x) => setR(ok(x))).catch(setError);
    api
      .GET("/v1/events/{id}/proof", { params: { path: { id } } })
      .then((x) => setProof(ok(x)))
      .catch((e) => (e instanceof ApiProblem && e.status === 409 ? setUnsealed(true) : setError(e)));
  }, [id]);
  useEffect(() => {
    if (r?.session_id && r.category === "cobrowse") {
      api.GET("/v1/sessions/{session_id}/events", { params: { path: { session_id: r.session_id }, query: { tz: zone.value } } }).then((x) => setTimeline(ok(x).items)).catch(setError);
    }
    if (r?.correlation_id) {
      api.GET("/v1/requests/{correlation_id}", { params: { path: { correlation_id: r.correlation_id } } }).then((x) => setTrace(ok(x))).catch(setError);
    }
  }, [r?.id]);
  if (!r) {
    return (
      <section class="screen">
        <h1>{t("detail.title")}</h1>
        <p class="notice">{id}</p>
        <ErrorBox error={error} />
        <a href="/activity" onClick={linkClick}>
          {t("detail.back")}
        </a>
      </section>
    );
  }
  const fields: [string, string][] = [];
  // The salt key and commitments are for verifiers, not readers: the integrity section says what they prove.
  flatten("", { ...r, integrity: undefined }, fields);
  const tz = zone.value;
  return (
    <section class="screen">
      <h1>
        {t("detail.title")} <code>{r.action}</code>
      </h1>
      <p>
        <a href="/activity" onClick={linkClick}>
          {t("detail.back")}
        </a>
        {r.actor?.username && (
          <>
            {" · "}
            <a href={`/activity?user=${encodeURIComponent(r.actor.username)}`} onClick={linkClick}>
              {t("detail.userActivity")}: {r.actor.full_name ?? r.actor.username}
            </a>
          </>
        )}
      </p>
      <ErrorBox error={error} />
      <dl class="fields">
        {fields.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{k === "occurred_at" || k === "received_at" ? `${formatTime(v, tz, lang.value)} (${tz}) · ${v}` : v}</dd>
          </div>
        ))}
      </dl>
      <Integrity proof={proof} unsealed={unsealed} />
      {trace && (
        <section>
          <h2>{t("detail.async")}</h2>
          <dl class="fields">
            <div>
              <dt>{t("detail.start")}</dt>
              <dd>{trace.started_at ? formatTime(trace.started_at, tz, lang.value) : "—"}</dd>
            </div>
            <div>
              <dt>{t("detail.end")}</dt>
              <dd>{trace.ended_at ? formatTime(trace.ended_at, tz, lang.value) : "—"}</dd>
            </div>
            <div>
              <dt>{t("detail.delay")}</dt>
              <dd>{trace.delay_ms != null ? `${trace.delay_ms} ms` : "—"}</dd>
            </div>
          </dl>
        </section>
      )}
      {timeline.length > 0 && (
        <section>
          <h2>{t("detail.timeline")}</h2>
          <ol class="timeline">
            {timeline.map((e) => (
              <li key={e.id} class={`by-${e.by}`}>
                <span class="when">{e.time}</span> <strong>{e.by}</strong> <code>{e.type}</code> {e.extra !== undefined ? JSON.stringify(e.extra) : ""}
              </li>
            ))}
          </ol>
        </section>
      )}
    </section>
  );
}
