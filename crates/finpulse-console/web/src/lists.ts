// The allow and block lists live in the ruleset file's `[lists]` table. This reads that table
// from a ruleset's text and writes it back with other entries, leaving the rest of the text as
// it is. Pure functions: no DOM, so unit tests check them.

/** Every list a ruleset may have, in the order they are written. */
export const LIST_NAMES = [
  "block_users",
  "block_devices",
  "block_terminals",
  "block_merchants",
  "block_cards",
  "allow_users",
  "allow_devices",
  "allow_cards",
] as const;

export type ListName = (typeof LIST_NAMES)[number];
export type Lists = Record<ListName, string[]>;

/** The longest entry a list takes, in characters (ids, not prose). */
export const LIST_ENTRY_CHARS_MAX = 128;

/** Why a `[lists]` table does not read: a message key, its line, and what was found. */
export interface ListsProblem {
  error: "lists.err_syntax" | "lists.err_unknown";
  line: number;
  found: string;
}

export function emptyLists(): Lists {
  return Object.fromEntries(LIST_NAMES.map((n) => [n, [] as string[]])) as unknown as Lists;
}

/** Lists as the API answers them (absent lists empty, unknown names ignored). */
export function listsOf(answer: Partial<Record<string, unknown>> | undefined): Lists {
  const lists = emptyLists();
  for (const n of LIST_NAMES) {
    const v = answer?.[n];
    if (Array.isArray(v)) lists[n] = v.map(String);
  }
  return lists;
}

const HEADER = /^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$/;
const ANY_TABLE = /^\s*\[/;

/** The lines [start, end) of the `[lists]` table, header included, or undefined. */
function tableLines(lines: string[]): [number, number] | undefined {
  const start = lines.findIndex((l) => HEADER.exec(l)?.[1] === "lists");
  if (start < 0) return undefined;
  let end = start + 1;
  // The table runs to the next table header (a line starting with `[` outside an array).
  let depth = 0;
  for (; end < lines.length; end++) {
    if (depth === 0 && ANY_TABLE.test(lines[end])) break;
    depth += bracketDepth(lines[end]);
  }
  return [start, end];
}

/** How much a line opens arrays (strings and comments skipped). */
function bracketDepth(line: string): number {
  let depth = 0;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === "#") break;
    if (c === '"' || c === "'") {
      i = stringEnd(line, i);
      continue;
    }
    if (c === "[") depth++;
    if (c === "]") depth--;
  }
  return depth;
}

/** The index of the quote closing the string that opens at `at` (the line's end if none). */
function stringEnd(line: string, at: number): number {
  const quote = line[at];
  for (let i = at + 1; i < line.length; i++) {
    if (quote === '"' && line[i] === "\\") i++;
    else if (line[i] === quote) return i;
  }
  return line.length;
}

type Token = { kind: "key" | "string" | "=" | "[" | "]" | ","; text: string; line: number };

/** Tokens of the table's body; a problem at the first character that is none of them. */
function tokens(lines: string[], firstLine: number): Token[] | ListsProblem {
  const out: Token[] = [];
  for (const [n, line] of lines.entries()) {
    const at = firstLine + n;
    let i = 0;
    while (i < line.length) {
      const c = line[i];
      if (c === "#") break;
      if (c === " " || c === "\t" || c === "\r") {
        i++;
      } else if ("=[],".includes(c)) {
        out.push({ kind: c as Token["kind"], text: c, line: at });
        i++;
      } else if (c === '"' || c === "'") {
        const end = stringEnd(line, i);
        if (end >= line.length) return { error: "lists.err_syntax", line: at, found: line.slice(i) };
        const raw = line.slice(i, end + 1);
        let text: string;
        try {
          text = c === "'" ? raw.slice(1, -1) : (JSON.parse(raw.replace(/\\U([0-9A-Fa-f]{8})/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))) as string);
        } catch {
          return { error: "lists.err_syntax", line: at, found: raw };
        }
        out.push({ kind: "string", text, line: at });
        i = end + 1;
      } else {
        const key = /^[A-Za-z0-9_-]+/.exec(line.slice(i));
        if (!key) return { error: "lists.err_syntax", line: at, found: line.slice(i) };
        out.push({ kind: "key", text: key[0], line: at });
        i += key[0].length;
      }
    }
  }
  return out;
}

