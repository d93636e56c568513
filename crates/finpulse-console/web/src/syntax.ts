// The rules editor's syntax colouring, as a pure tokenizer (no CodeMirror, so unit tests read
// it): a ruleset is TOML (`[[rule]]` tables, keys, strings, numbers, booleans, comments), and
// the text of each `when = "…"` is the rules language of finpulse-risk's rules.rs — keywords
// and, or, not, in; true and false; the functions min, max and abs; dotted feature names
// (payment.amount_fen, txn.*, user.*); numbers; quoted text; comparisons; `#` comments.

/** What a piece of a line is; the editor gives it the class `rl-KIND`. */
export type TokenKind = "comment" | "section" | "key" | "string" | "number" | "bool" | "keyword" | "function" | "feature" | "operator" | "punct";

export interface Token {
  from: number;
  to: number;
  kind: TokenKind;
}

/** What carries over from one line to the next: an open multi-line string (and whether it
 * holds a rule condition) and how deep inside `[ … ]` arrays a value is. */
export interface LineState {
  open: '"""' | "'''" | null;
  expr: boolean;
  depth: number;
}

export const startState = (): LineState => ({ open: null, expr: false, depth: 0 });

const KEYWORDS = new Set(["and", "or", "not", "in"]);
const FUNCTIONS = new Set(["min", "max", "abs"]);
const COMPARISONS = ["==", "!=", "<=", ">=", "<", ">"];

/** Keys whose string value is a rule condition. */
const EXPRESSION_KEYS = new Set(["when"]);

const isIdentStart = (c: string) => /[A-Za-z_]/.test(c);
const isIdent = (c: string) => /[A-Za-z0-9_.]/.test(c);
const isDigit = (c: string) => c >= "0" && c <= "9";

/** The rules language in `line` from `at` up to where `end` (a closing TOML quote) starts, or
 * the end of the line. Answers where it stopped: at `end`, or at the line's length. */
function expression(line: string, at: number, end: string, escapes: boolean, out: Token[]): number {
  let i = at;
  const closes = (k: number) => end !== "" && line.startsWith(end, k) && !(escapes && line[k - 1] === "\\");
  while (i < line.length) {
    if (closes(i)) return i;
    const c = line[i];
    if (c === " " || c === "\t") {
      i++;
    } else if (c === "#") {
      // A comment runs to the end of the condition.
      let j = i;
      while (j < line.length && !closes(j)) j++;
      out.push({ from: i, to: j, kind: "comment" });
      i = j;
    } else if (isDigit(c) || (c === "." && isDigit(line[i + 1] ?? ""))) {
      let j = i;
      while (j < line.length && /[0-9._]/.test(line[j])) j++;
      if (/[eE]/.test(line[j] ?? "")) {
        j++;
        if (/[+-]/.test(line[j] ?? "")) j++;
        while (j < line.length && isDigit(line[j])) j++;
      }
      out.push({ from: i, to: j, kind: "number" });
      i = j;
    } else if (c === "'" || c === '"') {
      // Text in the condition (in the quote the TOML string does not close with).
      let j = i + 1;
      while (j < line.length && line[j] !== c && !closes(j)) j++;
      if (line[j] === c) j++;
      out.push({ from: i, to: j, kind: "string" });
      i = j;
    } else if (escapes && c === "\\" && (line[i + 1] === '"' || line[i + 1] === "'")) {
      // \" inside a TOML basic string: quoted text in the condition.
      const q = line[i + 1];
      let j = i + 2;
      while (j < line.length && !(line[j] === "\\" && line[j + 1] === q) && !closes(j)) j++;
      if (line[j] === "\\") j += 2;
      out.push({ from: i, to: j, kind: "string" });
      i = j;
    } else if (isIdentStart(c)) {
      let j = i;
      while (j < line.length && isIdent(line[j])) j++;
      const word = line.slice(i, j);
      let k = j;
      while (line[k] === " ") k++;
      const kind: TokenKind | undefined = KEYWORDS.has(word)
        ? "keyword"
        : word === "true" || word === "false"
          ? "bool"
          : FUNCTIONS.has(word) && line[k] === "("
            ? "function"
            : word.includes(".")
              ? "feature"
              : undefined;
      if (kind) out.push({ from: i, to: j, kind });
      i = j;
    } else {
      const op = COMPARISONS.find((o) => line.startsWith(o, i));
      if (op) {
        out.push({ from: i, to: i + op.length, kind: "operator" });
        i += op.length;
      } else {
        if ("+-*/()[],".includes(c)) out.push({ from: i, to: i + 1, kind: "punct" });
        i++;
      }
    }
  }
  return i;
}

/** A TOML string starting at `at` (its opening quote): answers where it ended, or `null` when a
 * multi-line string stays open past the line (the state says so). */
