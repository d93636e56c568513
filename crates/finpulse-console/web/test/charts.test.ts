import { describe, expect, it } from "vitest";
import { decisionScoresOption, fraudMeasures, funnelOption, lifecycleOption, ltvCacOption, ltvHeatOption, ltvTable, modelMetricsOption, retentionOption, trendOption } from "../src/charts";
import { toCsv } from "../src/api";
import { ruleError } from "../src/rules";

describe("chart options", () => {
  it("draw a trend line per value column along the periods", () => {
    const o = trendOption({ columns: ["period", "count"], rows: [["2026-03-01", 4], ["2026-03-02", 7]] });
    expect(o.xAxis.data).toEqual(["2026-03-01", "2026-03-02"]);
    expect(o.series).toEqual([{ type: "line", name: "count", data: [4, 7] }]);
  });

  it("draw one trend line per breakdown value, with gaps where a period has none", () => {
    const o = trendOption({ columns: ["breakdown", "period", "count"], rows: [["ios", "d1", 1], ["android", "d1", 2], ["ios", "d2", 3]] });
    expect(o.legend?.data).toEqual(["ios", "android"]);
    expect(o.series.map((s) => s.data)).toEqual([[1, 3], [2, null]]);
  });

  it("label funnel bars with users and conversion from the first step", () => {
    const o = funnelOption({
      columns: ["step", "event", "users", "conversion", "from_previous", "dropped", "median_secs_from_previous"],
      rows: [[1, "signup", 200, 1.0, null, 0, null], [2, "deposit", 75, 0.375, 0.375, 125, 3600]],
    });
    expect(o.xAxis.data).toEqual(["signup", "deposit"]);
    const bars = o.series[0].data as { value: number; label: { formatter: string } }[];
    expect(bars.map((b) => [b.value, b.label.formatter])).toEqual([[200, "200 (100.0%)"], [75, "75 (37.5%)"]]);
  });

  it("lay retention out cohorts down and periods across, unknown cells empty", () => {
    const o = retentionOption({ columns: ["cohort", "users", "week_0", "week_1"], rows: [["2026-01-05", 10, 1.0, 0.4], ["2026-01-12", 8, 1.0, null]] });
    expect(o.xAxis.data).toEqual(["week_0", "week_1"]);
    expect(o.yAxis.data).toEqual(["2026-01-05", "2026-01-12"]);
    const cells = o.series[0].data as { value: unknown[]; label: { formatter: string } }[];
    expect(cells.map((c) => c.value)).toEqual([[0, 0, 1.0], [1, 0, 0.4], [0, 1, 1.0], [1, 1, null]]);
    expect(cells.map((c) => c.label.formatter)).toEqual(["100.0%", "40.0%", "100.0%", ""]);
    expect(o.visualMap?.max).toBe(1.0);
  });

  it("stack lifecycle stages, those leaving below the axis", () => {
    const o = lifecycleOption({ columns: ["period", "new", "returning", "resurrecting", "dormant", "churned", "active"], rows: [["w1", 5, 3, 1, 2, 4, 9]] }, (s) => `stage ${s}`);
    const byName = Object.fromEntries(o.series.map((s) => [s.name, [s.stack, s.data]]));
    expect(byName["stage new"]).toEqual(["users", [5]]);
    expect(byName["stage dormant"]).toEqual(["users", [-2]]);
    expect(byName["stage churned"]).toEqual(["users", [-4]]);
    expect(byName["stage active"]).toBeUndefined();
    expect(o.legend?.data).toEqual(["stage new", "stage returning", "stage resurrecting", "stage dormant", "stage churned"]);
  });
});

describe("exports and errors", () => {
  it("write CSV with quoting where a value needs it", () => {
    const csv = toCsv({ columns: [{ name: "a" }, { name: "b" }], rows: [["x,y", 'say "hi"'], [null, 3], [[1, 1], { k: 1 }]] });
    expect(csv).toBe('a,b\n"x,y","say ""hi"""\n,3\n"[1,1]","{""k"":1}"\n');
  });

  it("place a ruleset error at its line and column", () => {
    expect(ruleError("request body:3:7: unknown feature 'txn.amout_fen'")).toEqual({ line: 3, column: 7, message: "unknown feature 'txn.amout_fen'" });
    expect(ruleError("something else")).toBeUndefined();
  });
});

