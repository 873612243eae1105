// Order statistics over a run's samples. The median of an even count is the mean of the two
// middle samples, so 2 runs under --quick don't silently report the slower one.

export function median(xs) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function summary(xs) {
  if (!xs || !xs.length) return { median: null, min: null, max: null };
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

export const maxOrNull = (xs) => (xs && xs.length ? Math.max(...xs) : null);
