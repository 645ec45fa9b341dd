/** Webhook notifier: each alert (firing or resolved) POSTed as JSON; delivered on a 2xx answer. */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { HttpSinkConfig } from '../config.js';
import { readSecret, tlsOptions } from '../../outbound.js';
import type { Alert, Notifier } from './types.js';

export class HttpNotifier implements Notifier {
  readonly name: string;
  private readonly token?: string;

  constructor(private readonly cfg: HttpSinkConfig) {
    this.name = cfg.name;
    this.token = readSecret(cfg.tokenFile);
  }

  notify(alert: Alert): Promise<void> {
    const body = Buffer.from(JSON.stringify(alert));
    const url = new URL(this.cfg.url);
    const tls = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (tls ? httpsRequest : httpRequest)(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'content-length': body.length,
            ...(this.token !== undefined && { authorization: `Bearer ${this.token}` }),
          },
          timeout: this.cfg.timeoutMs,
          ...(tls && tlsOptions(this.cfg.tls)),
        },
        (res) => {
          res.resume();
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) resolve();
          else reject(new Error(`webhook ${this.cfg.name}: HTTP ${code}`));
        },
      );
      req.on('timeout', () => req.destroy(new Error(`webhook ${this.cfg.name}: timed out`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async close(): Promise<void> {}
}
