/**
 * A vitest reporter that ends the run with one line per missing system tool:
 * `mosquitto: not installed (sudo apt-get install mosquitto) — 3 tests skipped`. It counts
 * the skipped tests whose task meta (or a parent suite's) names the tool (set by `needs`
 * in system-tools.ts), then says how to install them all.
 */
import type { Reporter, TestCase, TestModule } from 'vitest/node';
import { installHint, SYSTEM_TOOLS, type ToolName } from './system-tools.js';

/** The tools a test lacked, from its own meta or its nearest suite's. */
function missingTools(test: TestCase): readonly string[] {
  for (let t: TestCase | TestCase['parent'] = test; t.type !== 'module'; t = t.parent) {
    const tools = t.meta().missingTools;
    if (tools !== undefined && tools.length > 0) return tools;
  }
  return [];
}

/** Skipped tests per missing tool, in the order of the tools table. */
export function countSkips(modules: readonly TestModule[]): Map<ToolName, number> {
  const counts = new Map<ToolName, number>();
  for (const m of modules)
    for (const t of m.children.allTests())
      if (t.result().state === 'skipped')
        for (const tool of missingTools(t)) counts.set(tool as ToolName, (counts.get(tool as ToolName) ?? 0) + 1);
  const order = Object.keys(SYSTEM_TOOLS) as ToolName[];
  return new Map([...counts].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b)));
}

export function skipReportLines(counts: ReadonlyMap<ToolName, number>): string[] {
  const lines = [...counts].map(
    ([tool, n]) => `${tool}: not installed (${installHint(tool)}) — ${n} test${n === 1 ? '' : 's'} skipped`,
  );
  if (lines.length > 0) lines.push('all of them: npm run setup:system (Debian, Raspberry Pi OS)');
  return lines;
}

export default class SkipReport implements Reporter {
  onTestRunEnd(modules: readonly TestModule[]): void {
    const lines = skipReportLines(countSkips(modules));
    if (lines.length > 0) process.stdout.write(`\n${lines.join('\n')}\n`);
  }
}
