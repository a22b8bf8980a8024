// The DPO search form's rules (seed 002) and its API request, apart from the screen so they are
// testable without a browser.
import type { Key } from "./i18n";
import type { components } from "./api/schema";

type SearchRequest = components["schemas"]["SearchRequest"];

export interface Form {
  email: string;
  phone: string;
  digits: string;
  first: string;
  last: string;
  from: string;
  to: string;
}
export const EMPTY: Form = { email: "", phone: "", digits: "", first: "", last: "", from: "", to: "" };

export const phoneDigits = (p: string) => p.replace(/\D/g, "").length;

/** The API request of the form (empty fields left out). */
export function searchRequest(f: Form, acceptLarge = false): SearchRequest {
  const r: SearchRequest = {};
  if (f.email.trim()) r.email = f.email.trim();
  if (f.phone.trim()) {
    r.phone = f.phone.trim();
    if (f.digits.trim()) r.phone_digits = Number(f.digits);
  }
  if (f.first.trim() || f.last.trim()) {
    r.first_name = f.first.trim() || null;
    r.last_name = f.last.trim() || null;
  }
  if (f.from) r.from = new Date(f.from).toISOString();
  if (f.to) r.to = new Date(f.to).toISOString();
  if (acceptLarge) r.accept_large = true;
  return r;
}

/** What the form breaks of the seed's rules, by field (checked as typed; the API checks again). */
export function formProblems(f: Form): Partial<Record<keyof Form | "form", Key>> {
  const out: Partial<Record<keyof Form | "form", Key>> = {};
  const digits = phoneDigits(f.phone);
  if (f.phone.trim() && digits < 3) out.phone = "dpo.rule.phoneDigits";
  if (f.digits.trim()) {
    const n = Number(f.digits);
    if (!Number.isInteger(n) || n < 3 || (digits && n > digits)) out.digits = "dpo.rule.digitsUsed";
  }
  if (!!f.first.trim() !== !!f.last.trim()) out[f.first.trim() ? "last" : "first"] = "dpo.rule.bothNames";
  if (!f.email.trim() && !f.phone.trim() && !(f.first.trim() && f.last.trim())) out.form = "dpo.rule.oneOf";
  return out;
}
