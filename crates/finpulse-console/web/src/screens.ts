// Every screen: what it needs (a permission from /v1/auth/whoami) and how it draws itself from
// the API. Screens keep their state in the query string, so a URL is a shareable view.

import { call, columnNames, get, post, type Table } from "./api";
import { chart } from "./chart";
import { funnelOption, lifecycleOption, retentionOption, trendOption, type ChartOption } from "./charts";
import { clear, h } from "./dom";
import { ageText, t, type MessageKey } from "./i18n";
import { RULES_DRAFT_KEY, RULESET_TEMPLATE, ruleError } from "./rules";
import { countOps, emptyRow, propertyOps, ruleKinds, ruleText, type RuleKind, type RuleRow } from "./segment";
import { localToday, presetOf, presetRange, rangePresets, type RangePreset } from "./dates";
import type { Problem } from "./editor";
import { errorLine, exportButtons, field, getOrNothing, objectsTable, searchForm, setParams, tableView, type Screen } from "./widgets";
import { decisions, fraud, lists } from "./risk";
import { ltv } from "./value";

export type { Context, Screen } from "./widgets";

const overview: Screen = {
  path: "/overview",
  title: "nav.overview",
  async render(el, { who }) {
    const can = (p: string) => who.permissions.includes(p);
    const tiles = h("div", { class: "tiles" });
    el.append(h("p", {}, `${t("overview.signed_in_as")}: ${who.actor} (${who.role}, ${who.tenant})`), tiles);
    const tile = (label: MessageKey, value: string | number) =>
      tiles.append(h("div", { class: "tile" }, h("span", { class: "tile-label" }, t(label)), h("span", { class: "tile-value" }, String(value))));
    const health = await get<{ events_stored: number }>("/healthz");
    tile("overview.events", health.events_stored.toLocaleString());
    if (can("read_cases")) {
      const cases = await get<{ cases: unknown[] }>("/v1/cases?status=open&limit=10000");
      tile("overview.open_cases", cases.cases.length);
    }
    if (can("run_sql")) {
      const today = new Date().toISOString().slice(0, 10);
      const r = await post<Table>("/v1/sql", { query: `SELECT count(*) AS n FROM events WHERE type = 'risk_decision' AND ts >= TIMESTAMP '${today}T00:00:00Z'` });
      tile("overview.decisions_today", String(r.rows[0]?.[0] ?? 0));
    }
    if (can("read_insights")) {
      el.append(h("h2", {}, t("overview.goals")));
      const goals = await get<Table>("/v1/goals");
      el.append(tableView(goals, "goals"));
    }
  },
};

const periods = ["day", "week", "month"] as const;

const insightKinds = ["trends", "funnel", "retention", "lifecycle", "acquisition", "activation"] as const;
type InsightKind = (typeof insightKinds)[number];

function insightChart(kind: InsightKind, table: Table): ChartOption | undefined {
  switch (kind) {
    case "trends":
      return trendOption(table);
    case "funnel":
      return funnelOption(table);
    case "retention":
      return retentionOption(table);
    case "lifecycle":
      return lifecycleOption(table, (stage) => t(`stage.${stage}` as MessageKey));
    default:
      return undefined;
  }
}

