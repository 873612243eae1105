// Turns the measures' raw samples into the JSON rows, the table and RESULTS.md.
import { summary, maxOrNull } from './stats.mjs';
import { machineMarkdown } from './machine.mjs';

const round = (x, d = 6) => (x === null || x === undefined ? null : Number(x.toFixed(d)));

/** One measure's samples → the JSON object `--json` prints (required keys first). */
export function finalize(row, runs) {
  const size = row.unit === 'MB';
  const o = summary(row.ours);
  const g = summary(row.gdb ?? []);
  // A row may bring its own ratio (the soak's last/first steps); else it is of the medians.
  const ratio = row.ratio !== undefined ? row.ratio : o.median === null || g.median === null ? null : row.ratioKind === 'ours/gdb' ? o.median / g.median : row.ratioKind === 'gdb/ours' ? g.median / o.median : null;
  const j = {
    id: row.id,
    what: row.what,
    ours_s: size ? null : round(o.median),
    gdb_s: round(g.median),
    ratio: round(ratio, 3),
    runs,
    ours_min_s: size ? null : round(o.min),
    ours_max_s: size ? null : round(o.max),
    gdb_min_s: round(g.min),
    gdb_max_s: round(g.max),
    ours_rss_mb: round(maxOrNull(row.oursRss), 1),
    gdb_rss_mb: round(maxOrNull(row.gdbRss), 1),
    ratio_kind: ratio === null ? null : row.ratioKind,
    target: row.target?.text ?? null,
    met: null,
    samples: { ours: row.ours.map((x) => round(x)), gdb: row.gdb ? row.gdb.map((x) => round(x)) : null },
  };
  if (size) j.ours_mb = round(o.median, 3);
  if (row.limit) {
    // P3's floor: QEMU alone to the same stop (bench/lib/qemulimit.mjs).
    const l = summary(row.limit);
    j.limit_s = round(l.median);
    j.limit_min_s = round(l.min);
    j.limit_max_s = round(l.max);
    j.ours_limit_ratio = o.median === null || l.median === null ? null : round(o.median / l.median, 3);
    j.gdb_limit_ratio = g.median === null || l.median === null ? null : round(g.median / l.median, 3);
    j.samples.limit = row.limit.map((x) => round(x));
  }
  if (row.whole) {
    j.ours_whole_s = round(summary(row.whole.ours).median);
    j.gdb_whole_s = round(summary(row.whole.gdb).median);
    j.whole_ratio = round(j.gdb_whole_s / j.ours_whole_s, 3);
  }
  Object.assign(j, row.extra ?? {});
  if (row.target) j.met = Boolean(row.target.test(j));
  return j;
}

export function fmtTime(s) {
  if (s === null || s === undefined) return 'n/a';
  if (s >= 1) return `${s.toFixed(2)} s`;
  const ms = s * 1000;
  return `${ms < 10 ? ms.toFixed(1) : ms.toFixed(0)} ms`;
}

function cell(j, side) {
  if (side === 'ours' && j.ours_mb !== undefined) return `${j.ours_mb.toFixed(2)} MB`;
  const m = j[`${side}_s`];
  if (m === null || m === undefined) return side === 'limit' ? '—' : 'n/a';
  const lo = j[`${side}_min_s`];
  const hi = j[`${side}_max_s`];
  const [a, b] = [fmtTime(lo), fmtTime(hi)];
  const unit = (x) => x.split(' ')[1];
  const range = ` (${unit(a) === unit(b) ? a.split(' ')[0] : a}–${b})`;
  const whole = j[`${side}_whole_s`];
  return whole !== undefined ? `${fmtTime(m)}${range} net; ${fmtTime(whole)} whole` : `${fmtTime(m)}${range}`;
}

function ratioCell(j) {
  if (j.ratio === null) return 'n/a';
  const r = `${j.ratio.toFixed(j.ratio < 10 ? 2 : 1)} ${j.ratio_kind}`;
  if (j.ours_limit_ratio !== undefined && j.ours_limit_ratio !== null) return `${r}; ${j.ours_limit_ratio.toFixed(2)} ours/limit`;
  return j.whole_ratio !== undefined ? `${r} net; ${j.whole_ratio.toFixed(1)} whole` : r;
}

const rss = (mb) => (mb === null ? 'n/a' : `${mb.toFixed(0)} MB`);

export function table(rows) {
  // The QEMU-alone column only when a row has it (P3).
  const limit = rows.some((j) => j.limit_s !== undefined);
  const head = ['id', 'what', 'ours median (min–max)', 'ours peak RSS', 'gdb median (min–max)', 'gdb peak RSS', ...(limit ? ['QEMU alone (limit)'] : []), 'ratio', 'target', 'met'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const j of rows) {
    const met = j.met === null ? '—' : j.met ? 'yes' : 'NO';
    lines.push(`| ${[j.id, j.what, cell(j, 'ours'), rss(j.ours_rss_mb), cell(j, 'gdb'), rss(j.gdb_rss_mb), ...(limit ? [cell(j, 'limit')] : []), ratioCell(j), j.target ?? '—', met].join(' | ')} |`);
  }
  return lines.join('\n');
}

export function markdown({ rows, machine, runs, command, notes, generalNotes, errors }) {
  const out = [
    '# Benchmark results',
    '',
    `Produced by \`${command}\` (${runs} alternating runs per side; see [README.md](README.md) for how each figure is measured and reproduced).`,
    '',
    '## Machine',
    '',
    machineMarkdown(machine),
    '',
    '## Results',
    '',
    table(rows),
    '',
  ];
  if (errors.length) out.push('## Errors', '', ...errors.map((e) => `- ${e.split('\n')[0]}`), '');
  out.push('## What each figure is', '');
  for (const j of rows) if (notes[j.id]) out.push(`- **${j.id}** — ${notes[j.id]}`);
  out.push('', '## General', '', ...generalNotes.map((n) => `- ${n}`), '');
  return out.join('\n');
}
