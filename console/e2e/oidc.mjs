// A real OpenID Connect provider for the browser tests: panva's certified `oidc-provider`, with its
// development interactions (any login, any password, then consent) and authorization code + PKCE.
// It issues JWT access tokens (ES256, `aud` = the resource `urn:auditrail`) carrying the claims
// Auditrail reads: `tenant_id`, `roles`, `preferred_username`.
import { generateKeyPairSync } from "node:crypto";
import Provider from "oidc-provider";

export const CLIENT_ID = "auditrail-console";
export const AUDIENCE = "urn:auditrail";

export async function startOidcProvider({ port, consoleBase, tenant = "acme-contact", roles = ["compliance_analyst"] }) {
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...privateKey.export({ format: "jwk" }), use: "sig", alg: "ES256", kid: "e2e-es256" };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: "none",
        redirect_uris: [`${consoleBase}/callback`],
        post_logout_redirect_uris: [`${consoleBase}/`],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        id_token_signed_response_alg: "ES256",
      },
    ],
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    // The console exchanges the code from its own origin (a browser fetch).
    clientBasedCORS: (_ctx, origin) => origin === consoleBase,
    claims: { openid: ["sub"], profile: ["preferred_username"] },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "audit",
          audience: AUDIENCE,
          accessTokenFormat: "jwt",
          accessTokenTTL: 900,
          jwt: { sign: { alg: "ES256" } },
        }),
      },
    },
    extraTokenClaims: async (_ctx, token) =>
      token.kind === "AccessToken" ? { tenant_id: tenant, roles, preferred_username: token.accountId } : undefined,
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id, preferred_username: id }) }),
  });
  provider.proxy = false;
  const server = await new Promise((res) => {
    const s = provider.listen(port, "127.0.0.1", () => res(s));
  });
  return {
    issuer,
    async stop() {
      await new Promise((r) => server.close(r));
    },
  };
}
