import { describe, expect, it } from "vitest";
import { emptyRow, ruleText, type RuleRow } from "../src/segment";
import { addDays, localToday, presetOf, presetRange } from "../src/dates";
import { messages } from "../src/i18n";

const row = (over: Partial<RuleRow>): RuleRow => ({ ...emptyRow(over.kind ?? "did"), ...over });

describe("segment rules from the builder's rows", () => {
  it("say how often an event was done, in a window or ever", () => {
    expect(ruleText(row({ kind: "did", event: "deposit" }))).toEqual({ text: "did deposit" });
    expect(ruleText(row({ kind: "did", event: "payment", op: ">=", count: "10", days: "30" }))).toEqual({ text: "did payment >= 10 in 30d" });
    expect(ruleText(row({ kind: "did", event: "payment", op: "<", count: " 3 ", days: "" }))).toEqual({ text: "did payment < 3" });
    expect(ruleText(row({ kind: "did", event: "login", op: "=", count: "0", days: "7" }))).toEqual({ text: "did login = 0 in 7d" });
    // At least once takes no count, whatever the count box still holds.
    expect(ruleText(row({ kind: "did", event: "login", op: "", count: "5", days: "014" }))).toEqual({ text: "did login in 14d" });
  });

  it("say an event never done, in a window or ever, without a count", () => {
    expect(ruleText(row({ kind: "not", event: "deposit" }))).toEqual({ text: "not deposit" });
    expect(ruleText(row({ kind: "not", event: "deposit", op: ">=", count: "3", days: "90" }))).toEqual({ text: "not deposit in 90d" });
  });

  it("compare a user property with a value", () => {
    expect(ruleText(row({ kind: "user", field: "channel", fieldType: "string", op: "=", value: " douyin " }))).toEqual({ text: "user.channel = douyin" });
    expect(ruleText(row({ kind: "user", field: "city", fieldType: "string", op: "!=", value: "上海" }))).toEqual({ text: "user.city != 上海" });
    expect(ruleText(row({ kind: "user", field: "age", fieldType: "int", op: ">=", value: "18" }))).toEqual({ text: "user.age >= 18" });
    expect(ruleText(row({ kind: "user", field: "vip", fieldType: "bool", op: "=", value: "true" }))).toEqual({ text: "user.vip = true" });
    // A field of a type not known here is left to the server.
    expect(ruleText(row({ kind: "user", field: "tier", op: ">", value: "2" }))).toEqual({ text: "user.tier > 2" });
  });

  it("refuse what the server would, saying why", () => {
    const refused = (r: Partial<RuleRow>) => {
      const out = ruleText(row(r));
      expect("error" in out, JSON.stringify(r)).toBe(true);
      return "error" in out ? out.error : undefined;
    };
    expect(refused({ kind: "did", event: "" })).toBe("segment.err_event");
    expect(refused({ kind: "not", event: "two words" })).toBe("segment.err_event");
    expect(refused({ kind: "did", event: "payment", op: ">=", count: "" })).toBe("segment.err_count");
    expect(refused({ kind: "did", event: "payment", op: ">=", count: "-1" })).toBe("segment.err_count");
    expect(refused({ kind: "did", event: "payment", op: ">=", count: "2.5" })).toBe("segment.err_count");
    expect(refused({ kind: "did", event: "payment", op: "!=", count: "2" })).toBe("segment.err_op");
    expect(refused({ kind: "did", event: "payment", days: "0" })).toBe("segment.err_days");
    expect(refused({ kind: "not", event: "payment", days: "30d" })).toBe("segment.err_days");
    expect(refused({ kind: "user", field: "", value: "x" })).toBe("segment.err_field");
    expect(refused({ kind: "user", field: "user.channel", value: "x" })).toBe("segment.err_field");
    expect(refused({ kind: "user", field: "channel", op: "=", value: "  " })).toBe("segment.err_value");
    expect(refused({ kind: "user", field: "channel", op: "~", value: "x" })).toBe("segment.err_op");
    expect(refused({ kind: "user", field: "channel", fieldType: "string", op: ">", value: "a" })).toBe("segment.err_text_op");
    expect(refused({ kind: "user", field: "age", fieldType: "int", op: ">", value: "old" })).toBe("segment.err_number");
    expect(refused({ kind: "user", field: "vip", fieldType: "bool", op: "=", value: "yes" })).toBe("segment.err_bool");
    expect(refused({ kind: "maybe" as RuleRow["kind"], event: "x" })).toBe("segment.err_kind");
  });

  it("refuse with messages that exist in both languages", () => {
    for (const r of [row({ kind: "did", event: "" }), row({ kind: "user", field: "age", fieldType: "int", op: ">", value: "x" })]) {
      const out = ruleText(r);
      if (!("error" in out)) throw new Error("not refused");
      expect(messages.en[out.error]).toBeTruthy();
      expect(messages["zh-CN"][out.error]).toBeTruthy();
    }
  });
});

