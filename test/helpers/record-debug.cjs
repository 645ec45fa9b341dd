// Preloaded by a test with `node --require …/record-debug.cjs` and OUTPOST_DEBUG_LOG=FILE: for each
// module of mqtt-packet that requires `debug`, writes one line `<module> quiet|real`: whether it
// got gateway/transports/quiet-debug.ts's factory (no-op loggers) or the real `debug` package.
// It only observes: it changes nothing of what loads, or when.
const { appendFileSync } = require('node:fs');
const Module = require('node:module');

const file = process.env.OUTPOST_DEBUG_LOG;
if (file) {
  const load = Module._load;
  Module._load = function (request, parent, ...rest) {
    const got = load.call(this, request, parent, ...rest);
    if (request === 'debug' && parent?.filename?.includes('/mqtt-packet/'))
      appendFileSync(file, `${parent.filename} ${got?.quiet === true ? 'quiet' : 'real'}\n`);
    return got;
  };
}
