import { timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { listenHttp } from '../http-listen.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { InvalidArgumentError } from '../../common/errors.js';
import { isLoopbackHost } from '../../common/host-address.js';
import type { ListenAddress } from '../metrics-server.js';
import type { DashboardFeed, DashboardSnapshot } from './dashboard-feed.js';

/** The port `--dashboard` suggests in its help (Ray's dashboard uses 8265). */
export const DEFAULT_DASHBOARD_PORT = 9466;

/** The cookie a page opened with `?token=` keeps it in, so its stream and scripts need no token in their URLs. */
const TOKEN_COOKIE = 'zerocos_dashboard';

export interface DashboardServerOptions {
  feed: DashboardFeed;
  /** The metrics page (a MetricsServer's render), served at `/metrics`. @default none (404) */
  metrics?: () => Promise<{ contentType: string; text: string }>;
  /**
   * What a viewer must present (`?token=` once, then a cookie; or `Authorization: Bearer`).
   * Required to listen on a non-loopback host. @default none: loopback only, and only for
   * requests whose Host header names loopback (a DNS-rebinding page cannot read it)
   */
  token?: string;
  /** Shown in the page title. @default 'zerocos' */
  clusterName?: string;
}

interface Asset {
  type: string;
  body: Buffer;
}

/**
 * Serves the dashboard of one daemon (`node-daemon --dashboard`): a plain HTML/JS page (no build
 * step; uPlot from node_modules draws the charts), its live feed as Server-Sent Events
 * (`/events`: `history` once, then one `snapshot` per interval), `/api/snapshot` (JSON, gathered
 * now) and `/metrics` (Prometheus text). A client too slow to take a snapshot skips the next
 * ones rather than being buffered for. Costs nothing until started; see {@link DashboardFeed}
 * for what an open page costs.
 */
export class DashboardServer {
  private server: Server | undefined;
  private readonly assets: Map<string, Asset>;
  private readonly streams = new Set<ServerResponse>();
  private readonly tokenDigest: Buffer | undefined;

  constructor(private readonly options: DashboardServerOptions) {
    this.assets = loadAssets(options.clusterName ?? 'zerocos');
    this.tokenDigest = options.token === undefined ? undefined : digest(options.token);
  }

  /**
   * Listens at `address` and resolves with the page's URL.
   * @throws InvalidArgumentError for a non-loopback host without a token; else the listen error (`EADDRINUSE`, ...)
   */
  async start(address: ListenAddress): Promise<string> {
    if (!isLoopbackHost(address.host) && this.tokenDigest === undefined) {
      throw new InvalidArgumentError(`a dashboard on ${address.host} (not loopback) needs a token: give --dashboard-token-file`);
    }
    const server = createServer((request, response) => this.serve(request, response));
    const base = await listenHttp(server, address.host, address.port);
    this.server = server;
    this.options.feed.start();
    return `${base}/`;
  }

  /** Ends every open stream, stops listening and stops the feed. Idempotent. */
  async stop(): Promise<void> {
    this.options.feed.stop();
    for (const stream of this.streams) stream.end();
    this.streams.clear();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  private serve(request: IncomingMessage, response: ServerResponse): void {
    const url = new URL(request.url ?? '/', 'http://dashboard.invalid');
    if (request.method !== 'GET') return void response.writeHead(405, { allow: 'GET' }).end();
    if (!this.allowed(request, url)) return void response.writeHead(403, { 'content-type': 'text/plain' }).end('this dashboard needs its token (?token=...)\n');
    // A correct ?token= is kept in a cookie: the page's own requests then carry it.
    const cookie = url.searchParams.has('token') ? { 'set-cookie': `${TOKEN_COOKIE}=${encodeURIComponent(url.searchParams.get('token')!)}; HttpOnly; SameSite=Strict; Path=/` } : {};
    const asset = this.assets.get(url.pathname);
    if (asset) return void response.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', ...cookie }).end(asset.body);
    if (url.pathname === '/events') return this.stream(response);
    if (url.pathname === '/api/snapshot') {
      return void this.options.feed.collect().then(
        (snapshot) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(snapshot)),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    }
    if (url.pathname === '/metrics' && this.options.metrics) {
      return void this.options.metrics().then(
        ({ contentType, text }) => response.writeHead(200, { 'content-type': contentType }).end(text),
        (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`),
      );
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not here: / (the page), /events, /api/snapshot, /metrics\n');
  }

  /** Server-Sent Events: the chart history, then every snapshot until the page goes. */
  private stream(response: ServerResponse): void {
    response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    response.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify(this.options.feed.points())}\n\n`);
    this.streams.add(response);
    let congested = false;
    response.on('drain', () => (congested = false));
    const unsubscribe = this.options.feed.subscribe((snapshot: DashboardSnapshot) => {
      if (congested) return; // the page has not taken the last one yet: it gets the next fresh one instead
      congested = !response.write(`event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`);
    });
    response.on('close', () => {
      unsubscribe();
      this.streams.delete(response);
    });
  }

  private allowed(request: IncomingMessage, url: URL): boolean {
    if (this.tokenDigest === undefined) return isLoopbackHost(hostOf(request.headers.host));
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const cookie = /(?:^|;\s*)zerocos_dashboard=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
    const given = url.searchParams.get('token') ?? bearer ?? (cookie !== undefined ? decodeURIComponent(cookie) : undefined);
    return given !== undefined && timingSafeEqual(digest(given), this.tokenDigest);
  }
}

/** Compared as digests: equal lengths, so the comparison takes the same time whatever was sent. */
function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** The host name of a Host header (`127.0.0.1:9466`, `[::1]:9466`, `localhost`). */
function hostOf(header: string | undefined): string {
  if (!header) return '';
  const bracketed = /^\[([^\]]+)\]/.exec(header);
  return bracketed ? bracketed[1]! : header.replace(/:\d+$/, '');
}

/** The page, read once: its files beside this module's source (lib/ ships in the package), uPlot from node_modules. */
function loadAssets(clusterName: string): Map<string, Asset> {
  const page = pageDirectory();
  const require = createRequire(import.meta.url);
  const read = (path: string | URL) => readFileSync(path);
  const html = read(new URL('index.html', page)).toString('utf8').replaceAll('{{cluster}}', escapeHtml(clusterName));
  return new Map<string, Asset>([
    ['/', { type: 'text/html; charset=utf-8', body: Buffer.from(html) }],
    ['/app.js', { type: 'text/javascript; charset=utf-8', body: read(new URL('app.js', page)) }],
    ['/style.css', { type: 'text/css; charset=utf-8', body: read(new URL('style.css', page)) }],
    ['/uplot.js', { type: 'text/javascript; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.iife.min.js')) }],
    ['/uplot.css', { type: 'text/css; charset=utf-8', body: read(require.resolve('uplot/dist/uPlot.min.css')) }],
  ]);
}

/** lib/cluster/dashboard/page/ of the package, from the source tree or from dist/ (tsc does not copy it). */
function pageDirectory(): URL {
  for (let up = 3; up <= 5; up++) {
    const root = new URL('../'.repeat(up), import.meta.url);
    try {
      const manifest = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { name?: string };
      if (manifest.name === 'zerocos') return new URL('lib/cluster/dashboard/page/', root);
    } catch {
      // Not the package root: look one higher.
    }
  }
  throw new InvalidArgumentError('cannot find the dashboard page (lib/cluster/dashboard/page) of the zerocos package');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
