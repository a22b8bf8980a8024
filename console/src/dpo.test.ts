import { describe, expect, it } from "vitest";
import { EMPTY, formProblems, searchRequest } from "./dpo";

describe("DPO search form (seed 002's rules)", () => {
  it("needs one of e-mail, phone, or both names", () => {
    expect(formProblems(EMPTY).form).toBe("dpo.rule.oneOf");
    expect(formProblems({ ...EMPTY, email: "a@b.cz" })).toEqual({});
  });
  it("a phone needs at least 3 digits, separators ignored", () => {
    expect(formProblems({ ...EMPTY, phone: "+4-2" }).phone).toBe("dpo.rule.phoneDigits");
    expect(formProblems({ ...EMPTY, phone: "(42) 0" })).toEqual({});
  });
  it("digits used: 3 up to the digits entered", () => {
    expect(formProblems({ ...EMPTY, phone: "777 123 456", digits: "2" }).digits).toBe("dpo.rule.digitsUsed");
    expect(formProblems({ ...EMPTY, phone: "777 123 456", digits: "10" }).digits).toBe("dpo.rule.digitsUsed");
    expect(formProblems({ ...EMPTY, phone: "777 123 456", digits: "6" })).toEqual({});
  });
  it("first and last name only together", () => {
    expect(formProblems({ ...EMPTY, first: "Jana" }).last).toBe("dpo.rule.bothNames");
    expect(formProblems({ ...EMPTY, last: "Nováková" }).first).toBe("dpo.rule.bothNames");
    expect(formProblems({ ...EMPTY, first: "Jana", last: "Nováková" })).toEqual({});
  });
  it("sends only what was entered, trimmed", () => {
    expect(searchRequest({ ...EMPTY, email: " a@b.cz ", phone: "777 123 456", digits: "6" }, true)).toEqual({ email: "a@b.cz", phone: "777 123 456", phone_digits: 6, accept_large: true });
    expect(searchRequest({ ...EMPTY, first: "Jana", last: "Nováková" })).toEqual({ first_name: "Jana", last_name: "Nováková" });
  });
});
