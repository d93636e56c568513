// The rules editor: CodeMirror 6 with line numbers, history and a linter whose diagnostics
// come from the server (POST /v1/rules/check), so the error shown as the user types is the
// one publishing would give. Loaded only on the rules screen (its own chunk).

import { EditorState } from "@codemirror/state";
import { EditorView, highlightActiveLine, keymap, lineNumbers } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { linter, lintGutter, type Diagnostic } from "@codemirror/lint";

/** Where a ruleset is wrong: 1-based line and column. */
export interface Problem {
  line: number;
  column: number;
  message: string;
}

/** An editor in `parent` holding `doc`; `check` is asked about the text after each pause in
 * typing and answers its first problem, or none. */
export function rulesEditor(parent: HTMLElement, doc: string, check: (text: string) => Promise<Problem | undefined>, label: string): EditorView {
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
        EditorView.contentAttributes.of({ "aria-label": label, spellcheck: "false" }),
        EditorView.theme({ "&": { minHeight: "220px", border: "1px solid var(--line)", borderRadius: "6px" }, ".cm-content": { fontFamily: "ui-monospace, Menlo, monospace" } }),
      ],
    }),
  });
}