function tomlString(line: string, at: number, asExpr: boolean, state: LineState, out: Token[]): number | null {
  const triple = line.startsWith('"""', at) ? '"""' : line.startsWith("'''", at) ? "'''" : null;
  const end = triple ?? line[at];
  const escapes = end[0] === '"';
  out.push({ from: at, to: at + end.length, kind: "string" });
  const body = at + end.length;
  let stop: number;
  if (asExpr) stop = expression(line, body, end, escapes, out);
  else {
    stop = body;
    while (stop < line.length && !(line.startsWith(end, stop) && !(escapes && line[stop - 1] === "\\"))) stop++;
    if (stop > body) out.push({ from: body, to: stop, kind: "string" });
  }
  if (stop >= line.length) {
    if (triple) {
      state.open = triple;
      state.expr = asExpr;
    }
    return triple ? null : stop;
  }
  out.push({ from: stop, to: stop + end.length, kind: "string" });
  return stop + end.length;
}

/** TOML values from `at` to the end of the line: strings, numbers, booleans, arrays, comments. */
function values(line: string, at: number, asExpr: boolean, state: LineState, out: Token[]): void {
  let i = at;
  while (i < line.length) {
    const c = line[i];
    if (c === " " || c === "\t" || c === ",") {
      i++;
    } else if (c === "#") {
      out.push({ from: i, to: line.length, kind: "comment" });
      return;
    } else if (c === '"' || c === "'") {
      const next = tomlString(line, i, asExpr, state, out);
      if (next === null) return;
      i = next;
    } else if (c === "[" || c === "{") {
      state.depth++;
      out.push({ from: i, to: i + 1, kind: "punct" });
      i++;
    } else if (c === "]" || c === "}") {
      state.depth = Math.max(0, state.depth - 1);
      out.push({ from: i, to: i + 1, kind: "punct" });
      i++;
    } else {
      let j = i;
      while (j < line.length && !/[\s,\]}#]/.test(line[j])) j++;
      const word = line.slice(i, j);
      const kind: TokenKind | undefined =
        word === "true" || word === "false" ? "bool" : /^[+-]?(\d[\d_]*(\.[\d_]+)?([eE][+-]?\d+)?|inf|nan)$/.test(word) ? "number" : undefined;
      if (kind) out.push({ from: i, to: j, kind });
      i = Math.max(j, i + 1);
    }
  }
}

/** The tokens of one line of a ruleset, given the state after the line before; answers them
 * with the state after this line (a new object: `state` is not changed). */
export function tokenizeLine(line: string, before: LineState): { tokens: Token[]; state: LineState } {
  const state = { ...before };
  const out: Token[] = [];
  let i = 0;
  if (state.open) {
    // Inside a multi-line string opened on an earlier line.
    const end = state.open;
    const escapes = end[0] === '"';
    let stop: number;
    if (state.expr) stop = expression(line, 0, end, escapes, out);
    else {
      stop = 0;
      while (stop < line.length && !(line.startsWith(end, stop) && !(escapes && line[stop - 1] === "\\"))) stop++;
      if (stop > 0) out.push({ from: 0, to: stop, kind: "string" });
    }
    if (stop >= line.length) return { tokens: out, state };
    out.push({ from: stop, to: stop + end.length, kind: "string" });
    state.open = null;
    state.expr = false;
    values(line, stop + end.length, false, state, out);
    return { tokens: out, state };
  }
  while (line[i] === " " || line[i] === "\t") i++;
  if (i >= line.length) return { tokens: out, state };
  if (line[i] === "#") {
    out.push({ from: i, to: line.length, kind: "comment" });
    return { tokens: out, state };
  }
  if (state.depth === 0 && line[i] === "[") {
    // A table header: [lists] or [[rule]], then perhaps a comment.
    const close = line.indexOf("]", i);
    let end = close < 0 ? line.length : close + 1;
    if (line[end] === "]") end++;
    out.push({ from: i, to: end, kind: "section" });
    const hash = line.indexOf("#", end);
    if (hash >= 0) out.push({ from: hash, to: line.length, kind: "comment" });
    return { tokens: out, state };
  }
  if (state.depth === 0) {
    const key = /^([A-Za-z0-9_.\-]+|"[^"]*"|'[^']*')\s*=/.exec(line.slice(i));
    if (key) {
      const name = key[1];
      out.push({ from: i, to: i + name.length, kind: "key" });
      const eq = i + key[0].length;
      values(line, eq, EXPRESSION_KEYS.has(name), state, out);
      return { tokens: out, state };
    }
  }
  values(line, i, false, state, out);
  return { tokens: out, state };
}

/** Every line's tokens, for tests and for a whole text. */
export function tokenize(text: string): Token[][] {
  let state = startState();
  return text.split("\n").map((line) => {
    const r = tokenizeLine(line, state);
    state = r.state;
    return r.tokens;
  });
}
