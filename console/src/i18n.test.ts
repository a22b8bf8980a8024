import { describe, expect, it } from "vitest";
import { catalogues, en, CHROME_PREFIXES, pickLang, translate, type Key } from "./i18n";

const chrome = (Object.keys(en) as Key[]).filter((k) => CHROME_PREFIXES.some((p) => k.startsWith(p)));

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
  it("picks the browser's language, English otherwise", () => {
    expect(pickLang(["ja-JP", "en"])).toBe("ja");
    expect(pickLang(["ru"])).toBe("ru");
    expect(pickLang(["de-DE", "fr"])).toBe("en");
  });
});
