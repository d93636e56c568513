/** "file:3:7: message" as the server's ruleset errors read, split for display. */
export function ruleError(message: string): { line: number; column: number; message: string } | undefined {
  const m = /:(\d+):(\d+): (.*)$/s.exec(message);
  return m ? { line: Number(m[1]), column: Number(m[2]), message: m[3] } : undefined;
}

/** Where the rules editor keeps its draft for the tab's life, so the lists screen can write
 * its lists into the same draft and a page change loses nothing. */
export const RULES_DRAFT_KEY = "finpulse.rules.draft";

/** Where a new ruleset starts: the shape every ruleset has. */
export const RULESET_TEMPLATE = `name = "cards"
review_at = 0.5
block_at = 0.9

[[rule]]
name = "large_payment"
when = "payment.amount_fen > 500000"
score = 0.7
action = "review"
`;
