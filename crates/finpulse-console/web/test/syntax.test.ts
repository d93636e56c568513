import { describe, expect, it } from "vitest";
import { startState, tokenize, tokenizeLine, type TokenKind } from "../src/syntax";

/** Each line's tokens as [text, kind] pairs. */
function read(text: string): [string, TokenKind][][] {
  const lines = text.split("\n");
  return tokenize(text).map((tokens, i) => tokens.map((t) => [lines[i].slice(t.from, t.to), t.kind]));
}

describe("rules editor colouring", () => {
  it("marks a ruleset's TOML: tables, keys, strings, numbers, booleans, comments", () => {
    const lines = read('name = "cards"   # the card rules\nreview_at = 0.5\n\n[[rule]]\nshadow = true\n[lists]\nblock_users = ["u1", "u2"]');
    expect(lines[0]).toEqual([["name", "key"], ['"', "string"], ["cards", "string"], ['"', "string"], ["# the card rules", "comment"]]);
    expect(lines[1]).toEqual([["review_at", "key"], ["0.5", "number"]]);
    expect(lines[2]).toEqual([]);
    expect(lines[3]).toEqual([["[[rule]]", "section"]]);
    expect(lines[4]).toEqual([["shadow", "key"], ["true", "bool"]]);
    expect(lines[5]).toEqual([["[lists]", "section"]]);
    expect(lines[6].filter(([, k]) => k !== "punct").map(([x, k]) => `${k}:${x}`)).toEqual(["key:block_users", 'string:"', "string:u1", 'string:"', 'string:"', "string:u2", 'string:"']);
  });

  it("marks the rules language inside when: keywords, features, numbers, text, comparisons", () => {
    const [line] = read(`when = "payment.amount_fen >= 500_000 and not txn.type in ['transfer', 'withdrawal'] or max(user.tx_count_1h, 2) > 1e3 # big"`);
    const kinds = line.map(([x, k]) => `${k}:${x}`);
    expect(kinds).toEqual([
      "key:when",
      'string:"',
      "feature:payment.amount_fen",
      "operator:>=",
      "number:500_000",
      "keyword:and",
      "keyword:not",
      "feature:txn.type",
      "keyword:in",
      "punct:[",
      "string:'transfer'",
      "punct:,",
      "string:'withdrawal'",
      "punct:]",
      "keyword:or",
      "function:max",
      "punct:(",
      "feature:user.tx_count_1h",
      "punct:,",
      "number:2",
      "punct:)",
      "operator:>",
      "number:1e3",
      "comment:# big",
      'string:"',
    ]);
  });

  it("reads a condition in a literal string with double-quoted text, and == and !=", () => {
    const [line] = read(`when = 'txn.currency != "CNY" and user.known == 0'`);
    expect(line.map(([x, k]) => `${k}:${x}`)).toEqual([
      "key:when",
      "string:'",
      "feature:txn.currency",
      "operator:!=",
      'string:"CNY"',
      "keyword:and",
      "feature:user.known",
      "operator:==",
      "number:0",
      "string:'",
    ]);
  });

  it("does not read a word as a keyword outside a condition, nor inside another word", () => {
    const lines = read('description = "not in and or"\nwhen = "user.android_share > 0 andx"');
    expect(lines[0].map(([, k]) => k)).toEqual(["key", "string", "string", "string"]);
    expect(lines[1].map(([x, k]) => `${k}:${x}`)).toEqual(["key:when", 'string:"', "feature:user.android_share", "operator:>", "number:0", 'string:"']);
  });

  it("carries a multi-line condition and an open array over lines", () => {
    const lines = read('when = """\npayment.amount_fen > 1\n  and txn.is_night == 1 """\nscore = 0.7\nblock_devices = [\n  "d1",\n]\n[[rule]]');
    expect(lines[0]).toEqual([["when", "key"], ['"""', "string"]]);
    expect(lines[1]).toEqual([["payment.amount_fen", "feature"], [">", "operator"], ["1", "number"]]);
    expect(lines[2]).toEqual([["and", "keyword"], ["txn.is_night", "feature"], ["==", "operator"], ["1", "number"], ['"""', "string"]]);
    expect(lines[3]).toEqual([["score", "key"], ["0.7", "number"]]);
    expect(lines[5]).toEqual([['"', "string"], ["d1", "string"], ['"', "string"]]);
    expect(lines[6]).toEqual([["]", "punct"]]);
    expect(lines[7]).toEqual([["[[rule]]", "section"]]);
  });

  it("leaves the state it was given unchanged", () => {
    const before = startState();
    const r = tokenizeLine('when = """payment.amount_fen', before);
    expect(before).toEqual(startState());
    expect(r.state).toEqual({ open: '"""', expr: true, depth: 0 });
  });
});
