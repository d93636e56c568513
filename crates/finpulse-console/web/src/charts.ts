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
  series: { type: string; name?: string; data: unknown[]; stack?: string; label?: Record<string, unknown>; itemStyle?: Record<string, unknown> }[];
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

/** A reason behind a decision, as `GET /v1/decisions/recent` answers it. */
export type Reason =
  | { kind: "list"; list: string }
  | { kind: "rule"; name: string; score: number; action: string }
  | { kind: "model"; feature: string; value: number | null; contribution: number };

/** One recorded decision, as `GET /v1/decisions/recent` answers it. */
export interface Decision {
  seq: number | null;
  event_id: string;
  user_id: string | null;
  ts: string;
  action: string;
  score: number | null;
  reasons: Reason[];
  shadow_hits: string[];
  ruleset_version: number | null;
  model_version: number | null;
  elapsed_us: number | null;
  fallback: string | null;
}

/** Each action's colour: allow green, review amber, block red (as the stream's badges). */
const ACTION_COLOURS: Record<string, string> = { allow: "#2e7d32", review: "#c77700", block: "#c62828" };

/** Score bins of the decision stream's histogram: [0, 0.1), …, [0.9, 1]. */
export const SCORE_BINS = 10;

/** The shown decisions' scores in tenths, one stacked bar series per action, so it shows how
 * close decisions come to the review and block thresholds. `label` names an action. */
export function decisionScoresOption(decisions: Decision[], label: (action: string) => string = (a) => a): ChartOption {
  const actions = ["allow", "review", "block"];
  const counts = actions.map(() => new Array<number>(SCORE_BINS).fill(0));
  for (const d of decisions) {
    const a = actions.indexOf(d.action);
    if (a < 0 || d.score === null) continue;
    counts[a][Math.min(SCORE_BINS - 1, Math.max(0, Math.floor(d.score * SCORE_BINS)))]++;
  }
  const bins = Array.from({ length: SCORE_BINS }, (_, i) => `${(i / SCORE_BINS).toFixed(1)}–${((i + 1) / SCORE_BINS).toFixed(1)}`);
  return {
    tooltip: { trigger: "axis" },
    legend: { data: actions.map(label) },
    // Room under the axis labels for the legend.
    grid: { top: 20, bottom: 70, left: 50, right: 20 },
    xAxis: { type: "category", data: bins },
    yAxis: { type: "value", minInterval: 1 },
    series: actions.map((a, i) => ({ type: "bar", name: label(a), stack: "decisions", data: counts[i], itemStyle: { color: ACTION_COLOURS[a] } })),
  };
}

/** A fraud model's measures by version, as the model registry keeps them. */
export interface ModelMeasures {
  version: number;
  valid_auc: number | null;
  auc: number | null;
  ap: number | null;
}

/** Validation AUC, training AUC and average precision side by side for each version (0 to 1). */
export function modelMetricsOption(versions: ModelMeasures[], names: { valid_auc: string; auc: string; ap: string }): ChartOption {
  const keys = ["valid_auc", "auc", "ap"] as const;
  return {
    tooltip: { trigger: "axis" },
    legend: { data: keys.map((k) => names[k]) },
    grid: { top: 30, bottom: 70, left: 50, right: 20 },
    xAxis: { type: "category", data: versions.map((v) => `v${v.version}`) },
    yAxis: { type: "value", min: 0, max: 1 },
    series: keys.map((k) => ({
      type: "bar",
      name: names[k],
      data: versions.map((v) => (v[k] === null ? null : Number(v[k]!.toFixed(3)))),
      label: { show: true, position: "top" },
    })),
  };
}

/** Fen as yuan, to two places. */
function yuan(fen: unknown): number | null {
  const v = numberOrNull(fen);
  return v === null ? null : Math.round(v) / 100;
}

/** LTV per new user by signup cohort (down) and channel or campaign (across), in yuan, from an
 * acquisition table; the whole-range rows (`total`) are left to the other chart. */
