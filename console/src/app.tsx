import { useEffect, useState } from "preact/hooks";
import { LANGS, lang, t, type Lang } from "./i18n";
import { route, navigate, linkClick } from "./router";
import { session, signOut, hasRole, READERS, oidcCallback } from "./auth";
import { SignIn } from "./screens/SignIn";
import { ActivityLog } from "./screens/ActivityLog";
import { SignInLog } from "./screens/SignInLog";
import { RecordDetail } from "./screens/RecordDetail";
import { Exports } from "./screens/Exports";
import { Requests } from "./screens/Requests";
import { ErrorReports } from "./screens/ErrorReports";
import { Settings } from "./screens/Settings";
import { Dpo } from "./screens/Dpo";
import { Forbidden } from "./screens/common";

const LANG_NAMES: Record<Lang, string> = { en: "English", ru: "Русский", ja: "日本語" };

interface NavItem {
  path: string;
  label: () => string;
  roles: string[];
}

/** Error reports are not pseudonymised (seed 000): the API lets only these roles read them. */
const ERROR_REPORT_READERS = ["tenant_admin", "cc_manager"];

const NAV: NavItem[] = [
  { path: "/activity", label: () => t("nav.activity"), roles: READERS },
  { path: "/sign-ins", label: () => t("nav.signins"), roles: READERS },
  { path: "/requests", label: () => t("nav.requests"), roles: READERS },
  { path: "/exports", label: () => t("nav.exports"), roles: READERS },
  { path: "/error-reports", label: () => t("nav.errorReports"), roles: ERROR_REPORT_READERS },
  { path: "/settings", label: () => t("nav.settings"), roles: ["tenant_admin"] },
  { path: "/dpo", label: () => t("nav.dpo"), roles: ["dpo"] },
];

export function App() {
  const { path, search } = route.value;
  const s = session.value;
  const [callbackError, setCallbackError] = useState("");
  useEffect(() => {
    document.documentElement.lang = lang.value;
  }, [lang.value]);
  useEffect(() => {
    if (path === "/callback" && !s) {
      oidcCallback()
        .then((to) => navigate(to, true))
        .catch((e: unknown) => setCallbackError(String(e)));
    }
  }, [path]);

  if (!s) return <SignIn error={callbackError} />;

  const items = NAV.filter((n) => hasRole(...n.roles));
  if (path === "/" || path === "/callback") {
    queueMicrotask(() => navigate(items[0]?.path ?? "/activity", true));
  }
  let screen;
  let allowed = true;
  if (path.startsWith("/activity")) {
    allowed = hasRole(...READERS);
    screen = <ActivityLog search={search} />;
  } else if (path.startsWith("/sign-ins")) {
    allowed = hasRole(...READERS);
    screen = <SignInLog search={search} />;
  } else if (path.startsWith("/records/")) {
    allowed = hasRole(...READERS);
    screen = <RecordDetail id={decodeURIComponent(path.slice("/records/".length))} />;
  } else if (path.startsWith("/requests")) {
    allowed = hasRole(...READERS);
    screen = <Requests search={search} />;
  } else if (path.startsWith("/error-reports")) {
    allowed = hasRole(...ERROR_REPORT_READERS);
    screen = <ErrorReports search={search} />;
  } else if (path.startsWith("/dpo")) {
    allowed = hasRole("dpo");
    screen = <Dpo />;
  } else if (path.startsWith("/settings")) {
    allowed = hasRole("tenant_admin");
    screen = <Settings />;
  } else if (path.startsWith("/exports")) {
    allowed = hasRole(...READERS);
    screen = <Exports />;
  } else {
    screen = <p>{t("msg.notfound")}</p>;
  }

  return (
    <div class="shell">
      <header class="top">
        <span class="brand">{t("app.title")}</span>
        <nav aria-label={t("nav.main")}>
          <ul>
            {items.map((n) => (
              <li key={n.path}>
                <a href={n.path} onClick={linkClick} aria-current={path.startsWith(n.path) ? "page" : undefined}>
                  {n.label()}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span>
            {s.user} · {s.tenant} · {s.roles.join(", ")}
          </span>
          <label>
            <span class="sr-only">{t("nav.language")}</span>
            <select value={lang.value} onChange={(e) => (lang.value = (e.currentTarget as HTMLSelectElement).value as Lang)}>
              {LANGS.map((l) => (
                <option key={l} value={l}>
                  {LANG_NAMES[l]}
                </option>
              ))}
            </select>
          </label>
          <button type="button" onClick={() => void signOut()}>
            {t("nav.signout")}
          </button>
        </div>
      </header>
      <main>{allowed ? screen : <Forbidden />}</main>
    </div>
  );
}
