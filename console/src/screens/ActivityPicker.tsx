// Activity multi-select from /v1/catalogue, grouped by source/module, searchable.
import { useMemo, useState } from "preact/hooks";
import { t } from "../i18n";
import type { CatalogueEntry } from "../api/client";

export function ActivityPicker({ catalogue, value, onChange }: { catalogue: CatalogueEntry[]; value: string[]; onChange: (v: string[]) => void }) {
  const [q, setQ] = useState("");
  const groups = useMemo(() => {
    const needle = q.trim().toLowerCase();
    const m = new Map<string, CatalogueEntry[]>();
    for (const c of catalogue) {
      if (needle && !`${c.name} ${c.label} ${c.module}`.toLowerCase().includes(needle)) continue;
      const k = `${c.source} / ${c.module}`;
      m.set(k, [...(m.get(k) ?? []), c]);
    }
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [catalogue, q]);
  const toggle = (name: string) => onChange(value.includes(name) ? value.filter((v) => v !== name) : [...value, name]);
  return (
    <details class="picker field">
      <summary>
        {t("filter.activity")}: {value.length ? value.join(", ") : t("filter.any")}
      </summary>
      <div class="menu">
        <label>
          <span class="sr-only">{t("filter.activity.search")}</span>
          <input type="search" placeholder={t("filter.activity.search")} value={q} onInput={(e) => setQ(e.currentTarget.value)} />
        </label>
        {groups.map(([g, entries]) => (
          <fieldset key={g}>
            <legend>{g}</legend>
            {entries.map((c) => (
              <label key={c.name} class="check">
                <input type="checkbox" name="action" value={c.name} checked={value.includes(c.name)} onChange={() => toggle(c.name)} />
                {c.label} <code>{c.name}</code>
              </label>
            ))}
          </fieldset>
        ))}
      </div>
    </details>
  );
}
