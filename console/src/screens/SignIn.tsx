import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { devSignIn, loadConfig, oidcSignIn, type ConsoleConfig } from "../auth";
import { route } from "../router";

const ROLES = ["compliance_analyst", "cc_manager", "tenant_admin", "dpo"];

export function SignIn({ error }: { error?: string }) {
  const [cfg, setCfg] = useState<ConsoleConfig | null>(null);
  const [tenant, setTenant] = useState("acme-contact");
  const [role, setRole] = useState("compliance_analyst");
  const [user, setUser] = useState("analyst");
  const [err, setErr] = useState(error ?? "");
  useEffect(() => {
    loadConfig().then(setCfg, (e: unknown) => setErr(String(e)));
  }, []);
  useEffect(() => setErr(error ?? ""), [error]);
  if (route.value.path === "/callback" && !err) return <main class="signin"><p>{t("msg.loading")}</p></main>;
  return (
    <main class="signin">
      <h1>{t("signin.title")}</h1>
      {err && (
        <div class="notice error" role="alert">
          {t("signin.failed")}: {err}
        </div>
      )}
      {cfg?.dev_sign_in && (
        <form
          class="card"
          onSubmit={(e) => {
            e.preventDefault();
            setErr("");
            devSignIn(tenant, role, user).catch((x: unknown) => setErr(x instanceof Error ? x.message : String(x)));
          }}
        >
          <p class="notice warn">{t("signin.dev.banner")}</p>
          <label>
            {t("signin.tenant")}
            <input name="tenant" value={tenant} onInput={(e) => setTenant(e.currentTarget.value)} required />
          </label>
          <label>
            {t("signin.role")}
            <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value)}>
              {ROLES.map((r) => (
                <option key={r} value={r}>
                  {r}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t("signin.user")}
            <input name="user" value={user} onInput={(e) => setUser(e.currentTarget.value)} required />
          </label>
          <button type="submit" class="primary">
            {t("signin.submit")}
          </button>
        </form>
      )}
      {cfg && cfg.auth_mode !== "local" && (
        <button type="button" class="primary" onClick={() => void oidcSignIn().catch((x: unknown) => setErr(String(x)))}>
          {t("signin.oidc")}
        </button>
      )}
    </main>
  );
}
