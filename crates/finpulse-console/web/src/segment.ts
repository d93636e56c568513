// The segment builder's rows as the rule text POST /v1/segments takes (finpulse-growth's
// segments.rs): `did EVENT [OP N] [in Nd]`, `not EVENT [in Nd]`, `user.FIELD OP VALUE`. Pure,
// so unit tests read it; what the server would refuse anyway is refused here first, with a
// message key the screen translates.

import type { MessageKey } from "./i18n";

export const ruleKinds = ["did", "not", "user"] as const;
export type RuleKind = (typeof ruleKinds)[number];

/** How often: `did EVENT OP N`; "" is at least once (no count). */
export const countOps = ["", ">=", ">", "=", "<=", "<"] as const;
/** A user property against a value (text only with = and !=). */
export const propertyOps = ["=", "!=", ">", ">=", "<", "<="] as const;

/** One row of the builder, as its inputs hold it. */
export interface RuleRow {
  kind: RuleKind;
  /** did / not: an event type. */
  event: string;
  /** did: one of `countOps`; user: one of `propertyOps`. */
  op: string;
  /** did with an op: how many times. */
  count: string;
  /** did / not: within the last N days ("" for ever). */
  days: string;
  /** user: a field of user_signup, without `user.`. */
  field: string;
  /** user: its type from /v1/schema (string, int, float, bool, timestamp), when known. */
  fieldType?: string;
  /** user: the value compared with. */
  value: string;
}

export type RuleResult = { text: string } | { error: MessageKey; params?: Record<string, string | number> };

export const emptyRow = (kind: RuleKind = "did", event = "", field = ""): RuleRow => ({
  kind,
  event,
  op: kind === "user" ? "=" : "",
  count: "",
  days: "",
  field,
  value: "",
});

const wholeNumber = /^\d{1,9}$/;

/** The rule a row says, or why it cannot be one. */
export function ruleText(row: RuleRow): RuleResult {
  if (row.kind === "did" || row.kind === "not") {
    const event = row.event.trim();
    if (!event || /\s/.test(event)) return { error: "segment.err_event" };
    const days = row.days.trim();
    if (days && !(wholeNumber.test(days) && Number(days) > 0)) return { error: "segment.err_days", params: { value: days } };
    const window = days ? ` in ${Number(days)}d` : "";
    if (row.kind === "not") return { text: `not ${event}${window}` };
    if (!(countOps as readonly string[]).includes(row.op)) return { error: "segment.err_op", params: { value: row.op } };
    let count = "";
    if (row.op) {
      const n = row.count.trim();
      if (!wholeNumber.test(n)) return { error: "segment.err_count", params: { value: n } };
      count = ` ${row.op} ${Number(n)}`;
    }
    return { text: `did ${event}${count}${window}` };
  }
  if (row.kind === "user") {
    const field = row.field.trim();
    if (!/^[A-Za-z0-9_]+$/.test(field)) return { error: "segment.err_field" };
    const name = `user.${field}`;
    if (!(propertyOps as readonly string[]).includes(row.op)) return { error: "segment.err_op", params: { value: row.op } };
    const value = row.value.trim();
    if (!value || /[\n\r]/.test(value)) return { error: "segment.err_value" };
    const type = row.fieldType;
    if (type === "string" && row.op !== "=" && row.op !== "!=") return { error: "segment.err_text_op", params: { field: name } };
    if ((type === "int" || type === "float") && !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value.replace(/^'(.*)'$/, "$1"))) {
      return { error: "segment.err_number", params: { field: name, value } };
    }
    if (type === "bool" && value !== "true" && value !== "false") return { error: "segment.err_bool", params: { field: name, values: "true / false" } };
    return { text: `${name} ${row.op} ${value}` };
  }
  return { error: "segment.err_kind" };
}