describe("risk and value charts", () => {
  const decision = (action: string, score: number | null) => ({
    seq: 1, event_id: "e", user_id: "u", ts: "2026-01-01T00:00:00Z", action, score, reasons: [], shadow_hits: [],
    ruleset_version: 1, model_version: null, elapsed_us: 10, fallback: null,
  });

  it("bin decision scores in tenths, stacked by action", () => {
    const o = decisionScoresOption([decision("allow", 0.05), decision("allow", 0.09), decision("review", 0.55), decision("block", 1.0), decision("block", null)]);
    expect(o.xAxis.data).toHaveLength(10);
    expect((o.xAxis.data as string[])[9]).toBe("0.9–1.0");
    const byName = Object.fromEntries(o.series.map((s) => [s.name, s.data]));
    expect(byName.allow).toEqual([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(byName.review).toEqual([0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(byName.block).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it("read a fraud model's measures from the registry, missing ones null", () => {
    const m = { purpose: "fraud", version: 2, created_unix_secs: 0, algo: "gbdt", training: {}, metrics: { valid_auc: 0.91, train: { auc: 0.97, average_precision: 0.6, top_decile_lift: 7.5 } } };
    expect(fraudMeasures(m)).toMatchObject({ version: 2, valid_auc: 0.91, auc: 0.97, ap: 0.6, lift: 7.5, brier: null });
    const o = modelMetricsOption([fraudMeasures(m), { version: 3, valid_auc: null, auc: 0.9, ap: 0.5 }], { valid_auc: "v", auc: "a", ap: "p" });
    expect(o.xAxis.data).toEqual(["v2", "v3"]);
    expect(o.series.map((s) => s.data)).toEqual([[0.91, null], [0.97, 0.9], [0.6, 0.5]]);
  });

  const acquisition = {
    columns: ["period", "user.channel", "new_users", "spend_fen", "cac_fen", "activated", "activation_rate", "activated_cac_fen", "payback_days", "ltv_fen", "ltv_to_cac", "payback_days_projected"],
    rows: [
      ["2026-01", "douyin", 10, 5000, 500, 5, 0.5, 1000, null, 1234.4, 2.4688, 40],
      ["2026-02", "douyin", 8, 4000, 500, 4, 0.5, 1000, null, null, null, null],
      ["2026-01", "app_store", 4, 0, null, 2, 0.5, null, null, 800, null, null],
      ["total", "douyin", 18, 9000, 500, 9, 0.5, 1000, null, 1100, 2.2, 45],
      ["total", "app_store", 4, 0, null, 2, 0.5, null, null, 800, null, null],
    ],
  };

  it("lay LTV out by cohort down and channel across, in yuan, totals left out", () => {
    const o = ltvHeatOption(acquisition);
    expect(o.xAxis.data).toEqual(["app_store", "douyin"]);
    expect(o.yAxis.data).toEqual(["2026-01", "2026-02"]);
    const cells = o.series[0].data as { value: unknown[]; label: { formatter: string } }[];
    expect(cells.map((c) => c.value)).toEqual([[1, 0, 12.34], [1, 1, null], [0, 0, 8]]);
    expect(cells[0].label.formatter).toBe("12.34");
  });

  it("set LTV against CAC per channel over the whole range, labelled with the ratio", () => {
    const o = ltvCacOption(acquisition, { ltv: "LTV", cac: "CAC" });
    expect(o.xAxis.data).toEqual(["app_store", "douyin"]);
    const ltv = o.series[0].data as { value: number | null; label: { show: boolean; formatter: string } }[];
    expect(ltv.map((b) => [b.value, b.label.formatter])).toEqual([[8, ""], [11, "2.20×"]]);
    expect(o.series[1].data).toEqual([null, 5]);
  });

  it("cut the acquisition table to LTV's columns with money in yuan", () => {
    const t = ltvTable(acquisition);
    expect(t.columns).toEqual(["period", "user.channel", "new_users", "cac_yuan", "ltv_yuan", "ltv_to_cac", "payback_days", "payback_days_projected"]);
    expect(t.rows[0]).toEqual(["2026-01", "douyin", 10, 5, 12.34, 2.4688, null, 40]);
  });
});
