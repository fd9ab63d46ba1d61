/** Small, dependency-free statistics for the benchmark report. */

/**
 * The p-th percentile (0–100) by linear interpolation between closest ranks
 * (the "R-7" definition spreadsheets and NumPy use by default). Undefined for
 * an empty sample rather than NaN, so a missing figure is visible in the types.
 */
export function percentile(values: ArrayLike<number>, p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = Float64Array.from(values).sort();
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low]!;
  return lowValue + (sorted[high]! - lowValue) * (rank - low);
}

export function median(values: ArrayLike<number>): number | undefined {
  return percentile(values, 50);
}

/** Median of the defined entries; undefined when there are none. */
export function medianOf(values: ReadonlyArray<number | undefined>): number | undefined {
  return median(values.filter((v): v is number => v !== undefined));
}

export function formatInteger(value: number | undefined): string {
  return value === undefined ? '—' : Math.round(value).toLocaleString('en-US');
}

export function formatFixed(value: number | undefined, digits: number): string {
  return value === undefined ? '—' : value.toFixed(digits);
}
