/**
 * The report's chart, written by hand (no charting package): one horizontal bar per row that
 * has a goal, its length how far the goal is met (1 = exactly at the goal, log scale from
 * 0.01 to 100), green when the row passes, red when it fails.
 */

export interface ReportRow {
  capability: string;
  bench: string;
  figure: string;
  value: number | undefined;
  unit: string;
  baseline?: string | undefined;
  baselineValue?: number | undefined;
  ratio?: number | undefined;
  goal?: string | undefined;
  pass?: boolean | undefined;
  /** Why a bench produced no figure (failed run). */
  note?: string;
}

/**
 * How far a row meets its goal: measured ÷ goal for "≥" goals, goal ÷ measured for "≤"
 * goals, so > 1 is better. A goal written as "≥ 1.5x" is on the row's ratio to its
 * baseline; any other number is on the value. Undefined when the goal is not numeric.
 */
export function goalScore(row: ReportRow): number | undefined {
  const m = /^\s*(>=|<=|≥|≤|>|<|=)?\s*(-?[0-9][0-9_,.]*)\s*([a-zA-Z%µ/]*)/.exec(row.goal ?? '');
  if (!m) return undefined;
  const goal = Number(m[2]!.replace(/[_,]/g, ''));
  const onRatio = m[3] === 'x' && row.ratio !== undefined && row.unit !== 'x' && !row.unit.startsWith('x ');
  const measured = onRatio ? row.ratio : row.value;
  if (measured === undefined || !Number.isFinite(goal) || goal === 0) return undefined;
  const lower = m[1] === '<=' || m[1] === '≤' || m[1] === '<';
  if (lower) return measured <= 0 ? 10 : goal / measured;
  return measured / goal;
}

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderSvg(rows: readonly ReportRow[], title: string): string {
  const charted = rows.filter((r) => r.goal !== undefined && r.pass !== undefined);
  const labelW = 480;
  const barW = 300;
  const rowH = 18;
  const top = 46;
  const width = labelW + barW + 230;
  const height = top + charted.length * rowH + 30;
  // log10 scale: 0.01 → 0, 1 → middle, 100 → full.
  const x = (score: number): number => labelW + Math.min(1, Math.max(0.005, (Math.log10(score) + 2) / 4)) * barW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="8" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`,
    `<text x="8" y="32" fill="#555">bar: how far each goal is met (measured ÷ goal, or goal ÷ measured for ≤ goals); log scale, the line is the goal</text>`,
  ];
  for (const t of [0.01, 0.1, 1, 10, 100])
    out.push(`<text x="${x(t)}" y="${top - 4}" text-anchor="middle" fill="#555">${t}×</text>`);
  charted.forEach((r, i) => {
    const y = top + i * rowH;
    const score = goalScore(r);
    const label = `${r.capability}: ${r.figure}`;
    out.push(
      `<text x="${labelW - 6}" y="${y + 12}" text-anchor="end">${esc(label.length > 78 ? label.slice(0, 77) + '…' : label)}</text>`,
    );
    const colour = r.pass ? '#2e7d32' : '#c62828';
    if (score !== undefined) {
      out.push(
        `<rect x="${labelW}" y="${y + 3}" width="${(x(score) - labelW).toFixed(1)}" height="${rowH - 6}" fill="${colour}"/>`,
      );
    } else {
      out.push(`<rect x="${labelW}" y="${y + 3}" width="4" height="${rowH - 6}" fill="${colour}"/>`);
    }
    const text = `${r.pass ? 'pass' : 'FAIL'} ${score !== undefined ? score.toPrecision(3) + '×' : ''} (${r.goal})`;
    out.push(`<text x="${labelW + barW + 6}" y="${y + 12}" fill="${colour}">${esc(text)}</text>`);
  });
  out.push(
    `<line x1="${x(1)}" y1="${top}" x2="${x(1)}" y2="${top + charted.length * rowH}" stroke="#000" stroke-dasharray="3,2"/>`,
  );
  out.push('</svg>');
  return out.join('\n') + '\n';
}
