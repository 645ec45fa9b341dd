/** The `gateway` command: dispatches to one module per subcommand. */
// First: before any module loads aedes or mqtt (quiet-debug.ts; compiled, bin/gateway.js runs it before the bundle).
import './transports/quiet-debug.js';
import { CliError, UsageError } from './cli/args.js';
import { RestoreError } from './sync/siblings.js';
import { demo, demoHelp } from './cli/demo.js';
import { status, statusHelp } from './cli/status.js';
import { DataDirError } from './log/upgrade.js';
import { devices, devicesHelp } from './cli/devices.js';
import { frameDecode, frameDecodeHelp } from './cli/frame-decode.js';
import { identity, identityHelp, version } from './cli/identity.js';
import { audit, auditHelp, logHeads, logHeadsHelp } from './cli/log-audit.js';
import { logPrune, logPruneHelp } from './cli/log-prune.js';
import { logQuery, logQueryHelp } from './cli/log-query.js';
import { serial, serialHelp } from './cli/serial.js';
import { policy, policyHelp } from './cli/policy.js';
import { firmware, firmwareHelp } from './cli/firmware.js';
import { rulesLog, rulesLogHelp } from './cli/rules-log.js';
import { rulesCheck, rulesCheckHelp, rulesTest, rulesTestHelp } from './cli/rules-test.js';
import { PolicyLoadError } from './policy/load.js';
import { start, startHelp } from './cli/start.js';
import { config, configHelp } from './cli/config.js';
import { ConfigError } from './config.js';
import { RuleError } from '../rules/start.js';
import { RegistryError } from './registry.js';
import { DataDirLockError } from './store/data-dir-lock.js';
import { DiskLowError } from './store/free-space.js';

const help = `Outpost gateway

${startHelp}

${demoHelp}

${identityHelp}

${devicesHelp}

${frameDecodeHelp}

${logQueryHelp}
${statusHelp}

${logHeadsHelp}

${logPruneHelp}

${auditHelp}

${serialHelp}

${policyHelp}

${firmwareHelp}

${rulesTestHelp}

${rulesCheckHelp}

${rulesLogHelp}

${configHelp}

gateway --version              print the version`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'start':
      return start(rest);
    case 'demo':
      return demo(rest);
    case 'identity':
      return identity(rest);
    case '--version':
    case '-v':
      console.log(version());
      return 0;
    case 'devices':
      return devices(rest);
    case 'frame':
      if (rest[0] !== 'decode') throw new UsageError(`usage: ${frameDecodeHelp}`);
      return frameDecode(rest.slice(1));
    case 'log':
      if (rest[0] === 'heads') return logHeads(rest.slice(1));
      if (rest[0] === 'prune') return logPrune(rest.slice(1));
      if (rest[0] !== 'query') throw new UsageError(`usage: ${logQueryHelp}\n${logHeadsHelp}`);
      return logQuery(rest.slice(1));
    case 'audit':
      return audit(rest);
    case 'serial':
      return serial(rest);
    case 'config':
      return config(rest);
    case 'rules':
      if (rest[0] === 'check') return rulesCheck(rest.slice(1));
      if (rest[0] === 'log') return rulesLog(rest.slice(1));
      if (rest[0] !== 'test') throw new UsageError(`usage: ${rulesTestHelp}\n${rulesCheckHelp}\n${rulesLogHelp}`);
      return rulesTest(rest.slice(1));
    case 'policy':
      return policy(rest);
    case 'firmware':
      return firmware(rest);
    case 'status':
      return status(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(help);
      return cmd === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${cmd}"\n\n${help}`);
  }
}

// `gateway log query | head` closes the pipe early: that is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || err instanceof CliError) {
      console.error(`gateway: ${err.message}`);
      process.exitCode = err.exitCode;
    } else if (
      err instanceof ConfigError ||
      err instanceof RegistryError ||
      err instanceof PolicyLoadError ||
      err instanceof RuleError ||
      err instanceof DataDirLockError ||
      err instanceof RestoreError ||
      err instanceof DataDirError ||
      err instanceof DiskLowError
    ) {
      console.error(`gateway: ${err.message}`);
      process.exitCode = 1;
    } else if (
      (err as NodeJS.ErrnoException).code === 'EADDRINUSE' ||
      (err as NodeJS.ErrnoException).code === 'EACCES'
    ) {
      const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
      console.error(`gateway: cannot listen on ${e.address}:${e.port} (${e.code}); choose another mqtt.port or --port`);
      process.exitCode = 1;
    } else if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      // The free-space guard is off (ingest.minFreeBytes: 0) or the disk filled past it meanwhile.
      console.error(`gateway: no space left on the device (ENOSPC): ${(err as Error).message}`);
      process.exitCode = 1;
    } else if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`gateway: ${err.message}`);
      process.exitCode = 2;
    } else {
      console.error(err);
      process.exitCode = 1;
    }
  },
);
