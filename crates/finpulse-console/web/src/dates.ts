// Date-range presets of the insights screen, as the `from` and `to` (YYYY-MM-DD, inclusive)
// every insight takes. Pure: "today" is given, so unit tests fix it.

export const rangePresets = ["all", "7d", "30d", "90d", "this_month", "last_month", "custom"] as const;
export type RangePreset = (typeof rangePresets)[number];

export interface DateRange {
  from: string;
  to: string;
}

const ISO_DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

function parts(day: string): [number, number, number] {
  const m = ISO_DAY.exec(day);
  if (!m) throw new Error(`'${day}' is not YYYY-MM-DD`);
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = new Date(Date.UTC(y, mo - 1, d));
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d) throw new Error(`'${day}' is not a day`);
  return [y, mo, d];
}

const iso = (t: Date): string => t.toISOString().slice(0, 10);

/** `day` moved by `n` days (calendar arithmetic, no time zones). */
export function addDays(day: string, n: number): string {
  const [y, m, d] = parts(day);
  return iso(new Date(Date.UTC(y, m - 1, d + n)));
}

/** The day of `now` on the browser's calendar, as YYYY-MM-DD. */
export function localToday(now: Date = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${p(now.getMonth() + 1)}-${p(now.getDate())}`;
}

/** The days a preset covers when today is `today`: the last N days end today; this month runs
 * from its first day to today; last month is the whole calendar month before. `all` and
 * `custom` have no days of their own (undefined). */
export function presetRange(preset: RangePreset, today: string): DateRange | undefined {
  const [y, m] = parts(today);
  switch (preset) {
    case "7d":
      return { from: addDays(today, -6), to: today };
    case "30d":
      return { from: addDays(today, -29), to: today };
    case "90d":
      return { from: addDays(today, -89), to: today };
    case "this_month":
      return { from: iso(new Date(Date.UTC(y, m - 1, 1))), to: today };
    case "last_month":
      // Day 0 of this month is the last day of the one before.
      return { from: iso(new Date(Date.UTC(y, m - 2, 1))), to: iso(new Date(Date.UTC(y, m - 1, 0))) };
    default:
      return undefined;
  }
}

/** The preset a URL's query names: `range`, or `custom` when it has only `from` or `to`. */
export function presetOf(params: URLSearchParams): RangePreset {
  const r = params.get("range") ?? "";
  if ((rangePresets as readonly string[]).includes(r)) return r as RangePreset;
  return params.get("from") || params.get("to") ? "custom" : "all";
}
