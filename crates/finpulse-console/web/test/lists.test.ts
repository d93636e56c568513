import { describe, expect, it } from "vitest";
import { LIST_ENTRY_CHARS_MAX, emptyLists, entryProblem, isProblem, listsOf, readLists, writeLists, type Lists } from "../src/lists";

const RULESET = `name = "cards"
review_at = 0.5

[lists]
block_devices = ["stolen-phone", 'raw\\id']   # a comment
allow_users = [
  "vip-1",  # trailing comments
  "vip \\"2\\"",
]

[[rule]]
name = "large"
when = "payment.amount_fen > 500000"
score = 0.7
`;

const lists = (r: ReturnType<typeof readLists>): Lists => {
  if (isProblem(r)) throw new Error(`${r.error} at ${r.line}: ${r.found}`);
  return r;
};

describe("the [lists] table", () => {
  it("reads every list, literal and escaped strings and multi-line arrays alike", () => {
    const l = lists(readLists(RULESET));
    expect(l.block_devices).toEqual(["stolen-phone", "raw\\id"]);
    expect(l.allow_users).toEqual(["vip-1", 'vip "2"']);
    expect(l.block_users).toEqual([]);
  });

  it("is empty when the text has none", () => {
    expect(lists(readLists('name = "cards"\n[[rule]]\nname = "x"\n'))).toEqual(emptyLists());
  });

  it("says at which line it does not read, and names an unknown list", () => {
    const bad = readLists('name = "c"\n[lists]\nblock_devices = ["a" "b"]\n');
    expect(bad).toEqual({ error: "lists.err_syntax", line: 3, found: "b" });
    expect(readLists('[lists]\nblock_planets = ["x"]\n')).toEqual({ error: "lists.err_unknown", line: 2, found: "block_planets" });
    expect(readLists('[lists]\nblock_users = ["open\n')).toMatchObject({ error: "lists.err_syntax", line: 2 });
  });

  it("is written back in place, the rest of the text kept, and reads back the same", () => {
    const l = lists(readLists(RULESET));
    l.block_devices = [...l.block_devices, "new-device"];
    l.allow_users = [];
    const text = writeLists(RULESET, l);
    expect(text).toContain('[lists]\nblock_devices = ["stolen-phone", "raw\\\\id", "new-device"]\n\n[[rule]]');
    expect(text).not.toContain("vip-1");
    expect(text.startsWith('name = "cards"\nreview_at = 0.5\n\n[lists]')).toBe(true);
    expect(text.endsWith('score = 0.7\n')).toBe(true);
    expect(lists(readLists(text))).toEqual(l);
  });

  it("goes before the first rule when the text had none, and away when every list is empty", () => {
    const plain = 'name = "cards"\n\n[[rule]]\nname = "x"\n';
    const l = emptyLists();
    l.block_users = ["u-9"];
    const text = writeLists(plain, l);
    expect(text).toBe('name = "cards"\n\n[lists]\nblock_users = ["u-9"]\n\n[[rule]]\nname = "x"\n');
    expect(writeLists(text, emptyLists())).toBe('name = "cards"\n\n[[rule]]\nname = "x"\n');
  });

  it("takes the API's lists, ignoring names it does not know", () => {
    expect(listsOf({ block_cards: ["c1"], other: ["x"] }).block_cards).toEqual(["c1"]);
    expect(listsOf(undefined)).toEqual(emptyLists());
  });

  it("refuses empty, overlong and repeated entries", () => {
    const l = emptyLists();
    l.block_users = ["u1"];
    expect(entryProblem(l, "block_users", "  ")).toBe("lists.err_empty");
    expect(entryProblem(l, "block_users", "x".repeat(LIST_ENTRY_CHARS_MAX + 1))).toBe("lists.err_long");
    expect(entryProblem(l, "block_users", " u1 ")).toBe("lists.err_duplicate");
    expect(entryProblem(l, "block_users", "u2")).toBeUndefined();
  });
});
