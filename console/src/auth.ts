// Sign-in: the development sign-in (local mode) or OpenID Connect authorization code + PKCE
// (oauth4webapi). The session (tokens, expiry, roles) is kept in this tab's sessionStorage, as
// oidc-client-ts does by default: a reload keeps the user signed in, closing the tab or signing
// out ends it, and other tabs and windows never see it. The strict CSP (no inline or third-party
// script) is what guards it; the access token is refreshed before it expires.
import * as oauth from "oauth4webapi";
import { signal } from "@preact/signals";

export interface ConsoleConfig {
  auth_mode: "local" | "oidc" | "apigw";
  issuer?: string | null;
  client_id?: string | null;
  scopes: string;
  dev_sign_in: boolean;
}

export interface Session {
  token: string;
  expiresAt: number;
  tenant: string;
  user: string;
  roles: string[];
  refresh?: string;
  idToken?: string;
}

const SESSION_KEY = "auditrail.session";

/** The session this tab saved, while it has at least 10 s left. */
export function restoreSession(store: Pick<Storage, "getItem" | "removeItem"> | undefined, now = Date.now()): Session | null {
  try {
    const raw = store?.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (typeof s.token === "string" && typeof s.expiresAt === "number" && Array.isArray(s.roles) && s.expiresAt > now + 10_000) return s;
  } catch {
    // Unreadable: signed out.
  }
  store?.removeItem(SESSION_KEY);
  return null;
}

const tabStore = typeof sessionStorage === "undefined" ? undefined : sessionStorage;
export const session = signal<Session | null>(restoreSession(tabStore));
session.subscribe((s) => {
  if (!tabStore) return;
  if (s) tabStore.setItem(SESSION_KEY, JSON.stringify(s));
  else tabStore.removeItem(SESSION_KEY);
});

/** The claims of a JWT (not verified: the server does that; the console only reads roles). */
export function claimsOf(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1] ?? "";
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
}

function rolesOf(c: Record<string, unknown>): string[] {
  if (Array.isArray(c.roles)) return c.roles.map(String);
  const realm = c.realm_access as { roles?: unknown } | undefined;
  if (realm && Array.isArray(realm.roles)) return realm.roles.map(String);
  const groups = c["cognito:groups"];
  if (Array.isArray(groups)) return groups.map(String);
  return [];
}

function sessionOf(token: string, expiresIn: number, extra: Partial<Session> = {}): Session {
  const c = claimsOf(token);
  return {
    token,
    expiresAt: Date.now() + expiresIn * 1000,
    tenant: String(c.tenant_id ?? ""),
    user: String(c.preferred_username ?? c.username ?? c.sub ?? ""),
    roles: rolesOf(c),
    ...extra,
  };
}

let config: ConsoleConfig | null = null;
let as: oauth.AuthorizationServer | null = null;
let refreshTimer: ReturnType<typeof setTimeout> | undefined;

export async function loadConfig(): Promise<ConsoleConfig> {
  if (config) return config;
  const r = await fetch("/v1/console/config");
  config = (await r.json()) as ConsoleConfig;
  // A session restored after a reload refreshes on time again (refresh needs the config).
  if (session.value) schedule(session.value);
  return config;
}

/**
 * Plain HTTP to the issuer only on a loopback address (a provider on the same machine, as in
 * development and the browser tests, RFC 8252 § 7.3 in spirit); anywhere else HTTPS, as
 * oauth4webapi insists.
 */
export function insecureOk(issuer: URL): boolean {
  return issuer.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(issuer.hostname);
}

function requestOptions(): { [oauth.allowInsecureRequests]?: boolean } {
  const issuer = config?.issuer ? new URL(config.issuer) : null;
  return issuer && insecureOk(issuer) ? { [oauth.allowInsecureRequests]: true } : {};
}

async function discovery(cfg: ConsoleConfig): Promise<oauth.AuthorizationServer> {
  if (as) return as;
  const issuer = new URL(cfg.issuer ?? "");
  const found = await oauth
    .discoveryRequest(issuer, { algorithm: "oidc", ...(insecureOk(issuer) ? { [oauth.allowInsecureRequests]: true } : {}) })
    .then((r) => oauth.processDiscoveryResponse(issuer, r));
  as = found;
  return found;
}