export function ltvHeatOption(table: Table): ChartOption {
  const names = columnNames(table);
  const periodAt = names.indexOf("period");
  const groupAt = names.findIndex((n) => n.startsWith("user."));
  const ltvAt = names.indexOf("ltv_fen");
  const rows = table.rows.filter((r) => r[periodAt] !== "total");
  const cohorts = [...new Set(rows.map((r) => String(r[periodAt])))].sort();
  const groups = [...new Set(rows.map((r) => String(r[groupAt] ?? "")))].sort();
  let max = 0;
  const data = rows.map((r) => {
    const v = yuan(r[ltvAt]);
    if (v !== null) max = Math.max(max, v);
    return { value: [groups.indexOf(String(r[groupAt] ?? "")), cohorts.indexOf(String(r[periodAt])), v] as [number, number, number | null], label: { formatter: v === null ? "" : v.toFixed(2) } };
  });
  return {
    tooltip: { position: "top" },
    grid: { top: 10, bottom: 100, left: 100 },
    xAxis: { type: "category", data: groups, splitArea: { show: true } },
    yAxis: { type: "category", data: cohorts, inverse: true, splitArea: { show: true } },
    visualMap: { min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0 },
    series: [{ type: "heatmap", name: "ltv", data, label: { show: cohorts.length <= 20 } }],
  };
}

/** Over the whole range, per channel or campaign: LTV and CAC per new user in yuan, side by
 * side, each LTV bar labelled with its LTV:CAC. `names` labels the two series. */
export function ltvCacOption(table: Table, names: { ltv: string; cac: string }): ChartOption {
  const cols = columnNames(table);
  const periodAt = cols.indexOf("period");
  const groupAt = cols.findIndex((n) => n.startsWith("user."));
  const at = (n: string) => cols.indexOf(n);
  const totals = table.rows.filter((r) => r[periodAt] === "total").sort((a, b) => String(a[groupAt]).localeCompare(String(b[groupAt])));
  return {
    tooltip: { trigger: "axis" },
    legend: { data: [names.ltv, names.cac] },
    grid: { top: 30, bottom: 70, left: 60, right: 20 },
    xAxis: { type: "category", data: totals.map((r) => String(r[groupAt] ?? "")) },
    yAxis: { type: "value" },
    series: [
      {
        type: "bar",
        name: names.ltv,
        data: totals.map((r) => {
          const ratio = numberOrNull(r[at("ltv_to_cac")]);
          return { value: yuan(r[at("ltv_fen")]), label: { show: ratio !== null, position: "top", formatter: ratio === null ? "" : `${ratio.toFixed(2)}×` } };
        }),
      },
      { type: "bar", name: names.cac, data: totals.map((r) => yuan(r[at("cac_fen")])) },
    ],
  };
}

/** A model version as `GET /v1/models` answers it (the parts the console reads). */
export interface ModelVersion {
  purpose: string;
  version: number;
  created_unix_secs: number;
  algo: string;
  training: Record<string, unknown>;
  metrics: { valid_auc?: number | null; train?: { rows?: number; positive_rate?: number; auc?: number | null; average_precision?: number | null; log_loss?: number; brier?: number; top_decile_lift?: number } };
}

/** The measures of one fraud model version, as the registry keeps them. */
export function fraudMeasures(m: ModelVersion): ModelMeasures & { lift: number | null; log_loss: number | null; brier: number | null; positive_rate: number | null; rows: number | null } {
  const tr = m.metrics?.train ?? {};
  const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  return {
    version: m.version,
    valid_auc: num(m.metrics?.valid_auc),
    auc: num(tr.auc),
    ap: num(tr.average_precision),
    lift: num(tr.top_decile_lift),
    log_loss: num(tr.log_loss),
    brier: num(tr.brier),
    positive_rate: num(tr.positive_rate),
    rows: num(tr.rows),
  };
}


/** The acquisition table cut to what the LTV screen is about, money in yuan. */
export function ltvTable(table: Table): Table {
  const names = columnNames(table);
  const keep = ["period", names.find((n) => n.startsWith("user.")) ?? "", "new_users", "cac_fen", "ltv_fen", "ltv_to_cac", "payback_days", "payback_days_projected"];
  const at = keep.map((n) => names.indexOf(n));
  const money = (n: string) => n.endsWith("_fen");
  return {
    columns: keep.map((n) => (money(n) ? n.replace(/_fen$/, "_yuan") : n)),
    rows: table.rows.map((r) => at.map((i, k) => (i < 0 ? null : money(keep[k]) && typeof r[i] === "number" ? Math.round(r[i] as number) / 100 : r[i]))),
  };
}

