import { describe, expect, it } from "vitest";
import { ageText, messages, preferredLang, setLang, t } from "../src/i18n";

// Words a Chinese screen may carry in Latin letters: product names, terms of the trade, and
// the property names and values a user types (shown as examples).
const LATIN_ALLOWED = new Set(["finpulse", "SQL", "API", "ID", "KPI", "CSV", "PNG", "Merkle", "audit", "verify", "user", "channel", "douyin", "AUC", "AP", "ROC", "PR", "LTV", "CAC", "fraud", "train", "eval", "lists"]);

describe("messages", () => {
  it("have the same keys in zh-CN and en", () => {
    expect(Object.keys(messages["zh-CN"]).sort()).toEqual(Object.keys(messages.en).sort());
  });

  it("leave no English on a Chinese screen", () => {
    for (const [key, text] of Object.entries(messages["zh-CN"])) {
      const words = text.replace(/\{\w+\}/g, "").match(/[A-Za-z]+/g) ?? [];
      const stray = words.filter((w) => !LATIN_ALLOWED.has(w));
      expect(stray, `${key}: ${text}`).toEqual([]);
      expect(/[\u4e00-\u9fff]/.test(text), `${key} has no Chinese: ${text}`).toBe(true);
    }
  });

  it("use the same placeholders in both languages", () => {
    for (const key of Object.keys(messages.en) as (keyof typeof messages.en)[]) {
      const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(names(messages["zh-CN"][key]), key).toEqual(names(messages.en[key]));
    }
  });

  it("fill placeholders and follow the language", () => {
    setLang("en");
    expect(t("msg.rows", { n: 3, ms: 12 })).toBe("3 rows in 12 ms");
    setLang("zh-CN");
    expect(t("msg.rows", { n: 3, ms: 12 })).toBe("3 行，用时 12 毫秒");
  });
});

describe("the language a browser gets", () => {
  it("is Chinese for any zh locale and English otherwise, unless one was chosen", () => {
    expect(preferredLang(null, ["zh-TW", "en"])).toBe("zh-CN");
    expect(preferredLang(null, ["en-GB"])).toBe("en");
    expect(preferredLang(null, [])).toBe("zh-CN");
    expect(preferredLang("en", ["zh-CN"])).toBe("en");
    expect(preferredLang("fr", ["de"])).toBe("en");
  });
});

describe("case age", () => {
  it("counts whole hours, then days and hours, in the screen's language", () => {
    const opened = Date.UTC(2026, 0, 1) * 1000;
    setLang("en");
    expect(ageText(opened, Date.UTC(2026, 0, 1, 5, 59))).toBe("5 h");
    expect(ageText(opened, Date.UTC(2026, 0, 3, 7))).toBe("2 d 7 h");
    setLang("zh-CN");
    expect(ageText(opened, Date.UTC(2026, 0, 3, 7))).toBe("2 天 7 小时");
    // A clock behind the server's never shows a negative age.
    expect(ageText(opened, Date.UTC(2025, 11, 31))).toBe("0 小时");
  });
});
