// What every screen is built from: tables, export buttons, labelled fields, the URL's query
// string, and the lines that say nothing is there yet or something went wrong.

import { ApiError, columnNames, get, toCsv, type Table, type Who } from "./api";
import { chartPng } from "./chart";
import { download, h } from "./dom";
import { t, type MessageKey } from "./i18n";

export interface Context {
  who: Who;
  navigate: (path: string) => void;
  params: URLSearchParams;
}

/** Where a screen sits in the navigation. */
export type Group = "growth" | "risk" | "value" | "data" | "admin";

export interface Screen {
  path: string;
  title: string;
  group?: Group;
  needs?: string;
  render: (el: HTMLElement, cx: Context) => Promise<void>;
}

const leaving: (() => void)[] = [];

/** Runs `stop` when the screen is left (a poll's timer, a listener). */
export function onLeave(stop: () => void): void {
  leaving.push(stop);
}

/** Stops what the screen being left started. */
export function leaveScreen(): void {
  for (const stop of leaving.splice(0)) stop();
}

/** A table answer drawn as an HTML table. */
export function tableView(table: Table, id?: string): HTMLElement {
  if (table.rows.length === 0) return h("p", { class: "empty" }, t("msg.empty"));
  const cell = (v: unknown) => {
    if (v === null || v === undefined) return "";
    if (typeof v === "number" && !Number.isInteger(v)) return String(Number(v.toFixed(4)));
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  };
  return h(
    "div",
    // A scrolling region the keyboard can reach and scroll.
    { class: "table-wrap", tabindex: 0, role: "region", "aria-label": id ? `${t("a11y.table")}: ${id}` : t("a11y.table") },
    h(
      "table",
      { id },
      h("thead", {}, h("tr", {}, ...columnNames(table).map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, ...table.rows.map((r) => h("tr", {}, ...r.map((v) => h("td", {}, cell(v)))))),
    ),
  );
}

/** A list of JSON objects as a table: the first object's keys are the columns. */
export function objectsTable(list: Record<string, unknown>[]): Table {
  const columns = list.length ? Object.keys(list[0]) : [];
  return { columns, rows: list.map((o) => columns.map((c) => o[c] ?? null)) };
}

export function exportButtons(name: string, table: Table, chartEl?: HTMLElement): HTMLElement {
  return h(
    "div",
    { class: "actions" },
    h("button", { type: "button", class: "export-csv", onclick: () => download(`${name}.csv`, toCsv(table), "text/csv") }, t("action.export_csv")),
    chartEl &&
      h(
        "button",
        {
          type: "button",
          class: "export-png",
          onclick: () => {
            const png = chartPng(chartEl);
            if (png) {
              const a = h("a", { href: png, download: `${name}.png` });
              document.body.append(a);
              a.click();
              a.remove();
            }
          },
        },
        t("action.export_png"),
      ),
  );
}

export function field(label: MessageKey, input: HTMLElement): HTMLElement {
  return h("label", { class: "field" }, h("span", {}, t(label)), input);
}

/** One labelled input and a look-up button; submitting runs `search`. */
export function searchForm(label: MessageKey, input: HTMLElement, search: () => Promise<void>): HTMLElement {
  const onsubmit = (e: Event) => {
    e.preventDefault();
    void search();
  };
  return h("form", { class: "controls", onsubmit }, field(label, input), h("button", { type: "submit" }, t("action.search")));
}

export function setParams(values: Record<string, string>): void {
  const p = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v) p.set(k, v);
    else p.delete(k);
  }
  history.replaceState(null, "", `${location.pathname}?${p}`);
}

/** `path`'s answer, or `undefined` after saying why when there is nothing yet (404: no model
 * trained, no offers computed). */
export async function getOrNothing<T>(el: HTMLElement, path: string): Promise<T | undefined> {
  try {
    return await get<T>(path);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      el.append(h("p", { class: "empty" }, `${t("msg.empty")}: ${e.message}`));
      return undefined;
    }
    throw e;
  }
}

export function errorLine(e: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, t("msg.error", { error: e instanceof Error ? e.message : String(e) }));
}