const insights: Screen = {
  path: "/insights",
  title: "nav.insights",
  needs: "read_insights",
  async render(el, { params }) {
    const kind = (insightKinds as readonly string[]).includes(params.get("kind") ?? "") ? (params.get("kind") as InsightKind) : "trends";
    const tabs = h(
      "div",
      { class: "tabs", role: "tablist" },
      ...insightKinds.map((k) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            "aria-selected": k === kind ? "true" : "false",
            "data-kind": k,
            onclick: () => {
              // Another kind over the same days.
              const q = new URLSearchParams({ kind: k });
              if (range !== "all") q.set("range", range);
              if (range === "custom") {
                if (from.value) q.set("from", from.value);
                if (to.value) q.set("to", to.value);
              }
              history.replaceState(null, "", `/insights?${q}`);
              window.dispatchEvent(new PopStateEvent("popstate"));
            },
          },
          t(`insight.${k}` as MessageKey),
        ),
      ),
    );
    const form = h("form", { class: "controls" });
    const out = h("div", { class: "insight-out" });
    // The days every kind is asked about: a preset (kept in the URL as `range`, so a shared
    // link means "the last 30 days" to whoever opens it) or, for custom, `from` and `to`.
    let range: RangePreset = presetOf(params);
    const from = h("input", { name: "from", id: "insight-from", type: "date", value: range === "custom" ? (params.get("from") ?? "") : "" });
    const to = h("input", { name: "to", id: "insight-to", type: "date", value: range === "custom" ? (params.get("to") ?? "") : "" });
    const fill = () => {
      if (range === "custom") return;
      const days = presetRange(range, localToday());
      from.value = days?.from ?? "";
      to.value = days?.to ?? "";
    };
    fill();
    const presetButtons = rangePresets.map((p) =>
      h(
        "button",
        {
          type: "button",
          "data-range": p,
          "aria-pressed": p === range ? "true" : "false",
          onclick: () => {
            choose(p);
            if (p === "custom") from.focus();
            else void run();
          },
        },
        t(`range.${p}` as MessageKey),
      ),
    );
    const choose = (p: RangePreset) => {
      range = p;
      for (const b of presetButtons) b.setAttribute("aria-pressed", b.dataset.range === p ? "true" : "false");
      fill();
    };
    // Typing a day makes the range custom.
    for (const i of [from, to]) i.addEventListener("input", () => range !== "custom" && choose("custom"));
    const rangeBox = h(
      "fieldset",
      { class: "range", id: "insight-range" },
      h("legend", {}, t("field.range")),
      h("div", { class: "presets" }, ...presetButtons),
      field("field.from", from),
      field("field.to", to),
    );
    form.append(rangeBox);
    el.append(tabs, form, out);
    const inputs: Record<string, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement> = {};
    const input = (name: string, label: MessageKey, value: string, type = "text") => {
      const i = h("input", { name, value: params.get(name) ?? value, type });
      inputs[name] = i;
      form.append(field(label, i));
    };
    if (kind === "trends") {
      input("event", "field.event", "app_session");
      const s = h("select", { name: "interval" }, ...periods.map((v) => h("option", { value: v, selected: (params.get("interval") ?? "day") === v }, t(`period.${v}`))));
      inputs.interval = s;
      form.append(field("field.interval", s));
    } else if (kind === "funnel") {
      const steps = h("textarea", { name: "steps", rows: 4 }, params.get("steps") ?? "user_signup\nidentity_verified\ncard_bound\ndeposit");
      inputs.steps = steps;
      form.append(field("field.steps", steps));
      input("window", "field.window", "7d");
    } else if (kind === "retention") {
      const s = h("select", { name: "period" }, ...periods.map((v) => h("option", { value: v, selected: (params.get("period") ?? "week") === v }, t(`period.${v}`))));
      inputs.period = s;
      form.append(field("field.period", s));
      input("periods", "field.periods", "8", "number");
    } else if (kind === "lifecycle") {
      const s = h("select", { name: "interval" }, ...periods.map((v) => h("option", { value: v, selected: (params.get("interval") ?? "week") === v }, t(`period.${v}`))));
      inputs.interval = s;
      form.append(field("field.interval", s));
    }
    // Every insight takes a date range, a breakdown and a filter.
    input("breakdown", "field.breakdown", "");
    input("filter", "field.filter", "");
    form.append(h("button", { type: "submit", id: "insight-run" }, t("action.run")));
    const run = async () => {
      clear(out);
      const values: Record<string, string> = { kind };
      for (const [k, i] of Object.entries(inputs)) values[k] = i.value;
      setParams({ ...values, range: range === "all" ? "" : range, from: range === "custom" ? from.value : "", to: range === "custom" ? to.value : "" });
      const body: Record<string, unknown> = {};
      if (from.value) body.from = from.value;
      if (to.value) body.to = to.value;
      if (values.breakdown) body.breakdown = values.breakdown;
      if (values.filter) body.filters = [values.filter];
      if (kind === "trends") Object.assign(body, { event: values.event, interval: values.interval });
      if (kind === "funnel") Object.assign(body, { steps: values.steps.split("\n").map((s) => s.trim()).filter(Boolean), window: values.window });
      if (kind === "retention") Object.assign(body, { period: values.period, periods: Number(values.periods) });
      if (kind === "lifecycle") Object.assign(body, { interval: values.interval });
      try {
        const table = await post<Table>(`/v1/insights/${kind}`, body);
        const option = insightChart(kind, table);
        const drill = h("div", { id: "drill" });
        // Retention: a cell's users; the funnel: who dropped at a step.
        const onCell =
          kind === "retention" && !values.breakdown
            ? (x: number, y: number) => {
                const cohort = String(table.rows[y]?.[columnNames(table).indexOf("cohort")]);
                void drillDown(drill, `/v1/insights/retention`, { ...body, cohort, period_index: x }, `${cohort} · ${x}`);
              }
            : undefined;
        const c = option && chart(option, kind, onCell);
        out.append(exportButtons(kind, table, c ?? undefined));
        if (c) out.append(c);
        // The heat map's cells by keyboard: a cohort and a period, then its users.
        if (onCell && table.rows.length) out.append(retentionPicker(table, onCell));
        if (kind === "funnel" && !values.breakdown && table.rows.length > 1) {
          out.append(
            h(
              "div",
              { class: "actions" },
              ...table.rows.slice(1).map((r, i) =>
                h(
                  "button",
                  { type: "button", "data-dropped-at": i + 2, onclick: () => void drillDown(drill, "/v1/insights/funnel", { ...body, dropped_at: i + 2 }, String(r[1])) },
                  t("action.dropped_at", { step: String(r[1]) }),
                ),
              ),
            ),
          );
        }
        out.append(tableView(table, "insight-table"), drill);
      } catch (e) {
        out.append(errorLine(e));
      }
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      void run();
    });
    await run();
  },
};

/** A cohort and a period of a retention table, chosen without a pointer: `show` gets the
 * heat map cell's x (period) and y (cohort) indexes. */
function retentionPicker(table: Table, show: (x: number, y: number) => void): HTMLElement {
  const names = columnNames(table);
  const cohortAt = names.indexOf("cohort");
  const periods = names.filter((n) => /^(day|week|month)_\d+$/.test(n));
  const cohort = h("select", { id: "retention-cohort" }, ...table.rows.map((r, y) => h("option", { value: y }, String(r[cohortAt]))));
  const period = h("select", { id: "retention-period" }, ...periods.map((p, x) => h("option", { value: x }, p)));
  return h(
    "div",
    { class: "controls" },
    field("field.cohort", cohort),
    field("field.period_n", period),
    h("button", { type: "button", id: "retention-users", onclick: () => show(Number(period.value), Number(cohort.value)) }, t("action.show_users")),
  );
}

