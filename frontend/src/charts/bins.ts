// The rollups' histogram buckets are fine (each spans at most 4%, for exact percentiles); a bar
// chart of hundreds of them is unreadable, so charts merge them into power-of-two bins. A bucket
// goes to the bin of its lower bound: bins then hold counts, never split a bucket.
export interface Bucket {
  lowerMs: number;
  upperMs: number;
  count: number;
}

export function powerOfTwoBins(buckets: readonly Bucket[]): Bucket[] {
  const bins = new Map<number, number>();
  for (const b of buckets) {
    const k = b.lowerMs < 1 ? -1 : Math.floor(Math.log2(b.lowerMs));
    bins.set(k, (bins.get(k) ?? 0) + b.count);
  }
  return [...bins.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([k, count]) => (k < 0 ? { lowerMs: 0, upperMs: 1, count } : { lowerMs: 2 ** k, upperMs: 2 ** (k + 1), count }));
}
