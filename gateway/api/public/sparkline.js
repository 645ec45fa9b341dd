// A small inline-SVG sparkline of a numeric history.
const NS = 'http://www.w3.org/2000/svg';

/** @param {number[]} values */
export function sparkline(values) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 100 24');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('aria-hidden', 'true');
  if (values.length < 2) return svg;
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi === lo) {
    hi += 1;
    lo -= 1;
  }
  const pts = values.map(
    (v, i) => `${((i / (values.length - 1)) * 100).toFixed(1)},${(22 - ((v - lo) / (hi - lo)) * 20).toFixed(1)}`,
  );
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', pts.join(' '));
  svg.append(line);
  return svg;
}