/** The users behind one number of an insight, listed under it. */
async function drillDown(el: HTMLElement, path: string, body: Record<string, unknown>, what: string): Promise<void> {
  clear(el);
  try {
    const users = await post<Table>(path, { ...body, limit: 1000 });
    el.append(h("h2", {}, t("msg.users_behind", { what })), exportButtons("users", users), tableView(users, "drill-table"));
  } catch (e) {
    el.append(errorLine(e));
  }
}

interface SegmentInfo {
  name: string;
  description: string;
  rules: string[];
  state?: { members: number; as_of: string } | null;
}

interface SchemaBody {
  types: { name: string; scope?: string; fields: { name: string; type: string; exposure?: string }[] }[];
}

const segments: Screen = {
  path: "/segments",
  title: "nav.segments",
  needs: "read_insights",
  async render(el, { who }) {
    // The saved segments and a members button each, drawn again after a save.
    const list = h("div", { id: "segment-list" });
    const members = h("div", { id: "segment-members" });
    const showMembers = async (name: string) => {
      clear(members);
      try {
        const m = await get<{ members: string[] }>(`/v1/segments/${encodeURIComponent(name)}/members?limit=100000`);
        const table: Table = { columns: ["user_id"], rows: m.members.map((u) => [u]) };
        members.append(h("h2", {}, t("msg.users_behind", { what: name })), exportButtons(`segment-${name}`, table), tableView(table, "segment-members-table"));
      } catch (e) {
        members.append(errorLine(e));
      }
    };
    const loadList = async () => {
      const r = await get<{ segments: SegmentInfo[] }>("/v1/segments");
      clear(list);
      list.append(
        tableView(
          {
            columns: ["name", "rules", "members", "as_of"],
            rows: r.segments.map((s) => [s.name, s.rules.join(" AND "), s.state?.members ?? null, s.state?.as_of ?? null]),
          },
          "segments",
        ),
        // A segment's members, for a campaign list.
        h(
          "div",
          { class: "actions" },
          ...r.segments.map((s) => h("button", { type: "button", "data-segment": s.name, onclick: () => void showMembers(s.name) }, `${t("action.members")}: ${s.name}`)),
        ),
      );
    };
    await loadList();
    el.append(list, members);
    if (!who.permissions.includes("edit_growth")) return;
    const schema = await get<SchemaBody>("/v1/schema");
    el.append(segmentBuilder(schema, loadList, showMembers));
  },
};

