// Chart options built from the API's table answers. Pure functions (no ECharts, no DOM), so
// unit tests check what each chart will draw.

import type { Table } from "./api";
import { columnNames } from "./api";

/** The part of an ECharts option these builders use. */
export interface ChartOption {
  tooltip: Record<string, unknown>;
  legend?: { data: string[] };
  grid?: Record<string, unknown>;
  xAxis: Record<string, unknown>;
  yAxis: Record<string, unknown>;
  visualMap?: Record<string, unknown>;
  series: { type: string; name?: string; data: unknown[]; stack?: string; label?: Record<string, unknown> }[];
}

function numberOrNull(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** Trends (or any period-first table): one line per numeric column, periods along x. */
export function trendOption(table: Table): ChartOption {
  const names = columnNames(table);
  const periodAt = Math.max(0, names.indexOf("period"));
  const valueColumns = names.map((n, i) => ({ n, i })).filter(({ i }) => i !== periodAt && table.rows.some((r) => typeof r[i] === "number"));
  const hasBreakdown = names.includes("breakdown");
  if (hasBreakdown) {
    // One line per breakdown value of the first numeric column.
    const at = names.indexOf("breakdown");
    const value = valueColumns.find(({ n }) => n !== "breakdown")?.i ?? periodAt + 1;
    const periods = [...new Set(table.rows.map((r) => String(r[periodAt])))].sort();
    const groups = [...new Set(table.rows.map((r) => String(r[at] ?? "")))];
    return {
      tooltip: { trigger: "axis" },
      legend: { data: groups },
      xAxis: { type: "category", data: periods },
      yAxis: { type: "value" },
      series: groups.map((g) => ({
        type: "line",
        name: g,
        data: periods.map((p) => numberOrNull(table.rows.find((r) => String(r[periodAt]) === p && String(r[at] ?? "") === g)?.[value])),
      })),
    };
  }
  return {
    tooltip: { trigger: "axis" },
    legend: { data: valueColumns.map(({ n }) => n) },
    xAxis: { type: "category", data: table.rows.map((r) => String(r[periodAt])) },
    yAxis: { type: "value" },
    series: valueColumns.map(({ n, i }) => ({ type: "line", name: n, data: table.rows.map((r) => numberOrNull(r[i])) })),
  };
}

/** A funnel: users reaching each step as bars, labelled with conversion from the first. */
export function funnelOption(table: Table): ChartOption {
  const names = columnNames(table);
  const event = names.indexOf("event");
  const users = names.indexOf("users");
  const conversion = names.indexOf("conversion");
  return {
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: table.rows.map((r) => String(r[event])) },
    yAxis: { type: "value" },
    series: [
      {
        type: "bar",
        name: "users",
        // Each bar labelled with its users and the share of the first step's: "1234 (37.5%)".
        data: table.rows.map((r) => {
          const n = numberOrNull(r[users]);
          const c = numberOrNull(r[conversion]);
          return { value: n, label: { show: true, position: "top", formatter: c === null ? `${n ?? ""}` : `${n} (${(c * 100).toFixed(1)}%)` } };
        }),
      },
    ],
  };
}

/** Retention as a heat map: cohorts down, periods across, the share (or count) in each cell. */
export function retentionOption(table: Table): ChartOption {
  const names = columnNames(table);
  const cohortAt = names.indexOf("cohort");
  const periodColumns = names.map((n, i) => ({ n, i })).filter(({ n }) => /^(day|week|month)_\d+$/.test(n));
  const cohorts = table.rows.map((r) => String(r[cohortAt]));
  // Shares (at most 1) read as percentages; counts as they are.
  const shares = table.rows.every((r) => periodColumns.every(({ i }) => (numberOrNull(r[i]) ?? 0) <= 1));
  const data: { value: [number, number, number | null]; label: { formatter: string } }[] = [];
  let max = 0;
  table.rows.forEach((r, y) =>
    periodColumns.forEach(({ i }, x) => {
      const v = numberOrNull(r[i]);
      if (v !== null) max = Math.max(max, v);
      const text = v === null ? "" : shares ? `${(v * 100).toFixed(1)}%` : String(v);
      data.push({ value: [x, y, v], label: { formatter: text } });
    }),
  );
  return {
    tooltip: { position: "top" },
    grid: { top: 10, bottom: 60, left: 90 },
    xAxis: { type: "category", data: periodColumns.map(({ n }) => n), splitArea: { show: true } },
    yAxis: { type: "category", data: cohorts, inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
    series: [{ type: "heatmap", name: "retention", data, label: { show: table.rows.length <= 20 } }],
  };
}

/** Lifecycle stages as one stacked bar per period, dormant and churned below the axis (ECharts
 * stacks negative values apart from positive ones); `label` names each stage. */
export function lifecycleOption(table: Table, label: (stage: string) => string = (s) => s): ChartOption {
  const names = columnNames(table);
  const periodAt = names.indexOf("period");
  const stages = ["new", "returning", "resurrecting", "dormant", "churned"].filter((s) => names.includes(s));
  const below = new Set(["dormant", "churned"]);
  return {
    tooltip: { trigger: "axis" },
    legend: { data: stages.map(label) },
    xAxis: { type: "category", data: table.rows.map((r) => String(r[periodAt])) },
    yAxis: { type: "value" },
    series: stages.map((s) => {
      const at = names.indexOf(s);
      return {
        type: "bar",
        name: label(s),
        stack: "users",
        data: table.rows.map((r) => {
          const v = numberOrNull(r[at]);
          return v === null ? null : below.has(s) ? -Math.abs(v) : v;
        }),
      };
    }),
  };
}
