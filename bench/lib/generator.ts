import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

/** A load-generator process (bench/load-generator.ts) and its command channel. */
export function generator(args: string[]) {
  const gen = spawn(
    process.execPath,
    ['--import', 'tsx', new URL('../load-generator.ts', import.meta.url).pathname, ...args],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: gen.stdout! })[Symbol.asyncIterator]();
  return {
    async ask<T>(cmd?: string): Promise<T> {
      if (cmd) gen.stdin!.write(`${cmd}\n`);
      return JSON.parse((await lines.next()).value as string) as T;
    },
    exit: () => gen.stdin!.write('exit\n'),
  };
}
