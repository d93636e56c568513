// Risk screens beside the case queue and the rules editor: the live decision stream, the allow
// and block lists, and the fraud model's evaluation.

import { get } from "./api";
import { chart, redraw } from "./chart";
import { decisionScoresOption, fraudMeasures, modelMetricsOption, type Decision, type ModelVersion } from "./charts";
import { clear, h } from "./dom";
import { t, type MessageKey } from "./i18n";
import { LIST_NAMES, entryProblem, isProblem, listsOf, listsTable, readLists, writeLists, type ListName, type Lists } from "./lists";
import { RULES_DRAFT_KEY, RULESET_TEMPLATE } from "./rules";
import { errorLine, exportButtons, field, objectsTable, onLeave, setParams, tableView, type Screen } from "./widgets";

/** How often the stream asks for new decisions, milliseconds. */
export const STREAM_POLL_MS = 2000;
/** Decisions the stream keeps on screen (the oldest go). */
export const STREAM_ROWS_MAX = 200;

const ACTIONS = ["allow", "review", "block"] as const;

/** A decision's reasons in a few words: lists, rules (with score), model features. */
export function reasonText(d: Decision): string {
  const parts = d.reasons.map((r) => {
    if (r.kind === "list") return `${t("reason.list")} ${r.list}`;
    if (r.kind === "rule") return `${t("reason.rule")} ${r.name} (${r.score.toFixed(2)})`;
    return `${t("reason.model")} ${r.feature} ${r.contribution >= 0 ? "+" : ""}${r.contribution.toFixed(2)}`;
  });
  if (d.fallback) parts.push(`${t("reason.fallback")}: ${d.fallback}`);
  return parts.join(" · ");
}

/** A modal dialog of one decision: every field and reason; Escape or the close button ends it
 * and the focus goes back to `opener`. */
function decisionDialog(d: Decision, opener: HTMLElement): void {
  const close = h("button", { type: "button", id: "decision-close" }, t("action.close"));
  const rows: [MessageKey, string][] = [
    ["col.event", d.event_id],
    ["field.user_id", d.user_id ?? ""],
    ["col.time", d.ts],
    ["col.action", t(`decision.${d.action}` as MessageKey)],
    ["col.score", d.score === null ? "" : d.score.toFixed(3)],
    ["col.ruleset", d.ruleset_version === null ? "" : `v${d.ruleset_version}`],
    ["col.model", d.model_version === null ? "" : `v${d.model_version}`],
    ["col.elapsed", d.elapsed_us === null ? "" : `${(d.elapsed_us / 1000).toFixed(2)} ms`],
    ["col.shadow", d.shadow_hits.join(", ")],
  ];
  const dialog = h(
    "dialog",
    { id: "decision-dialog", "aria-labelledby": "decision-dialog-title" },
    h("h2", { id: "decision-dialog-title" }, t("decision.details", { id: d.event_id })),
    h("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
    h("h3", {}, t("col.reasons")),
    d.reasons.length ? h("ul", {}, ...d.reasons.map((r) => h("li", {}, reasonText({ ...d, reasons: [r], fallback: null })))) : h("p", { class: "empty" }, t("msg.empty")),
    h("div", { class: "actions" }, close),
  );
  close.addEventListener("click", () => dialog.close());
  // Escape closes a modal dialog by itself (its `cancel`); either way it goes and the focus
  // returns to where it was.
  dialog.addEventListener("close", () => {
    dialog.remove();
    opener.focus();
  });
  document.body.append(dialog);
  dialog.showModal();
  close.focus();
}

export const decisions: Screen = {
  path: "/decisions",
  title: "nav.decisions",
  needs: "read_cases",
  async render(el, { params }) {
    let action = (ACTIONS as readonly string[]).includes(params.get("action") ?? "") ? params.get("action")! : "";
    let paused = false;
    let shown: Decision[] = [];
    let lastSeq: number | undefined;
    const status = h("p", { id: "stream-status", class: "meta", "aria-live": "polite" });
    const body = h("tbody", {});
    const table = h(
      "table",
      { id: "stream" },
      h("thead", {}, h("tr", {}, ...(["col.time", "col.event", "field.user_id", "col.action", "col.score", "col.reasons"] as MessageKey[]).map((c) => h("th", { scope: "col" }, t(c))), h("th", {}))),
      body,
    );
    const scores = chart(decisionScoresOption([], (a) => t(`decision.${a}` as MessageKey)), "decision-scores");
    const row = (d: Decision, fresh: boolean) => {
      const open = h("button", { type: "button", class: "decision-open", "aria-haspopup": "dialog" }, t("action.details"));
      open.addEventListener("click", () => decisionDialog(d, open));
      return h(
        "tr",
        { "data-event": d.event_id, "data-action": d.action, class: fresh ? "fresh" : undefined },
        h("td", {}, d.ts.replace("T", " ").replace("Z", "")),
        h("td", {}, d.event_id),
        h("td", {}, d.user_id ?? ""),
        h("td", {}, h("span", { class: `badge ${d.action}` }, t(`decision.${d.action}` as MessageKey))),
        h("td", {}, d.score === null ? "" : d.score.toFixed(2)),
        h("td", { class: "reasons" }, reasonText(d)),
        h("td", {}, open),
      );
    };
    // Asks for what was decided after the last one seen; the first look takes the latest.
    let primed = false;
    const poll = async () => {
      const q = new URLSearchParams({ limit: String(primed ? STREAM_ROWS_MAX : 100) });
      if (lastSeq !== undefined) q.set("after_seq", String(lastSeq));
      if (action) q.set("action", action);
      const r = await get<{ decisions: Decision[] }>(`/v1/decisions/recent?${q}`);
      const first = !primed;
      primed = true;
      for (const d of r.decisions) if (d.seq !== null) lastSeq = Math.max(lastSeq ?? 0, d.seq);
      if (r.decisions.length || first) {
        shown = [...r.decisions, ...shown].slice(0, STREAM_ROWS_MAX);
        body.prepend(...r.decisions.map((d) => row(d, !first)));
        while (body.rows.length > STREAM_ROWS_MAX) body.deleteRow(-1);
        redraw(scores, decisionScoresOption(shown, (a) => t(`decision.${a}` as MessageKey)));
      }
      status.textContent = t("stream.status", { n: shown.length, time: new Date().toLocaleTimeString(), fresh: first ? 0 : r.decisions.length });
      el.setAttribute("data-polls", String(Number(el.getAttribute("data-polls") ?? 0) + 1));
    };
    // One poll at a time, the next after the last one's answer; none once the screen is left.
    let timer: number | undefined;
    let left = false;
    const schedule = () => {
      if (left) return;
      timer = window.setTimeout(async () => {
        if (!paused && !document.hidden) await poll().catch((e) => status.replaceChildren(errorLine(e)));
        schedule();
      }, STREAM_POLL_MS);
    };
    onLeave(() => {
      left = true;
      window.clearTimeout(timer);
    });
    const pause = h("button", { type: "button", id: "stream-pause", "aria-pressed": "false" }, t("action.pause"));
    pause.addEventListener("click", () => {
      paused = !paused;
      pause.setAttribute("aria-pressed", String(paused));
      pause.textContent = t(paused ? "action.resume" : "action.pause");
    });
    const filter = h(
      "select",
      {
        id: "stream-action",
        onchange: (e: Event) => {
          action = (e.target as HTMLSelectElement).value;
          setParams({ action });
          // Another filter: start again from the latest of that action.
          lastSeq = undefined;
          primed = false;
          shown = [];
          clear(body);
          void poll();
        },
      },
      h("option", { value: "", selected: action === "" }, t("status.all")),
      ...ACTIONS.map((a) => h("option", { value: a, selected: a === action }, t(`decision.${a}` as MessageKey))),
    );
    el.append(
      h("p", { class: "meta" }, t("stream.about", { s: STREAM_POLL_MS / 1000 })),
      h("div", { class: "controls" }, field("col.action", filter), pause),
      status,
      h("h2", {}, t("stream.scores")),
      scores,
      h("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": t("nav.decisions") }, table),
    );
    await poll();
    schedule();
  },
};

