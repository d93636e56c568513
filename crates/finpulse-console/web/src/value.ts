// Value screens beside the churn list and the offers: what new users are worth by signup
// cohort and by channel (or campaign), from the acquisition insight.

import { post, type Table } from "./api";
import { chart } from "./chart";
import { ltvCacOption, ltvHeatOption, ltvTable } from "./charts";
import { clear, h } from "./dom";
import { t, type MessageKey } from "./i18n";
import { errorLine, exportButtons, field, setParams, tableView, type Screen } from "./widgets";

const PERIODS = ["week", "month"] as const;
const GROUPS = ["channel", "campaign"] as const;
const HORIZONS = ["90d", "180d", "365d"] as const;

export const ltv: Screen = {
  path: "/ltv",
  title: "nav.ltv",
  needs: "read_insights",
  async render(el, { params }) {
    const pick = <T extends string>(name: string, options: readonly T[], fallback: T): T => ((options as readonly string[]).includes(params.get(name) ?? "") ? (params.get(name) as T) : fallback);
    const select = (id: string, value: string, options: readonly string[], label: (v: string) => string) =>
      h("select", { id, name: id }, ...options.map((v) => h("option", { value: v, selected: v === value }, label(v))));
    const period = select("ltv-period", pick("period", PERIODS, "month"), PERIODS, (v) => t(`period.${v}` as MessageKey));
    const by = select("ltv-by", pick("by", GROUPS, "channel"), GROUPS, (v) => t(`ltv.by_${v}` as MessageKey));
    const horizon = select("ltv-horizon", pick("horizon", HORIZONS, "365d"), HORIZONS, (v) => t("ltv.days", { n: v.slice(0, -1) }));
    const from = h("input", { id: "ltv-from", type: "date", value: params.get("from") ?? "" });
    const to = h("input", { id: "ltv-to", type: "date", value: params.get("to") ?? "" });
    const out = h("div", { id: "ltv-out" });
    const run = async () => {
      clear(out);
      setParams({ period: period.value, by: by.value, horizon: horizon.value, from: from.value, to: to.value });
      const body: Record<string, unknown> = { period: period.value, breakdown: `user.${by.value}`, ltv_horizon: horizon.value };
      if (from.value) body.from = from.value;
      if (to.value) body.to = to.value;
      try {
        const table = await post<Table & { notes?: string[] }>("/v1/insights/acquisition", body);
        const shown = ltvTable(table);
        const heat = chart(ltvHeatOption(table), "ltv-cohorts");
        const bars = chart(ltvCacOption(table, { ltv: t("ltv.ltv"), cac: t("ltv.cac") }), "ltv-cac");
        out.append(
          ...(table.notes ?? []).map((n) => h("p", { class: "meta note" }, n)),
          h("h2", {}, t("ltv.by_cohort", { by: t(`ltv.by_${by.value}` as MessageKey) })),
          exportButtons("ltv-cohorts", shown, heat),
          heat,
          h("h2", {}, t("ltv.against_cac")),
          exportButtons("ltv-cac", shown, bars),
          bars,
          tableView(shown, "ltv-table"),
        );
      } catch (e) {
        out.append(errorLine(e));
      }
    };
    const form = h(
      "form",
      {
        class: "controls",
        onsubmit: (e: Event) => {
          e.preventDefault();
          void run();
        },
      },
      field("ltv.cohort", period),
      field("ltv.by", by),
      field("ltv.horizon", horizon),
      field("field.from", from),
      field("field.to", to),
      h("button", { type: "submit", id: "ltv-run" }, t("action.run")),
    );
    el.append(h("p", { class: "meta" }, t("ltv.about")), form, out);
    await run();
  },
};