/** The segment builder: rules row by row, each shown as the text it makes; Save posts them. */
function segmentBuilder(schema: SchemaBody, saved: () => Promise<void>, showMembers: (name: string) => Promise<void>): HTMLElement {
  // Events a user does; user properties every reader may see (the others an insight refuses).
  const events = schema.types
    .filter((ty) => ty.scope === undefined || ty.scope === "user")
    .map((ty) => ty.name)
    .sort();
  const signup = schema.types.find((ty) => ty.name === "user_signup");
  const properties = (signup?.fields ?? []).filter((f) => (f.exposure ?? "shown") === "shown");
  const typeOf = (field: string) => properties.find((f) => f.name === field)?.type;

  const name = h("input", { id: "segment-name", name: "name", autocomplete: "off", spellcheck: false });
  const description = h("input", { id: "segment-description", name: "description", autocomplete: "off" });
  const rows = h("ol", { id: "segment-rules", class: "rule-rows" });
  const preview = h("pre", { id: "segment-preview", class: "rule-preview", "aria-live": "polite" });
  const error = h("div", { id: "segment-error", role: "alert" });
  const result = h("div", { id: "segment-result", role: "status" });
  const live: { row: RuleRow; el: HTMLElement; shown: HTMLOutputElement }[] = [];

  const select = (part: string, label: string, value: string, options: [string, string][], onchange: (v: string) => void) =>
    h(
      "select",
      { "data-part": part, "aria-label": label, onchange: (e: Event) => onchange((e.target as HTMLSelectElement).value) },
      ...options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)),
    );
  const text = (part: string, value: string, oninput: (v: string) => void, attrs: Record<string, string | number | boolean> = {}) =>
    h("input", { "data-part": part, value, oninput: (e: Event) => oninput((e.target as HTMLInputElement).value), autocomplete: "off", ...attrs });
  const labelled = (label: MessageKey, input: HTMLElement) => h("label", { class: "field" }, h("span", {}, t(label)), input);

  const refresh = () => {
    const texts: string[] = [];
    live.forEach(({ row, el, shown }, i) => {
      el.setAttribute("data-row", String(i));
      const r = ruleText(row);
      shown.textContent = "text" in r ? r.text : t(r.error, r.params);
      shown.className = "text" in r ? "rule-text" : "rule-text error";
      el.classList.toggle("invalid", !("text" in r));
      el.querySelector<HTMLElement>("[data-part=remove]")?.setAttribute("aria-label", t("action.remove_rule", { n: i + 1 }));
      if ("text" in r) texts.push(r.text);
    });
    preview.textContent = texts.join("\nAND ");
  };

  const addRow = (focus: boolean) => {
    const row = emptyRow("did", events[0] ?? "", properties[0]?.name ?? "");
    const parts = h("div", { class: "rule-parts" });
    const shown = h("output", { class: "rule-text", "data-part": "text" });
    const drawParts = () => {
      clear(parts);
      if (row.kind === "did" || row.kind === "not") {
        parts.append(
          labelled("field.event", select("event", t("field.event"), row.event, events.map((e) => [e, e]), (v) => ((row.event = v), refresh()))),
        );
        if (row.kind === "did") {
          const count = text("count", row.count, (v) => ((row.count = v), refresh()), { type: "number", min: 0, step: 1, inputmode: "numeric", disabled: !row.op });
          parts.append(
            labelled(
              "field.compare",
              select("op", t("field.compare"), row.op, countOps.map((o) => [o, o || t("rule.at_least_once")]), (v) => {
                row.op = v;
                count.disabled = !v;
                refresh();
              }),
            ),
            labelled("field.count", count),
          );
        }
        parts.append(labelled("field.days", text("days", row.days, (v) => ((row.days = v), refresh()), { type: "number", min: 1, step: 1, inputmode: "numeric" })));
      } else {
        parts.append(
          labelled(
            "field.property",
            select("field", t("field.property"), row.field, properties.map((f) => [f.name, `user.${f.name}`]), (v) => {
              row.field = v;
              row.fieldType = typeOf(v);
              refresh();
            }),
          ),
          labelled("field.compare", select("op", t("field.compare"), row.op, propertyOps.map((o) => [o, o]), (v) => ((row.op = v), refresh()))),
          labelled("field.value", text("value", row.value, (v) => ((row.value = v), refresh()))),
        );
      }
    };
    const kind = select("kind", t("field.rule_kind"), row.kind, ruleKinds.map((k) => [k, t(`rule.${k}`)]), (v) => {
      const k = v as RuleKind;
      if (k === row.kind) return;
      // A property compares with = by default; a count starts at "at least once".
      if ((k === "user") !== (row.kind === "user")) row.op = k === "user" ? "=" : "";
      row.kind = k;
      drawParts();
      refresh();
    });
    row.fieldType = typeOf(row.field);
    const item: { row: RuleRow; el: HTMLElement; shown: HTMLOutputElement } = { row, el: h("li", { class: "rule-row" }), shown };
    const remove = h(
      "button",
      {
        type: "button",
        "data-part": "remove",
        onclick: () => {
          const at = live.indexOf(item);
          live.splice(at, 1);
          item.el.remove();
          refresh();
          // Focus stays in the list: the next row's kind, else the add button.
          (live[at]?.el.querySelector<HTMLElement>("[data-part=kind]") ?? add).focus();
        },
      },
      "×",
    );
    item.el.append(labelled("field.rule_kind", kind), parts, shown, remove);
    drawParts();
    live.push(item);
    rows.append(item.el);
    refresh();
    if (focus) kind.focus();
  };

  const add = h("button", { type: "button", id: "segment-add-rule", onclick: () => addRow(true) }, t("action.add_rule"));
  const save = async () => {
    clear(error);
    clear(result);
    live.forEach(({ el }) => el.classList.remove("refused"));
    name.removeAttribute("aria-invalid");
    const rules: string[] = [];
    for (const [i, { row }] of live.entries()) {
      const r = ruleText(row);
      if (!("text" in r)) {
        error.append(h("p", { class: "error" }, t("segment.err_row", { n: i + 1, error: t(r.error, r.params) })));
        return;
      }
      rules.push(r.text);
    }
    if (rules.length === 0) {
      error.append(h("p", { class: "error" }, t("segment.err_rules")));
      return;
    }
    try {
      const body = await post<{ name: string; rules: string[]; state?: { members: number; as_of: string } }>("/v1/segments", {
        name: name.value.trim(),
        description: description.value,
        rules,
      });
      result.append(
        h(
          "p",
          { class: "ok", id: "segment-saved", "data-members": body.state?.members ?? "" },
          t("msg.segment_saved", { name: body.name, n: body.state?.members ?? "-", as_of: body.state?.as_of ?? "-" }),
        ),
        h("button", { type: "button", id: "segment-saved-members", onclick: () => void showMembers(body.name) }, `${t("action.members")}: ${body.name}`),
      );
      await saved();
    } catch (e) {
      // The server names what it refused: `name: …` or `rules[i]: …`; mark that input too.
      const message = e instanceof Error ? e.message : String(e);
      const at = /^rules\[(\d+)\]/.exec(message);
      if (at) live[Number(at[1])]?.el.classList.add("refused");
      if (/^name\b/.test(message)) name.setAttribute("aria-invalid", "true");
      error.append(errorLine(e));
    }
  };
  const form = h(
    "form",
    {
      id: "segment-form",
      class: "segment-form",
      // The builder says what is wrong itself, in the page's language, beside the rule.
      novalidate: true,
      "aria-labelledby": "segment-new",
      onsubmit: (e: Event) => {
        e.preventDefault();
        void save();
      },
    },
    h("h2", { id: "segment-new" }, t("segment.new")),
    h("div", { class: "controls" }, field("field.segment_name", name), field("field.description", description)),
    h("fieldset", { class: "rules" }, h("legend", {}, t("segment.rules")), rows, add),
    h("p", { class: "meta" }, t("segment.preview")),
    preview,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "segment-save" }, t("action.save"))),
    error,
    result,
  );
  addRow(false);
  return form;
}

