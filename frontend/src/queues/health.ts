/** The rule behind each health verdict (jobline/shared/observe/monitoring.py: queue_metrics). */
export const HEALTH_RULES: Record<string, { color: string; rule: string }> = {
  healthy: { color: "green", rule: "Healthy: not paused, failure rate ≤ 50% over the last 15 min, oldest ready job waited ≤ 5 min." },
  lagging: { color: "yellow", rule: "Lagging: the oldest ready job has waited more than 5 minutes." },
  paused: { color: "yellow", rule: "Paused: workers take nothing from this queue until it is resumed." },
  failing: { color: "red", rule: "Failing: more than 50% of at least 10 attempts failed in the last 15 minutes." },
  unknown: { color: "red", rule: "Unknown: Redis (dispatch) is unreachable, live depth cannot be read." },
};

export function healthOf(h: string) {
  return HEALTH_RULES[h] ?? { color: "gray", rule: h };
}

/** Local midnight, for the "today" figures. */
export function startOfToday(now = new Date()): string {
  const d = new Date(now);
  d.setHours(0, 0, 0, 0);
  return d.toISOString();
}