/** Which entity and effect each list has, for its label. */
function listLabel(name: ListName): string {
  return t(`list.${name}` as MessageKey);
}

/** The rules draft the lists are written into: the one the rules editor keeps, else the template. */
function rulesDraft(): string {
  return sessionStorage.getItem(RULES_DRAFT_KEY) ?? RULESET_TEMPLATE;
}

export const lists: Screen = {
  path: "/lists",
  title: "nav.lists",
  needs: "read_cases",
  async render(el, { who, navigate }) {
    const active = await get<{ name: string; version: number; lists?: Record<string, unknown> }>("/v1/rules");
    const current = listsOf(active.lists);
    el.append(
      h("p", { class: "meta" }, t("lists.about", { name: active.name, version: active.version })),
      tableView({ columns: [t("lists.list"), t("lists.entries"), t("lists.count")], rows: LIST_NAMES.map((n) => [`${listLabel(n)} (${n})`, current[n].join(", "), current[n].length]) }, "lists-active"),
    );
    if (!who.permissions.includes("publish_rules")) return;
    // The draft: the active lists, changed entry by entry, then written into the rules draft.
    const draft: Lists = structuredClone(current);
    const editor = h("div", { id: "lists-editor", class: "lists-editor" });
    const preview = h("pre", { id: "lists-preview", class: "rule-preview", "aria-live": "polite" });
    const problem = h("div", { id: "lists-error", role: "alert" });
    const draw = (focusList?: ListName) => {
      clear(editor);
      for (const name of LIST_NAMES) {
        const input = h("input", { "data-list-input": name, autocomplete: "off", spellcheck: false, "aria-label": t("lists.new_entry", { list: listLabel(name) }) });
        const add = () => {
          clear(problem);
          const why = entryProblem(draft, name, input.value);
          if (why) {
            problem.append(h("p", { class: "error" }, t(why, { list: listLabel(name), value: input.value.trim() })));
            input.setAttribute("aria-invalid", "true");
            input.focus();
            return;
          }
          draft[name] = [...draft[name], input.value.trim()];
          draw(name);
        };
        input.addEventListener("input", () => input.removeAttribute("aria-invalid"));
        input.addEventListener("keydown", (e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            add();
          }
        });
        const entries = draft[name].map((entry) =>
          h(
            "li",
            { class: current[name].includes(entry) ? "entry" : "entry added" },
            h("span", {}, entry),
            h(
              "button",
              {
                type: "button",
                "data-remove": `${name}:${entry}`,
                "aria-label": t("lists.remove", { value: entry, list: listLabel(name) }),
                onclick: () => {
                  draft[name] = draft[name].filter((x) => x !== entry);
                  draw(name);
                },
              },
              "×",
            ),
          ),
        );
        const removed = current[name].filter((x) => !draft[name].includes(x));
        editor.append(
          h(
            "fieldset",
            { class: "list", "data-list": name },
            h("legend", {}, `${listLabel(name)} · ${name}`),
            entries.length ? h("ul", { class: "entries" }, ...entries) : h("p", { class: "empty" }, t("msg.empty")),
            removed.length ? h("p", { class: "meta removed" }, t("lists.removed", { values: removed.join(", ") })) : "",
            h("div", { class: "controls" }, input, h("button", { type: "button", "data-list-add": name, onclick: add }, t("action.add"))),
          ),
        );
        if (focusList === name) input.focus();
      }
      preview.textContent = listsTable(draft) || t("lists.none");
    };
    draw();
    const apply = h(
      "button",
      {
        type: "button",
        id: "lists-apply",
        onclick: () => {
          clear(problem);
          const text = rulesDraft();
          // A draft whose [lists] table this screen cannot read is not overwritten unseen.
          const before = readLists(text);
          if (isProblem(before)) {
            problem.append(h("p", { class: "error" }, t(before.error, { line: before.line, found: before.found })));
            return;
          }
          sessionStorage.setItem(RULES_DRAFT_KEY, writeLists(text, draft));
          navigate("/rules?draft=lists");
        },
      },
      t("lists.apply"),
    );
    el.append(
      h("h2", {}, t("lists.edit")),
      h("p", { class: "meta" }, t("lists.how")),
      editor,
      h("p", { class: "meta" }, t("lists.table")),
      preview,
      h("div", { class: "actions" }, apply),
      problem,
    );
  },
};

