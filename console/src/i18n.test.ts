import { describe, expect, it } from "vitest";
import { catalogues, en, CHROME_PREFIXES, PLURAL_SUFFIX, pickLang, translate, type Key } from "./i18n";

// Plural variants are a language's own (English `one`); the base message is every language's.
const chrome = (Object.keys(en) as Key[]).filter((k) => CHROME_PREFIXES.some((p) => k.startsWith(p)) && !PLURAL_SUFFIX.test(k));

describe("message catalogue", () => {
  it("has chrome keys to check", () => {
    expect(chrome.length).toBeGreaterThan(60);
  });
  for (const lang of ["ru", "ja"] as const) {
    it(`translates every chrome key into ${lang}`, () => {
      const missing = chrome.filter((k) => !catalogues[lang][k]);
      expect(missing).toEqual([]);
    });
    it(`${lang} keeps every placeholder of the English text`, () => {
      for (const k of chrome) {
        const vars = en[k].match(/\{\w+\}/g) ?? [];
        for (const v of vars) expect(catalogues[lang][k], `${lang} ${k}`).toContain(v);
      }
    });
  }
  it("has no keys English lacks", () => {
    for (const c of Object.values(catalogues)) for (const k of Object.keys(c)) expect(en).toHaveProperty(k);
  });
  it("uses the seeds' wording", () => {
    expect(translate("en", "btn.newExport")).toBe("New export task");
    expect(translate("en", "btn.exportView")).toBe("Export task view");
    expect(translate("ru", "filter.clear")).toBe("Удалить фильтры");
    expect(translate("ru", "filter.apply")).toBe("Применить");
  });
  it("says 1 row and 2 rows, in each language's plural rules", () => {
    expect(translate("en", "msg.rows", { n: 1 })).toBe("1 row");
    expect(translate("en", "msg.rows", { n: 0 })).toBe("0 rows");
    expect(translate("en", "msg.rows", { n: 21 })).toBe("21 rows");
    expect(translate("en", "dpo.found", { n: 1, chosen: 0 })).toBe("1 result, 0 selected");
    expect(translate("ru", "msg.rows", { n: 1 })).toBe("Строк: 1");
    expect(translate("ja", "msg.rows", { n: 1 })).toBe("1 行");
    for (const k of Object.keys(en).filter((k) => PLURAL_SUFFIX.test(k))) {
      expect(en, `${k} varies a message that exists`).toHaveProperty(k.replace(PLURAL_SUFFIX, ""));
    }
  });
  it("picks the browser's language, English otherwise", () => {
    expect(pickLang(["ja-JP", "en"])).toBe("ja");
    expect(pickLang(["ru"])).toBe("ru");
    expect(pickLang(["de-DE", "fr"])).toBe("en");
  });
});