describe("date-range presets", () => {
  it("end the last N days today, counting today", () => {
    expect(presetRange("7d", "2026-03-15")).toEqual({ from: "2026-03-09", to: "2026-03-15" });
    expect(presetRange("30d", "2026-03-15")).toEqual({ from: "2026-02-14", to: "2026-03-15" });
    expect(presetRange("90d", "2026-03-15")).toEqual({ from: "2025-12-16", to: "2026-03-15" });
  });

  it("cross month and year ends", () => {
    expect(presetRange("7d", "2026-03-03")).toEqual({ from: "2026-02-25", to: "2026-03-03" });
    expect(presetRange("7d", "2026-01-02")).toEqual({ from: "2025-12-27", to: "2026-01-02" });
    expect(presetRange("this_month", "2026-01-01")).toEqual({ from: "2026-01-01", to: "2026-01-01" });
    expect(presetRange("this_month", "2026-12-31")).toEqual({ from: "2026-12-01", to: "2026-12-31" });
    expect(presetRange("last_month", "2026-01-15")).toEqual({ from: "2025-12-01", to: "2025-12-31" });
    expect(presetRange("last_month", "2026-05-31")).toEqual({ from: "2026-04-01", to: "2026-04-30" });
    expect(presetRange("last_month", "2026-08-01")).toEqual({ from: "2026-07-01", to: "2026-07-31" });
  });

  it("know leap years", () => {
    expect(presetRange("30d", "2024-03-01")).toEqual({ from: "2024-02-01", to: "2024-03-01" });
    expect(presetRange("30d", "2023-03-01")).toEqual({ from: "2023-01-31", to: "2023-03-01" });
    expect(presetRange("7d", "2024-03-05")).toEqual({ from: "2024-02-28", to: "2024-03-05" });
    expect(presetRange("last_month", "2024-03-31")).toEqual({ from: "2024-02-01", to: "2024-02-29" });
    expect(presetRange("last_month", "2023-03-31")).toEqual({ from: "2023-02-01", to: "2023-02-28" });
    expect(presetRange("last_month", "2000-03-10")).toEqual({ from: "2000-02-01", to: "2000-02-29" });
    expect(presetRange("last_month", "2100-03-10")).toEqual({ from: "2100-02-01", to: "2100-02-28" });
    expect(addDays("2024-02-28", 1)).toBe("2024-02-29");
    expect(addDays("2024-12-31", 1)).toBe("2025-01-01");
  });

  it("leave all time and custom to the from and to given", () => {
    expect(presetRange("all", "2026-03-15")).toBeUndefined();
    expect(presetRange("custom", "2026-03-15")).toBeUndefined();
  });

  it("refuse a today that is not a day", () => {
    expect(() => presetRange("7d", "2026-02-30")).toThrow();
    expect(() => presetRange("7d", "15/03/2026")).toThrow();
  });

  it("read the preset back from a URL", () => {
    expect(presetOf(new URLSearchParams("kind=trends&range=30d"))).toBe("30d");
    expect(presetOf(new URLSearchParams("range=custom&from=2026-01-01&to=2026-01-31"))).toBe("custom");
    expect(presetOf(new URLSearchParams("from=2026-01-01"))).toBe("custom");
    expect(presetOf(new URLSearchParams("range=fortnight"))).toBe("all");
    expect(presetOf(new URLSearchParams("kind=funnel"))).toBe("all");
  });

  it("take today from the browser's calendar", () => {
    expect(localToday(new Date(2024, 1, 29, 23, 59))).toBe("2024-02-29");
    expect(localToday(new Date(2026, 0, 1, 0, 0))).toBe("2026-01-01");
  });
});