export const fraud: Screen = {
  path: "/fraud",
  title: "nav.fraud",
  needs: "read_insights",
  async render(el) {
    const r = await get<{ models: ModelVersion[]; active: Record<string, number> }>("/v1/models");
    const versions = r.models.filter((m) => m.purpose === "fraud").sort((a, b) => a.version - b.version);
    if (versions.length === 0) {
      el.append(h("p", { class: "empty", id: "fraud-none" }, t("fraud.none")));
      return;
    }
    const active = versions.find((m) => m.version === r.active.fraud) ?? versions[versions.length - 1];
    const a = fraudMeasures(active);
    const pct = (x: number | null) => (x === null ? "-" : x.toFixed(3));
    const tiles = h("div", { class: "tiles", id: "fraud-tiles" });
    const tile = (label: MessageKey, value: string) => tiles.append(h("div", { class: "tile" }, h("span", { class: "tile-label" }, t(label)), h("span", { class: "tile-value" }, value)));
    tile("fraud.valid_auc", pct(a.valid_auc));
    tile("fraud.auc", pct(a.auc));
    tile("fraud.ap", pct(a.ap));
    tile("fraud.lift", a.lift === null ? "-" : `${a.lift.toFixed(2)}×`);
    const training = active.training;
    const rows = versions.map((m) => {
      const x = fraudMeasures(m);
      return {
        version: m.version,
        active: m.version === r.active.fraud,
        from: m.training.from,
        to: m.training.to,
        delay_days: m.training.delay_days,
        payments: m.training.payments,
        frauds_known: m.training.frauds_known,
        valid_auc: x.valid_auc,
        train_auc: x.auc,
        average_precision: x.ap,
        top_decile_lift: x.lift,
        log_loss: x.log_loss,
        brier: x.brier,
      };
    });
    const table = objectsTable(rows);
    const c = chart(modelMetricsOption(versions.map(fraudMeasures), { valid_auc: t("fraud.valid_auc"), auc: t("fraud.auc"), ap: t("fraud.ap") }), "fraud-metrics");
    el.append(
      h("p", { class: "meta" }, t("fraud.active", { version: active.version, from: String(training.from ?? "-"), to: String(training.to ?? "-"), delay: String(training.delay_days ?? "-") })),
      tiles,
      h("h2", {}, t("fraud.by_version")),
      exportButtons("fraud-models", table, c),
      c,
      tableView(table, "fraud-versions"),
      h("p", { class: "meta", id: "fraud-missing" }, t("fraud.missing")),
    );
  },
};
