/**
 * The operator HTTP surface on node:http: the JSON API under /api, the live
 * feed, /metrics, /openapi.json, /healthz and the dashboard's static files.
 * Every route except /healthz and the dashboard files (which hold no data)
 * needs `Authorization: Bearer <admin token>`; /metrics may be made public.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { ApiSource } from './source.js';
import type { Logger } from '../logger.js';
import { isLoopbackHost } from '../transports/mqtt-broker.js';
import { DeviceView } from './device-view.js';
import { LiveFeed } from './feed.js';
import { ApiError, checkRequestShape, queryParams, sendError, sendJson, sendText } from './http.js';
import { ApiAccess, type Caller } from './access.js';
import { listDecisions } from './decisions.js';
import { listFirmware } from './firmware.js';
import { queryLogFrames } from './log-frames.js';
import { GatewayMetrics } from './metrics.js';
import { querySeries } from './series.js';
import { getDevice, listDevices } from './devices.js';
import { queryFrames, type RouteContext, status, whoami } from './routes.js';
import { listSiblings } from './siblings.js';
import { loadPublic, type StaticFile } from './static.js';
import { type AdminToken, loadOrCreateToken } from './token.js';

const OPENAPI_FILE = new URL('./openapi.json', import.meta.url).pathname;

export interface ApiOptions {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly token?: string;
  readonly metrics: { readonly enabled: boolean; readonly public: boolean };
  /** How often the live feed sends a status event. */
  readonly statusIntervalMs?: number;
  /** Certificate and key (PEM): serve HTTPS. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Allow plain HTTP beyond loopback (refused otherwise: the admin token would cross the network in clear). */
  readonly allowPlainBeyondLoopback?: boolean;
}

class ApiConfigError extends Error {
  readonly code = 'api/plain-beyond-loopback';
}

export class ApiServer {
  private constructor(
    private readonly server: Server,
    readonly token: AdminToken,
    readonly view: DeviceView,
    readonly feed: LiveFeed,
    readonly metrics: GatewayMetrics | undefined,
    private readonly access: ApiAccess,
  ) {}

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  static async start(gw: ApiSource, opts: ApiOptions, log: Logger): Promise<ApiServer> {
    const remote = !isLoopbackHost(opts.host);
    if (remote && !opts.tls && !opts.allowPlainBeyondLoopback)
      throw new ApiConfigError(
        `api.host ${opts.host} is beyond loopback without TLS: set api.tls: true (or api.allowPlainBeyondLoopback: true to send the admin token in clear)`,
      );
    const token = loadOrCreateToken(opts.dataDir, opts.token);
    const view = new DeviceView(gw);
    const access = new ApiAccess(gw, token.token);
    access.follow();
    const feed = new LiveFeed(gw, opts.statusIntervalMs ?? 2000);
    const metrics = opts.metrics.enabled ? new GatewayMetrics(gw) : undefined;
    const files = loadPublic();
    const openapi = readFileSync(OPENAPI_FILE);
    const ctx: RouteContext = { gw, view };
    const routes: Record<string, (url: URL, caller: Caller) => unknown> = {
      '/api/devices': (u) => listDevices(ctx, u),
      '/api/frames': (u, caller) => {
        const check = access.checker(caller);
        return queryFrames(ctx, u, { check });
      },
      '/api/status': (u) => status(ctx, u),
      '/api/siblings': (u) => listSiblings(ctx, u),
      '/api/whoami': (u, caller) => whoami(gw, u, caller),
      '/api/log/frames': (u, caller) => queryLogFrames(gw.blockLog, u, access.checker(caller)),
      '/api/decisions': (u) => listDecisions(gw.blockLog, u),
      '/api/firmware': (u) => listFirmware(ctx, u),
      '/api/series': (u) => querySeries(gw.exports?.rollups, u),
    };

    const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
      checkRequestShape(req);
      const url = new URL(req.url ?? '/', 'http://gateway.invalid');
      const path = url.pathname;
      if (req.method !== 'GET' && req.method !== 'HEAD')
        throw new ApiError(405, 'method-not-allowed', `${req.method} is not allowed; this API is read-only (GET)`, {
          allow: 'GET, HEAD',
        });
      if (path === '/healthz') return sendJson(res, 200, { ok: true, gateway: gw.config.gateway.id });
      const file: StaticFile | undefined = files.get(path);
      if (file)
        return sendText(res, 200, file.type, file.body, {
          'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'",
        });
      const publicMetrics = path === '/metrics' && opts.metrics.public;
      // The operator's token, or a request signed by a principal (data routes only, filtered by policy).
      const caller: Caller = publicMetrics ? { kind: 'operator' } : access.authenticate(req);
      access.route(caller, path);
      if (path === '/metrics') {
        if (!metrics) throw new ApiError(404, 'not-found', 'metrics are disabled (metrics.enabled: false)');
        return sendText(res, 200, metrics.contentType, await metrics.text());
      }
      if (path === '/openapi.json') return sendText(res, 200, 'application/json; charset=utf-8', openapi);
      if (path === '/api/feed') {
        if (feed.full)
          throw new ApiError(503, 'too-many-feeds', 'too many live feed clients; try again later', {
            'retry-after': '5',
          });
        queryParams(url, []);
        if (caller.kind === 'operator') return feed.add(res);
        const check = access.checker(caller);
        return feed.add(res, { mayRead: (p) => check(p).allowed });
      }
      const route = routes[path];
      if (route) return sendJson(res, 200, await route(url, caller));
      const m = /^\/api\/devices\/([^/]{1,200})$/.exec(path);
      if (m) return sendJson(res, 200, getDevice(ctx, url, decodeURIComponent(m[1]!)));
      throw new ApiError(404, 'not-found', `no route ${path}`);
    };

    const serverOpts = { maxHeaderSize: 8192, requestTimeout: 30_000, headersTimeout: 10_000 };
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
      handle(req, res).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        if (err instanceof ApiError) return sendError(res, err);
        if (err instanceof URIError)
          return sendError(res, new ApiError(400, 'bad-request', 'malformed percent-encoding in the URL'));
        log.error({ err, url: req.url }, 'API request failed');
        sendError(res, new ApiError(500, 'internal-error', 'internal error (see the gateway log)'));
      });
    };
    const server: Server = opts.tls
      ? createHttpsServer({ ...serverOpts, cert: opts.tls.cert, key: opts.tls.key, minVersion: 'TLSv1.2' }, onRequest)
      : createServer(serverOpts, onRequest);
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const api = new ApiServer(server, token, view, feed, metrics, access);
    if (remote && !opts.tls) {
      log.warn(
        { host: opts.host },
        'the API is reachable from the network over plain HTTP (api.allowPlainBeyondLoopback): the token travels unencrypted',
      );
    }
    log.info(
      {
        host: opts.host,
        port: api.port,
        tokenFile: token.file ?? '(api.token in the config)',
        tokenCreated: token.created,
        metricsPublic: opts.metrics.public,
      },
      `dashboard and API on ${opts.tls ? 'https' : 'http'}://${opts.host}:${api.port}/ (admin token: ${token.file ?? 'api.token in the config'})`,
    );
    return api;
  }

  async close(): Promise<void> {
    this.access.close();
    this.feed.close();
    this.view.close();
    this.metrics?.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
