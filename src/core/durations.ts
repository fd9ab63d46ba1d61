/**
 * The two duration dialects Courier reads:
 * - Upstash's, in `Upstash-Delay` / `Upstash-Timeout`: bare seconds or
 *   `d`/`h`/`m`/`s` parts in descending order (`"30"`, `"1.5s"`, `"1d10h30m"`).
 * - Go's `time.ParseDuration`, which destinations send in `Retry-After`-style
 *   headers (`"6m5s"`, `"300ms"`), because QStash itself is written in Go.
 * Both return milliseconds, or undefined for anything they do not accept.
 */

const NUMBER = String.raw`\d+(?:\.\d+)?`;
const BARE_SECONDS = new RegExp(`^${NUMBER}$`);
// Each unit at most once, largest first, at least one present (checked below).
const COMPOUND = new RegExp(`^(?:(${NUMBER})d)?(?:(${NUMBER})h)?(?:(${NUMBER})m)?(?:(${NUMBER})s)?$`);

const MS_PER_UNIT = [86_400_000, 3_600_000, 60_000, 1_000] as const;

export function parseUpstashDuration(value: string): number | undefined {
  const text = value.trim();
  if (text === '') return undefined;
  let ms: number;
  if (BARE_SECONDS.test(text)) {
    ms = Number(text) * 1000;
  } else {
    const match = COMPOUND.exec(text);
    if (match === null) return undefined;
    ms = 0;
    for (let i = 0; i < MS_PER_UNIT.length; i++) {
      const part = match[i + 1];
      if (part !== undefined) ms += Number(part) * MS_PER_UNIT[i]!;
    }
  }
  // A digit string long enough to overflow a double is junk, not a long delay.
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const NS_PER_UNIT: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // MICRO SIGN, what Go's docs print
  ['\u03bcs', 1_000n], // GREEK SMALL LETTER MU, which Go accepts too
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
]);

// Go rejects durations that overflow an int64 of nanoseconds (~292 years).
const MAX_GO_DURATION_NS = 2n ** 63n - 1n;
const GO_PART = /(\d*)(?:\.(\d*))?([^\d.]*)/y;

/**
 * Follows Go's algorithm: any order, repeated units allowed, `"0"` needs no
 * unit. The sum is kept in integer nanoseconds (BigInt) so `"1.1s"` is exactly
 * 1100 ms and not 1100.0000000000002 rounded up to 1101. A sign is rejected:
 * a negative wait means nothing to us.
 */
export function parseGoDuration(value: string): number | undefined {
  if (value === '0') return 0;
  if (value === '') return undefined;
  let ns = 0n;
  let at = 0;
  while (at < value.length) {
    GO_PART.lastIndex = at;
    const match = GO_PART.exec(value);
    if (match === null) return undefined;
    const [whole, intDigits = '', fracDigits, unit = ''] = match;
    if (intDigits === '' && (fracDigits === undefined || fracDigits === '')) return undefined;
    const unitNs = NS_PER_UNIT.get(unit);
    if (unitNs === undefined) return undefined;
    ns += BigInt(intDigits || '0') * unitNs;
    if (fracDigits) {
      // Sub-nanosecond remainders are truncated, as Go does.
      ns += (BigInt(fracDigits) * unitNs) / 10n ** BigInt(fracDigits.length);
    }
    if (ns > MAX_GO_DURATION_NS) return undefined;
    at += whole.length;
  }
  return Number((ns + 999_999n) / 1_000_000n);
}