/** The `[lists]` table of a ruleset's text: every list (absent ones empty), or where it does
 * not read. A text without the table has empty lists. */
export function readLists(text: string): Lists | ListsProblem {
  const lines = text.split("\n");
  const lists = emptyLists();
  const span = tableLines(lines);
  if (!span) return lists;
  const toks = tokens(lines.slice(span[0] + 1, span[1]), span[0] + 2);
  if (!Array.isArray(toks)) return toks;
  let i = 0;
  const bad = (tok: Token | undefined): ListsProblem => ({ error: "lists.err_syntax", line: tok?.line ?? span[1], found: tok?.text ?? "" });
  while (i < toks.length) {
    const key = toks[i];
    if (key.kind !== "key") return bad(key);
    if (!(LIST_NAMES as readonly string[]).includes(key.text)) return { error: "lists.err_unknown", line: key.line, found: key.text };
    if (toks[i + 1]?.kind !== "=") return bad(toks[i + 1]);
    if (toks[i + 2]?.kind !== "[") return bad(toks[i + 2]);
    i += 3;
    const entries: string[] = [];
    // Strings separated by commas, a trailing comma allowed.
    while (toks[i]?.kind !== "]") {
      if (toks[i]?.kind !== "string") return bad(toks[i]);
      entries.push(toks[i].text);
      i++;
      if (toks[i]?.kind === ",") i++;
      else if (toks[i]?.kind !== "]") return bad(toks[i]);
    }
    i++;
    lists[key.text as ListName] = entries;
  }
  return lists;
}

/** Whether `readLists` answered a problem. */
export function isProblem(r: Lists | ListsProblem): r is ListsProblem {
  return "error" in r;
}

/** The `[lists]` table for `lists`, non-empty lists only; empty when every list is. */
export function listsTable(lists: Lists): string {
  const written = LIST_NAMES.filter((n) => lists[n].length > 0).map((n) => `${n} = [${lists[n].map((e) => JSON.stringify(e)).join(", ")}]`);
  return written.length ? `[lists]\n${written.join("\n")}\n` : "";
}

/** `text` with its `[lists]` table replaced by one of `lists` (put before the first other
 * table when it had none; removed when every list is empty). The rest of the text stays. */
export function writeLists(text: string, lists: Lists): string {
  const lines = text.split("\n");
  const table = listsTable(lists);
  const span = tableLines(lines);
  let at: number;
  if (span) {
    lines.splice(span[0], span[1] - span[0]);
    at = span[0];
  } else {
    const first = lines.findIndex((l) => ANY_TABLE.test(l));
    at = first < 0 ? lines.length : first;
  }
  if (!table) return lines.join("\n");
  // A blank line before and after the table, unless one is there already.
  const before = at > 0 && lines[at - 1]?.trim() !== "" ? "\n" : "";
  const after = at < lines.length && lines[at]?.trim() !== "" ? "\n" : "";
  const insert = (before + table + after).replace(/\n$/, "").split("\n");
  lines.splice(at, 0, ...insert);
  return lines.join("\n");
}

/** Why `entry` cannot join list `name`: a message key, or undefined when it can. */
export function entryProblem(lists: Lists, name: ListName, entry: string): "lists.err_empty" | "lists.err_long" | "lists.err_duplicate" | undefined {
  if (entry.trim() === "") return "lists.err_empty";
  if ([...entry].length > LIST_ENTRY_CHARS_MAX) return "lists.err_long";
  if (lists[name].includes(entry.trim())) return "lists.err_duplicate";
  return undefined;
}
