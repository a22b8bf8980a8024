import { describe, expect, it } from "vitest";
import { passwordViolations } from "./password";
import { translate } from "./i18n";

const named = (pw: string) => passwordViolations(pw).map((v) => translate("en", v.key, v.vars));

describe("seed 003 compression password rule", () => {
  it("accepts letters, digits and _ @ %, 1 to 12 characters", () => {
    for (const ok of ["a", "Abc_123@%", "abcdefghijkl", "%%__@@", "Z9"]) expect(passwordViolations(ok)).toEqual([]);
  });
  it("names an empty password", () => {
    expect(named("")).toEqual(["Enter a password."]);
  });
  it("names a password over 12 characters with its length", () => {
    expect(named("abcdefghijklm")).toEqual(["At most 12 characters (13 entered)."]);
  });
  it("names each character that is not allowed, once", () => {
    expect(named("a-b-c!")).toEqual(["Not allowed: - !. Use letters, digits and _ @ %."]);
    expect(named("pass word")).toEqual(["Not allowed: space. Use letters, digits and _ @ %."]);
    expect(named("pässword")).toEqual(["Not allowed: ä. Use letters, digits and _ @ %."]);
  });
  it("names both violations at once", () => {
    expect(named("abcdefghijkl#")).toHaveLength(2);
  });
});
