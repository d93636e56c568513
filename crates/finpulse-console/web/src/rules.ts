/** "file:3:7: message" as the server's ruleset errors read, split for display. */
export function ruleError(message: string): { line: number; column: number; message: string } | undefined {
  const m = /:(\d+):(\d+): (.*)$/s.exec(message);
  return m ? { line: Number(m[1]), column: Number(m[2]), message: m[3] } : undefined;
}