const users: Screen = {
  path: "/users",
  title: "nav.users",
  needs: "read_users",
  async render(el, { params, who }) {
    const id = h("input", { name: "id", value: params.get("id") ?? "", id: "user-id" });
    const out = h("div", {});
    const look = async () => {
      clear(out);
      if (!id.value) return;
      setParams({ id: id.value });
      try {
        const profile = await get<Record<string, unknown>>(`/v1/users/${encodeURIComponent(id.value)}`);
        out.append(tableView({ columns: ["field", "value"], rows: Object.entries(profile).map(([k, v]) => [k, v]) }, "profile"));
        if (who.permissions.includes("run_sql")) {
          const quoted = id.value.replace(/'/g, "''");
          const decisions = await post<Table>("/v1/sql", {
            query: `SELECT ts, target_event_id, decision, risk_score, reasons FROM risk_decision WHERE user_id = '${quoted}' ORDER BY ts DESC LIMIT 20`,
          });
          out.append(h("h2", {}, t("msg.recent_decisions")), tableView(decisions, "user-decisions"));
        }
      } catch (e) {
        out.append(errorLine(e));
      }
    };
    el.append(searchForm("field.user_id", id, look), out);
    await look();
  },
};

interface Case {
  case_id: string;
  user_id: string;
  status: string;
  assignee: string | null;
  opened_us: number;
  alerts: { event_id: string; score: number; action: string }[];
  history: { action: string; by: string; at_us: number; text?: string }[];
  resolution: unknown;
}

const cases: Screen = {
  path: "/cases",
  title: "nav.cases",
  needs: "read_cases",
  async render(el, { who, params }) {
    const status = params.get("status") ?? "open";
    const assignee = params.get("assignee") ?? "anyone";
    const sort = params.get("sort") ?? "newest";
    // Each control keeps its choice in the URL and redraws the screen.
    const control = (id: string, name: string, value: string, options: [string, MessageKey][]) =>
      h(
        "select",
        {
          id,
          onchange: (e: Event) => {
            setParams({ [name]: (e.target as HTMLSelectElement).value });
            window.dispatchEvent(new PopStateEvent("popstate"));
          },
        },
        ...options.map(([v, label]) => h("option", { value: v, selected: v === value }, t(label))),
      );
    el.append(
      h(
        "div",
        { class: "controls" },
        field("field.status", control("case-status", "status", status, ["open", "resolved", "all"].map((s) => [s, `status.${s}` as MessageKey]))),
        field("field.assignee", control("case-assignee", "assignee", assignee, ["anyone", "mine", "unassigned"].map((s) => [s, `assignee.${s}` as MessageKey]))),
        field("field.sort", control("case-sort", "sort", sort, ["newest", "oldest", "score"].map((s) => [s, `sort.${s}` as MessageKey]))),
      ),
    );
    const q = (status === "all" ? "" : `&status=${status}`) + (assignee === "mine" ? `&assignee=${encodeURIComponent(who.actor)}` : "");
    const list = await get<{ cases: Case[] }>(`/v1/cases?limit=1000${q}`);
    const topScore = (c: Case) => Math.max(...c.alerts.map((a) => a.score));
    list.cases = list.cases.filter((c) => assignee !== "unassigned" || !c.assignee);
    if (sort === "oldest") list.cases.sort((a, b) => a.opened_us - b.opened_us);
    if (sort === "score") list.cases.sort((a, b) => topScore(b) - topScore(a));
    const canChange = who.permissions.includes("change_cases");
    if (list.cases.length === 0) {
      el.append(h("p", { class: "empty" }, t("msg.empty")));
      return;
    }
    const table = h(
      "table",
      { id: "cases" },
      h("thead", {}, h("tr", {}, ...(["col.case", "field.user_id", "field.status", "field.assignee", "col.age", "col.score"] as MessageKey[]).map((c) => h("th", {}, t(c))), h("th", {}))),
    );
    const body = h("tbody", {});
    table.append(body);
    for (const c of list.cases) {
      const actions = h("div", { class: "case-actions" });
      if (canChange && c.status !== "resolved") {
        const note = h("input", { placeholder: t("field.note"), "aria-label": t("field.note") });
        const act = async (action: string, payload: Record<string, unknown>) => {
          try {
            await post(`/v1/cases/${encodeURIComponent(c.case_id)}/${action}`, payload);
            window.dispatchEvent(new PopStateEvent("popstate"));
          } catch (e) {
            actions.append(errorLine(e));
          }
        };
        actions.append(
          note,
          h("button", { type: "button", "data-action": "assign", onclick: () => act("assign", { assignee: who.actor }) }, t("action.assign")),
          h("button", { type: "button", "data-action": "comment", onclick: () => act("comment", { text: note.value || "-" }) }, t("action.comment")),
          h("button", { type: "button", "data-action": "resolve-fraud", onclick: () => act("resolve", { label: "fraud", note: note.value }) }, `${t("action.resolve")}: ${t("verdict.fraud")}`),
          h("button", { type: "button", "data-action": "resolve-genuine", onclick: () => act("resolve", { label: "genuine", note: note.value }) }, `${t("action.resolve")}: ${t("verdict.genuine")}`),
        );
      }
      const top = Math.max(...c.alerts.map((a) => a.score));
      const history = [...c.alerts.map((a) => `${a.action} ${a.event_id} (${a.score.toFixed(2)})`), ...c.history.map((x) => `${x.action} · ${x.by}${x.text ? ` · ${x.text}` : ""}`)];
      body.append(
        h(
          "tr",
          { "data-case": c.case_id, "data-status": c.status },
          h("td", {}, c.case_id),
          h("td", {}, c.user_id),
          h("td", {}, t((c.status === "open" && c.assignee ? "status.assigned" : `status.${c.status}`) as MessageKey)),
          h("td", {}, c.assignee ?? ""),
          h("td", { "data-opened-us": c.opened_us }, ageText(c.opened_us, Date.now())),
          h("td", {}, Number.isFinite(top) ? top.toFixed(2) : ""),
          h("td", {}, actions),
        ),
        h("tr", { class: "case-history" }, h("td", { colspan: 7 }, h("details", {}, h("summary", {}, t("msg.case_history", { n: history.length })), h("ul", {}, ...history.map((x) => h("li", {}, x)))))),
      );
    }
    el.append(h("div", { class: "table-wrap" }, table));
  },
};

const rules: Screen = {
  path: "/rules",
  title: "nav.rules",
  needs: "read_cases",
  async render(el, { who, params }) {
    const active = await get<{ name: string; version: number; review_at: number; block_at: number; rules: { name: string; action: string; score: number; shadow: boolean; features: string[] }[] }>("/v1/rules");
    el.append(
      h("p", {}, `${active.name} v${active.version} · review ≥ ${active.review_at} · block ≥ ${active.block_at}`),
      tableView({ columns: ["name", "action", "score", "shadow", "features"], rows: active.rules.map((r) => [r.name, r.action, r.score, r.shadow, r.features.join(", ")]) }, "rules"),
    );
    if (!who.permissions.includes("publish_rules")) return;
    const host = h("div", { id: "rules-editor" });
    const check = h("p", { id: "rules-check", class: "meta", "aria-live": "polite" });
    const result = h("div", { id: "rules-result", role: "status" });
    // After each pause in typing the server compiles the text (nothing is stored); the first
    // error is marked in the editor and said under it, at its line and column.
    const checkRules = async (text: string): Promise<Problem | undefined> => {
      const r = await call<{ ok: boolean; line?: number; column?: number; message?: string; rules: number }>("POST", "/v1/rules/check", { text });
      clear(check);
      check.removeAttribute("data-line");
      check.removeAttribute("data-column");
      check.className = r.body.ok ? "ok" : "error";
      if (r.body.ok) {
        check.append(t("msg.rules_ok", { n: r.body.rules }));
        return undefined;
      }
      const problem = { line: r.body.line ?? 1, column: r.body.column ?? 1, message: r.body.message ?? "" };
      if (r.body.line !== undefined) {
        check.setAttribute("data-line", String(problem.line));
        check.setAttribute("data-column", String(problem.column));
        check.append(t("msg.rule_error", problem));
      } else check.append(problem.message);
      return problem;
    };
    const { rulesEditor } = await import("./editor");
    // The draft survives a page change (and takes the lists screen's changes); each checked
    // text is kept.
    const checkAndKeep = async (text: string) => {
      sessionStorage.setItem(RULES_DRAFT_KEY, text);
      return checkRules(text);
    };
    const editor = rulesEditor(host, sessionStorage.getItem(RULES_DRAFT_KEY) ?? RULESET_TEMPLATE, checkAndKeep, t("nav.rules"));
    if (params.get("draft") === "lists") el.append(h("p", { class: "ok", id: "rules-lists-note", role: "status" }, t("lists.applied")));
    const text = () => editor.state.doc.toString();
    // Before publishing: what the text would have done over a period of stored transactions.
    const from = h("input", { id: "backtest-from", type: "date" });
    const to = h("input", { id: "backtest-to", type: "date" });
    const backtest = h("div", { id: "backtest" });
    const runBacktest = async () => {
      clear(backtest);
      try {
        const q = new URLSearchParams({ from: from.value, to: to.value });
        const b = (
          await call<{
            transactions: number;
            frauds: number;
            precision: number | null;
            recall: number | null;
            rules: { name: string; shadow: boolean; hits: number; fraud_hits: number; precision: number | null }[];
            days: { day: string; transactions: number; reviews: number; blocks: number }[];
          }>("POST", `/v1/rules/backtest?${q}`, { text: text() })
        ).body;
        const pct = (x: number | null) => (x === null ? "-" : `${(x * 100).toFixed(1)}%`);
        const days: Table = { columns: ["period", "transactions", "reviews", "blocks"], rows: b.days.map((d) => [d.day, d.transactions, d.reviews, d.blocks]) };
        backtest.append(
          h("p", { id: "backtest-summary" }, t("msg.backtest", { n: b.transactions, frauds: b.frauds, precision: pct(b.precision), recall: pct(b.recall) })),
          tableView({ columns: ["rule", "shadow", "hits", "fraud_hits", "precision"], rows: b.rules.map((r) => [r.name, r.shadow, r.hits, r.fraud_hits, r.precision]) }, "backtest-rules"),
          chart(trendOption(days), "backtest"),
        );
      } catch (e) {
        backtest.append(errorLine(e));
      }
    };
    el.append(
      host,
      check,
      h("div", { class: "controls" }, field("field.from", from), field("field.to", to), h("button", { type: "button", id: "backtest-run", onclick: () => void runBacktest() }, t("action.backtest"))),
      backtest,
      h(
        "div",
        { class: "actions" },
        h(
          "button",
          {
            type: "button",
            id: "rules-publish",
            onclick: async () => {
              clear(result);
              try {
                const r = await call<{ version?: number; id?: number }>("POST", "/v1/rules", { text: text() });
                result.append(h("p", { class: "ok" }, r.body.version !== undefined ? t("msg.published", { version: r.body.version }) : t("msg.waiting_approval", { id: r.body.id ?? "" })));
              } catch (e) {
                const placed = e instanceof Error ? ruleError(e.message) : undefined;
                result.append(placed ? h("p", { class: "error", role: "alert", "data-line": placed.line, "data-column": placed.column }, t("msg.rule_error", placed)) : errorLine(e));
              }
            },
          },
          t("action.publish"),
        ),
      ),
      result,
    );
  },
};

const models: Screen = {
  path: "/models",
  title: "nav.models",
  needs: "read_insights",
  async render(el, { who }) {
    const r = await get<{ models: { name: string; version: number; metrics?: unknown }[]; active: Record<string, number> }>("/v1/models");
    el.append(tableView({ columns: ["purpose", "version", "active", "metrics"], rows: r.models.map((m) => [m.name, m.version, r.active[m.name] === m.version, m.metrics ?? null]) }, "models"));
    if (!who.permissions.includes("promote_models") || r.models.length === 0) return;
    const choice = h("select", { id: "model-version" }, ...r.models.map((m) => h("option", { value: `${m.name}/${m.version}` }, `${m.name} v${m.version}`)));
    const result = h("div", { role: "status" });
    const act = async (rollback: boolean) => {
      clear(result);
      const [purpose, version] = choice.value.split("/");
      try {
        const body = await post<{ version?: number; id?: number; state?: string }>(`/v1/models/${purpose}/${rollback ? "rollback" : "promote"}`, rollback ? undefined : { version: Number(version) });
        result.append(h("p", { class: "ok" }, body.state === "pending" ? t("msg.waiting_approval", { id: body.id ?? "" }) : t("msg.saved")));
        window.dispatchEvent(new PopStateEvent("popstate"));
      } catch (e) {
        result.append(errorLine(e));
      }
    };
    el.append(
      h(
        "div",
        { class: "controls" },
        choice,
        h("button", { type: "button", id: "model-promote", onclick: () => void act(false) }, t("action.promote")),
        h("button", { type: "button", id: "model-rollback", onclick: () => void act(true) }, t("action.rollback")),
      ),
      result,
    );
  },
};

const churn: Screen = {
  path: "/churn",
  title: "nav.churn",
  needs: "read_insights",
  async render(el) {
    const r = await getOrNothing<{ model_version: number; list: Record<string, unknown>[]; message?: string }>(el, "/v1/churn/risk?limit=200");
    if (!r) return;
    el.append(h("p", { class: "meta" }, `v${r.model_version}${r.message ? ` · ${r.message}` : ""}`));
    const table = objectsTable(r.list);
    el.append(exportButtons("churn-risk", table), tableView(table, "churn"));
  },
};

const offers: Screen = {
  path: "/offers",
  title: "nav.offers",
  needs: "read_insights",
  async render(el) {
    const r = await getOrNothing<{ offers: Record<string, unknown>[]; total: number }>(el, "/v1/pricing/offers?limit=200");
    if (!r) return;
    const table = objectsTable(r.offers);
    el.append(h("p", { class: "meta" }, t("msg.rows", { n: r.total, ms: "-" })), exportButtons("offers", table), tableView(table, "offers"));
  },
};

const sql: Screen = {
  path: "/sql",
  title: "nav.sql",
  needs: "run_sql",
  async render(el, { params, who }) {
    const query = h("textarea", { id: "sql-query", rows: 6, spellcheck: false, "aria-label": "SQL" }, params.get("q") ?? "SELECT type, count(*) AS events FROM events GROUP BY type ORDER BY events DESC");
    const purpose = h("input", { id: "sql-purpose", name: "purpose" });
    const out = h("div", { id: "sql-out" });
    const run = async () => {
      clear(out);
      setParams({ q: query.value });
      const started = performance.now();
      try {
        const r = await call<Table>("POST", "/v1/sql", { body: { query: query.value }, purpose: purpose.value || undefined });
        const ms = Math.round(performance.now() - started);
        const exposure = r.headers.get("x-data-exposure");
        out.append(
          h("p", { class: "meta" }, t("msg.rows", { n: r.body.rows.length, ms }), r.body.rows_truncated ? ` · ${t("msg.truncated")}` : ""),
          h("p", { class: exposure === "clear" ? "warn" : "meta", id: "sql-exposure" }, t(exposure === "clear" ? "msg.clear" : "msg.masked")),
          exportButtons("query", r.body),
          tableView(r.body, "sql-table"),
        );
      } catch (e) {
        out.append(errorLine(e));
      }
    };
    el.append(
      query,
      who.permissions.includes("read_personal_clear") ? field("field.purpose", purpose) : "",
      h("div", { class: "actions" }, h("button", { type: "button", id: "sql-run", onclick: () => void run() }, t("action.run"))),
      out,
    );
    if (params.get("q")) await run();
  },
};

const schema: Screen = {
  path: "/schema",
  title: "nav.schema",
  needs: "read_insights",
  async render(el) {
    const s = await get<{ types: { name: string; doc: string; fields: { name: string; type: string; category?: string; level?: number; exposure?: string }[] }[] }>("/v1/schema");
    const rows = s.types.flatMap((ty) => ty.fields.map((f) => [ty.name, f.name, f.type, `${f.category ?? ""} L${f.level ?? ""}`, t(`exposure.${f.exposure ?? "shown"}` as MessageKey)]));
    el.append(tableView({ columns: [t("schema.type"), t("schema.field"), "type", t("schema.class"), t("schema.exposure")], rows }, "schema"));
  },
};

const keys: Screen = {
  path: "/keys",
  title: "nav.keys",
  needs: "manage_access",
  async render(el) {
    const r = await get<{ keys: { id: string; role: string; label: string; state: string; created_at: string; expires_at?: string | null }[] }>("/v1/auth/keys");
    const role = h("select", { id: "key-role" }, ...ROLES.map((x) => h("option", { value: x }, x)));
    const label = h("input", { id: "key-label" });
    const made = h("div", { id: "key-made" });
    el.append(
      h(
        "form",
        {
          class: "controls",
          onsubmit: async (e: Event) => {
            e.preventDefault();
            try {
              const k = await post<{ key: string; id: string }>("/v1/auth/keys", { role: role.value, label: label.value });
              clear(made);
              made.append(h("p", { class: "warn" }, t("msg.key_shown_once")), h("code", { id: "new-key" }, k.key));
            } catch (err) {
              made.append(errorLine(err));
            }
          },
        },
        field("field.role", role),
        field("field.label", label),
        h("button", { type: "submit" }, t("action.create")),
      ),
      made,
      tableView({ columns: ["id", "role", "label", "state", "created", "expires"], rows: r.keys.map((k) => [k.id, k.role, k.label, k.state, k.created_at, k.expires_at ?? null]) }, "keys"),
    );
    const active = r.keys.filter((k) => k.state === "active");
    if (active.length) {
      const pick = h("select", { id: "key-revoke-id" }, ...active.map((k) => h("option", { value: k.id }, `${k.id} (${k.role}${k.label ? `, ${k.label}` : ""})`)));
      el.append(
        h(
          "div",
          { class: "controls" },
          pick,
          h(
            "button",
            {
              type: "button",
              id: "key-revoke",
              onclick: async () => {
                try {
                  await post(`/v1/auth/keys/${encodeURIComponent(pick.value)}/revoke`);
                  window.dispatchEvent(new PopStateEvent("popstate"));
                } catch (e) {
                  el.append(errorLine(e));
                }
              },
            },
            t("action.revoke"),
          ),
        ),
      );
    }
  },
};

const ROLES = ["admin", "ops_manager", "risk_analyst", "data_scientist", "compliance_officer", "auditor", "partner_app"];

const people: Screen = {
  path: "/people",
  title: "nav.people",
  needs: "manage_access",
  async render(el) {
    const r = await get<{ users: { name: string; role: string; created_at: string; failures: number; locked_until?: string }[] }>("/v1/auth/users");
    const name = h("input", { id: "person-name", autocomplete: "off" });
    const role = h("select", { id: "person-role" }, ...ROLES.map((x) => h("option", { value: x }, x)));
    const password = h("input", { id: "person-password", type: "password", autocomplete: "new-password" });
    const result = h("div", { role: "status" });
    el.append(
      h(
        "form",
        {
          class: "controls",
          onsubmit: async (e: Event) => {
            e.preventDefault();
            clear(result);
            try {
              await post("/v1/auth/users", { name: name.value, role: role.value, password: password.value });
              window.dispatchEvent(new PopStateEvent("popstate"));
            } catch (err) {
              result.append(errorLine(err));
            }
          },
        },
        field("field.name", name),
        field("field.role", role),
        field("field.password", password),
        h("button", { type: "submit" }, t("action.create")),
      ),
      result,
      tableView({ columns: ["name", "role", "created", "failures", "locked_until"], rows: r.users.map((u) => [u.name, u.role, u.created_at, u.failures, u.locked_until ?? null]) }, "people"),
    );
  },
};

const audit: Screen = {
  path: "/audit",
  title: "nav.audit",
  needs: "read_audit",
  async render(el, { params }) {
    const action = h("input", { id: "audit-action", value: params.get("action") ?? "" });
    const out = h("div", {});
    const load = async () => {
      clear(out);
      setParams({ action: action.value });
      const q = new URLSearchParams({ limit: "200" });
      if (action.value) q.set("action", action.value);
      const r = await get<{ entries: { seq: number; at: string; actor: string; action: string; target?: string; outcome: string; purpose?: string }[] }>(`/v1/audit?${q}`);
      const rows = r.entries.reverse().map((e) => [e.seq, e.at, e.actor, e.action, e.target ?? "", e.outcome, e.purpose ?? ""]);
      out.append(tableView({ columns: ["seq", "at", "actor", "action", "target", "outcome", "purpose"], rows }, "audit"));
    };
    el.append(
      h("p", { class: "meta" }, t("audit.verify_hint"), " ", h("a", { href: "/v1/audit?format=csv&limit=100000", download: "audit.csv", id: "audit-csv" }, t("action.export_csv"))),
      searchForm("field.action_filter", action, load),
      out,
    );
    await load();
  },
};

const grouped = (group: Screen["group"], list: Screen[]): Screen[] => list.map((s) => ({ ...s, group }));

/** Every screen, in the navigation's order, by group. */
export const screens: Screen[] = [
  overview,
  ...grouped("growth", [insights, segments, users]),
  ...grouped("risk", [decisions, cases, rules, lists, models, fraud]),
  ...grouped("value", [churn, ltv, offers]),
  ...grouped("data", [sql, schema]),
  ...grouped("admin", [people, keys, audit]),
];
