// The analytics pages share one view: a time range and queue / job-type filters, kept in the URL
// query string (shareable, survives reloads, carried across the Analytics navigation).
//   range=24h|7d|30d (default 24h) or range=custom&from=ISO&to=ISO; queue=...; jobType=...

export const PRESETS = [
  { value: "24h", label: "24h", ms: 24 * 3_600_000, name: "24 hours" },
  { value: "7d", label: "7d", ms: 7 * 86_400_000, name: "7 days" },
  { value: "30d", label: "30d", ms: 30 * 86_400_000, name: "30 days" },
] as const;
export type RangeKey = (typeof PRESETS)[number]["value"] | "custom";

export interface View {
  range: RangeKey;
  from: string; // ISO 8601
  to: string;
  queue: string | null;
  jobType: string | null;
  /** A problem with a custom range (the query is not sent while it is set). */
  invalid: string | null;
}

const MINUTE = 60_000;
const MAX_MS = 400 * 86_400_000; // the API's bound

/** The view a query string describes, with presets ending at `now` rounded up to the minute (so
 * re-renders within a minute ask the same question and hit urql's cache). */
export function viewOf(params: URLSearchParams, now = Date.now()): View {
  const queue = params.get("queue")?.trim() || null;
  const jobType = params.get("jobType")?.trim() || null;
  const raw = params.get("range") ?? "24h";
  const end = Math.ceil(now / MINUTE) * MINUTE;
  if (raw === "custom") {
    const f = Date.parse(params.get("from") ?? "");
    const t = Date.parse(params.get("to") ?? "");
    let invalid: string | null = null;
    if (Number.isNaN(f) || Number.isNaN(t)) invalid = "Enter both the start and the end of the custom range.";
    else if (f >= t) invalid = "The start of the range must be before its end.";
    else if (t - f > MAX_MS) invalid = "A range covers at most 400 days.";
    const from = Number.isNaN(f) ? end - PRESETS[0].ms : f;
    const to = Number.isNaN(t) ? end : t;
    return { range: "custom", from: new Date(from).toISOString(), to: new Date(to).toISOString(), queue, jobType, invalid };
  }
  const preset = PRESETS.find((p) => p.value === raw) ?? PRESETS[0];
  return { range: preset.value, from: new Date(end - preset.ms).toISOString(), to: new Date(end).toISOString(), queue, jobType, invalid: null };
}

/** The bucket width for time series over the view: about 24-720 points per chart. */
export function intervalOf(v: Pick<View, "from" | "to">): "minute" | "hour" | "day" {
  const span = Date.parse(v.to) - Date.parse(v.from);
  if (span <= 6 * 3_600_000) return "minute";
  if (span <= 8 * 86_400_000) return "hour";
  return "day";
}

/** The GraphQL variables every analytics query takes. */
export function variablesOf(v: View): { from: string; to: string; queue: string | null; jobType: string | null } {
  return { from: v.from, to: v.to, queue: v.queue, jobType: v.jobType };
}

/** How the previous period reads in prose: "the previous 24 hours". */
export function previousName(v: View): string {
  const p = PRESETS.find((x) => x.value === v.range);
  return p ? `the previous ${p.name}` : "the previous period";
}

/** Query-string edits that keep every other parameter (page-specific ones included). */
export function withParams(params: URLSearchParams, changes: Record<string, string | null>): URLSearchParams {
  const next = new URLSearchParams(params);
  for (const [k, val] of Object.entries(changes)) {
    if (val === null || val === "") next.delete(k);
    else next.set(k, val);
  }
  return next;
}

/** The shared part of the query string (range and filters), for links between analytics pages. */
export function sharedSearch(params: URLSearchParams): string {
  const keep = new URLSearchParams();
  for (const k of ["range", "from", "to", "queue", "jobType"]) {
    const val = params.get(k);
    if (val) keep.set(k, val);
  }
  const s = keep.toString();
  return s ? `?${s}` : "";
}

/** `datetime-local` input value (local time, minutes) <-> ISO. */
export function toLocalInput(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(value: string): string | null {
  const t = Date.parse(value); // "YYYY-MM-DDTHH:mm" parses as local time
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}
