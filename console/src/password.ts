// Seed 003's compression password rule: letters, digits and `_ @ %`, 1–12 characters.
import type { Key } from "./i18n";

export interface Violation {
  key: Key;
  vars?: Record<string, string | number>;
}

const ALLOWED = /^[A-Za-z0-9_@%]$/;

/** Every way `pw` breaks the rule (empty list: acceptable). */
export function passwordViolations(pw: string): Violation[] {
  const chars = Array.from(pw);
  if (chars.length === 0) return [{ key: "pw.empty" }];
  const out: Violation[] = [];
  if (chars.length > 12) out.push({ key: "pw.tooLong", vars: { n: chars.length } });
  const bad = [...new Set(chars.filter((c) => !ALLOWED.test(c)))];
  if (bad.length > 0) out.push({ key: "pw.badChars", vars: { chars: bad.map((c) => (c === " " ? "space" : c)).join(" ") } });
  return out;
}
