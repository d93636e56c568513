import { describe, expect, it } from "vitest";
import { funnelOption, lifecycleOption, retentionOption, trendOption } from "../src/charts";
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
