// The console talks to the same /v1 API as every client, with the session cookie the sign-in
// set; changes repeat the session's CSRF token, as the server asks.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface Who {
  actor: string;
  role: string;
  tenant: string;
  permissions: string[];
  csrf_token?: string;
}

/** A table answer: insights, goals and SQL all answer columns and rows. */
export interface Table {
  columns: (string | { name: string; type?: string })[];
  rows: unknown[][];
  rows_truncated?: boolean;
}

let csrf: string | undefined;

export function setCsrf(token: string | undefined): void {
  csrf = token;
}

export interface CallOptions {
  body?: unknown;
  text?: string;
  purpose?: string;
}

export async function call<T>(method: string, path: string, options: CallOptions = {}): Promise<{ body: T; headers: Headers }> {
  const headers: Record<string, string> = {};
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  } else if (options.text !== undefined) {
    headers["content-type"] = "text/plain";
    body = options.text;
  }
  if (method !== "GET" && csrf) headers["x-csrf-token"] = csrf;
  if (options.purpose) headers["x-purpose"] = options.purpose;
  const r = await fetch(path, { method, headers, body, credentials: "same-origin" });
  const text = await r.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  if (!r.ok) {
    const message = typeof parsed === "object" && parsed && "error" in parsed ? String((parsed as { error: unknown }).error) : `${r.status}`;
    throw new ApiError(r.status, message);
  }
  return { body: parsed as T, headers: r.headers };
}

export async function get<T>(path: string): Promise<T> {
  return (await call<T>("GET", path)).body;
}

export async function post<T>(path: string, body?: unknown): Promise<T> {
  return (await call<T>("POST", path, { body })).body;
}

/** Column names of a table answer. */
export function columnNames(table: Table): string[] {
  return table.columns.map((c) => (typeof c === "string" ? c : c.name));
}

/** A table as CSV (RFC 4180 quoting), as the export buttons write it. */
export function toCsv(table: Table): string {
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return "";
    const s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [columnNames(table).map(cell).join(",")];
  for (const row of table.rows) lines.push(row.map(cell).join(","));
  return lines.join("\n") + "\n";
}
