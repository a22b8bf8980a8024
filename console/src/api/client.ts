// The API client: request and response types generated from the served OpenAPI document
// (`npm run gen` → schema.d.ts), so a route or field the document lacks fails `tsc`.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";
import { auth, session } from "../auth";

export type Schemas = components["schemas"];
export type Record_ = Schemas["Record"];
export type SignInRow = Schemas["SignInRow"];
export type ExportInfo = Schemas["ExportInfo"];
export type CatalogueEntry = Schemas["CatalogueEntry"];

const bearer: Middleware = {
  async onRequest({ request }) {
    const token = await auth.token();
    if (token) request.headers.set("authorization", `Bearer ${token}`);
    return request;
  },
  onResponse({ response }) {
    // A token the server no longer takes (expired, revoked, key rotated): back to sign-in.
    if (response.status === 401) session.value = null;
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin, querySerializer: { array: { style: "form", explode: true } } });
api.use(bearer);

/** A failed API call as the screens show it. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    /** The problem JSON's `errors`: each wrong field and what is wrong with it. */
    readonly errors: Schemas["FieldError"][] = [],
    /** The whole problem body (extension members such as a large search's `count`). */
    readonly body: Record<string, unknown> = {},
  ) {
    super(detail);
  }

  /** What the problem says about one field (`days.audit`, `legal_hold` …), if anything. */
  about(field: string): string | undefined {
    return this.errors.find((e) => e.field === field)?.reason;
  }
}

/** The data of an openapi-fetch answer, or an `ApiProblem` with the problem JSON's detail. */
export function ok<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.response.ok && r.data !== undefined) return r.data;
  if (r.response.ok) return undefined as T;
  const e = r.error as Partial<Schemas["Problem"]> | undefined;
  const body = e && typeof e === "object" ? (e as Record<string, unknown>) : {};
  throw new ApiProblem(r.response.status, e?.detail ?? e?.title ?? r.response.statusText, Array.isArray(e?.errors) ? e.errors : [], body);
}
