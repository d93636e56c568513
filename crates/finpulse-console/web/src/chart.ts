// Draws chart options with ECharts, only the pieces the console uses (a smaller bundle).

import * as echarts from "echarts/core";
import { BarChart, HeatmapChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent, VisualMapComponent } from "echarts/components";
import { CanvasRenderer } from "echarts/renderers";
import type { ChartOption } from "./charts";
import { lang } from "./i18n";
import { h } from "./dom";

echarts.use([BarChart, HeatmapChart, LineChart, GridComponent, LegendComponent, TooltipComponent, VisualMapComponent, CanvasRenderer]);

const live = new Set<echarts.ECharts>();
/** The newest option asked for each chart element (drawn at its first frame, or again). */
const latest = new WeakMap<HTMLElement, ChartOption>();

function full(option: ChartOption): Record<string, unknown> {
  return { backgroundColor: "transparent", animation: false, ...option };
}

/** A chart of `option` in a new element; `data-chart="drawn"` is set once ECharts finished.
 * `onCell` hears clicks on a data point, by its x and y index (a heat map's cell). */
export function chart(option: ChartOption, name: string, onCell?: (x: number, y: number) => void): HTMLElement {
  const el = h("div", { class: "chart", "data-chart": "drawing", "data-name": name, role: "img", "aria-label": name });
  latest.set(el, option);
  requestAnimationFrame(() => {
    const dark = document.documentElement.dataset.theme === "dark";
    const c = echarts.init(el, dark ? "dark" : undefined, { locale: lang() === "zh-CN" ? "ZH" : "EN", renderer: "canvas" });
    live.add(c);
    c.on("finished", () => el.setAttribute("data-chart", "drawn"));
    if (onCell) {
      c.on("click", (p) => {
        const v = (p.data as { value?: unknown[] } | undefined)?.value;
        if (Array.isArray(v) && typeof v[0] === "number" && typeof v[1] === "number") onCell(v[0], v[1]);
      });
    }
    c.setOption(full(latest.get(el) ?? option));
  });
  return el;
}

/** Draws the chart in `el` again with `option` (`data-chart` is `drawing` until it is done). */
export function redraw(el: HTMLElement, option: ChartOption): void {
  latest.set(el, option);
  const c = echarts.getInstanceByDom(el);
  if (!c) return; // Not drawn yet: its first frame takes the newest option.
  el.setAttribute("data-chart", "drawing");
  c.setOption(full(option), true);
}

/** The PNG of the chart drawn in `el`, as a data URL. */
export function chartPng(el: HTMLElement): string | undefined {
  return echarts.getInstanceByDom(el)?.getDataURL({ type: "png", pixelRatio: 2, backgroundColor: "#fff" });
}

/** Frees the charts of the screen being left. */
export function disposeCharts(): void {
  for (const c of live) c.dispose();
  live.clear();
}

window.addEventListener("resize", () => live.forEach((c) => c.resize()));