function schedule(s: Session) {
  clearTimeout(refreshTimer);
  if (!s.refresh) return;
  // Refresh a minute before expiry (or halfway for short tokens).
  const lead = Math.min(60_000, (s.expiresAt - Date.now()) / 2);
  refreshTimer = setTimeout(() => void refresh(), Math.max(1000, s.expiresAt - Date.now() - lead));
}

async function refresh() {
  const s = session.value;
  const cfg = config;
  if (!s?.refresh || !cfg) return;
  const server = await discovery(cfg);
  const client: oauth.Client = { client_id: cfg.client_id ?? "" };
  const r = await oauth.refreshTokenGrantRequest(server, client, oauth.None(), s.refresh, requestOptions());
  const tok = await oauth.processRefreshTokenResponse(server, client, r);
  const next = sessionOf(tok.access_token, tok.expires_in ?? 300, { refresh: tok.refresh_token ?? s.refresh, idToken: tok.id_token ?? s.idToken });
  session.value = next;
  schedule(next);
}

export async function devSignIn(tenant: string, role: string, user: string): Promise<void> {
  const r = await fetch("/v1/console/dev-sign-in", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ tenant, role, user }),
  });
  const body = (await r.json()) as { access_token?: string; expires_in?: number; detail?: string; errors?: { field: string; reason: string }[] };
  if (!r.ok || !body.access_token) {
    throw new Error(body.errors?.map((e) => `${e.field}: ${e.reason}`).join("; ") || body.detail || r.statusText);
  }
  session.value = sessionOf(body.access_token, body.expires_in ?? 3600);
}

const PKCE_KEY = "auditrail.pkce";

/** Starts the authorization code flow: to the issuer and back to `/callback`. */
export async function oidcSignIn(): Promise<void> {
  const cfg = await loadConfig();
  const server = await discovery(cfg);
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  // Only the one-time verifier and state survive the redirect (sessionStorage, this tab); never the token.
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, back: location.pathname + location.search }));
  const url = new URL(server.authorization_endpoint ?? "");
  url.searchParams.set("client_id", cfg.client_id ?? "");
  url.searchParams.set("redirect_uri", `${location.origin}/callback`);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("scope", cfg.scopes);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  url.searchParams.set("state", state);
  location.assign(url.href);
}

/** Finishes the flow on `/callback`; returns where to go next. */
export async function oidcCallback(): Promise<string> {
  const cfg = await loadConfig();
  const server = await discovery(cfg);
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) ?? "{}") as { verifier?: string; state?: string; back?: string };
  sessionStorage.removeItem(PKCE_KEY);
  const client: oauth.Client = { client_id: cfg.client_id ?? "" };
  const params = oauth.validateAuthResponse(server, client, new URL(location.href), saved.state);
  const r = await oauth.authorizationCodeGrantRequest(server, client, oauth.None(), params, `${location.origin}/callback`, saved.verifier ?? "", requestOptions());
  const tok = await oauth.processAuthorizationCodeResponse(server, client, r);
  const s = sessionOf(tok.access_token, tok.expires_in ?? 300, { refresh: tok.refresh_token, idToken: tok.id_token });
  session.value = s;
  schedule(s);
  return saved.back && saved.back !== "/callback" ? saved.back : "/";
}

export async function signOut(): Promise<void> {
  const s = session.value;
  session.value = null;
  clearTimeout(refreshTimer);
  const cfg = config;
  if (cfg && cfg.auth_mode !== "local" && cfg.issuer) {
    const server = await discovery(cfg);
    if (server.end_session_endpoint) {
      const url = new URL(server.end_session_endpoint);
      if (s?.idToken) url.searchParams.set("id_token_hint", s.idToken);
      url.searchParams.set("client_id", cfg.client_id ?? "");
      url.searchParams.set("post_logout_redirect_uri", `${location.origin}/`);
      location.assign(url.href);
    }
  }
}

export const auth = {
  async token(): Promise<string | null> {
    const s = session.value;
    if (s && s.expiresAt <= Date.now()) {
      session.value = null;
      return null;
    }
    return s?.token ?? null;
  },
};

export function hasRole(...roles: string[]): boolean {
  return !!session.value?.roles.some((r) => roles.includes(r));
}

export const READERS = ["cc_manager", "compliance_analyst", "tenant_admin"];
