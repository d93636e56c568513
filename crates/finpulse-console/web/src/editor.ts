// The rules editor: CodeMirror 6 with line numbers, history, syntax colouring and a linter
// whose diagnostics come from the server (POST /v1/rules/check), so the error shown as the
// user types is the one publishing would give. Loaded only on the rules screen (its own chunk).
//
// The colouring is a view plugin marking what `syntax.ts` tokenizes (classes `rl-KIND`, their
// colours in style.css for both themes) rather than a StreamLanguage from @codemirror/language:
// the same tokenizer under StreamLanguage made this chunk 4.6 kB (brotli) larger, against 1.5
// kB for the plugin, and needed @lezer/highlight for fixed class names.

import { EditorState, RangeSetBuilder } from "@codemirror/state";
import { Decoration, EditorView, ViewPlugin, highlightActiveLine, keymap, lineNumbers, type DecorationSet, type ViewUpdate } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { linter, lintGutter, type Diagnostic } from "@codemirror/lint";
import { startState, tokenizeLine, type LineState, type TokenKind } from "./syntax";

/** Where a ruleset is wrong: 1-based line and column. */
export interface Problem {
  line: number;
  column: number;
  message: string;
}

const marks = new Map<TokenKind, Decoration>();
const mark = (kind: TokenKind): Decoration => {
  let m = marks.get(kind);
  if (!m) marks.set(kind, (m = Decoration.mark({ class: `rl-${kind}` })));
  return m;
};

/** Colours the lines in view. The state at each line's start (an open multi-line string, an
 * open array) is kept for the lines before the view, and dropped from the first changed line. */
const colouring = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    /** states[n] is the state before line n + 1. */
    states: LineState[] = [startState()];
    constructor(view: EditorView) {
      this.decorations = this.build(view);
    }
    update(u: ViewUpdate): void {
      if (u.docChanged) {
        let first = u.startState.doc.lines;
        u.changes.iterChangedRanges((fromA) => (first = Math.min(first, u.startState.doc.lineAt(fromA).number)));
        this.states.length = Math.min(this.states.length, first);
      }
      if (u.docChanged || u.viewportChanged) this.decorations = this.build(u.view);
    }
    build(view: EditorView): DecorationSet {
      const b = new RangeSetBuilder<Decoration>();
      const doc = view.state.doc;
      const first = doc.lineAt(view.viewport.from).number;
      const last = doc.lineAt(view.viewport.to).number;
      while (this.states.length < first) {
        const n = this.states.length;
        this.states.push(tokenizeLine(doc.line(n).text, this.states[n - 1]).state);
      }
      let state = this.states[first - 1];
      for (let n = first; n <= last; n++) {
        const line = doc.line(n);
        const r = tokenizeLine(line.text, state);
        for (const t of r.tokens) if (t.to > t.from) b.add(line.from + t.from, line.from + t.to, mark(t.kind));
        state = r.state;
        if (this.states.length === n) this.states.push(state);
      }
      return b.finish();
    }
  },
  { decorations: (p) => p.decorations },
);

/** An editor in `parent` holding `doc`; `check` is asked about the text after each pause in
 * typing and answers its first problem, or none. */
export function rulesEditor(parent: HTMLElement, doc: string, check: (text: string) => Promise<Problem | undefined>, label: string): EditorView {
  // The page's theme (the screen is drawn again when it changes): caret, selection, gutters and
  // the active line follow it.
  const dark = document.documentElement.dataset.theme === "dark";
  const diagnostics = linter(
    async (view): Promise<Diagnostic[]> => {
      const problem = await check(view.state.doc.toString());
      if (!problem) return [];
      const d = view.state.doc;
      const line = d.line(Math.min(Math.max(problem.line, 1), d.lines));
      const from = line.from + Math.min(Math.max(problem.column - 1, 0), line.length);
      return [{ from, to: Math.min(from + 1, line.to), severity: "error", message: problem.message }];
    },
    { delay: 300 },
  );
  return new EditorView({
    parent,
    state: EditorState.create({
      doc,
      extensions: [
        lineNumbers(),
        highlightActiveLine(),
        history(),
        keymap.of([...defaultKeymap, ...historyKeymap]),
        lintGutter(),
        diagnostics,
        colouring,
        EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false" }),
        EditorView.theme(
          {
            "&": { minHeight: "220px", border: "1px solid var(--line)", borderRadius: "6px" },
            "&.cm-focused": { outline: "2px solid var(--accent)", outlineOffset: "1px" },
            ".cm-content": { fontFamily: "ui-monospace, Menlo, monospace" },
            ".cm-activeLine": { backgroundColor: dark ? "#1c2430" : "#eaf1fb" },
          },
          { dark },
        ),
      ],
    }),
  });
}
