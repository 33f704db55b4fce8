/** Durations in the configuration are strings: "500ms", "3s", "5m", "1h". */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export const DURATION_PATTERN = '^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

/** Milliseconds of a duration string; throws on a malformed one (the schema rejects those first). */
export function parseDuration(text: string): number {
  const m = DURATION_RE.exec(text);
  if (!m) throw new Error(`not a duration: ${JSON.stringify(text)} (expected a number and ms, s, m or h)`);
  const unit = m[2] as string;
  return Math.round(parseFloat(text) * (UNIT_MS[unit] as number));
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
