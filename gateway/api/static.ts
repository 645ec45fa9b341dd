/** The dashboard's files (gateway/api/public/), read once at start; no data in them, so no token needed. */
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

export interface StaticFile {
  readonly type: string;
  readonly body: Buffer;
}

/** URL path → file, for the flat public/ directory ("/" is index.html). */
export function loadPublic(dir = new URL('./public/', import.meta.url).pathname): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[extname(name)];
    if (type) files.set(`/${name}`, { type, body: readFileSync(join(dir, name)) });
  }
  const index = files.get('/index.html');
  if (index) files.set('/', index);
  return files;
}
