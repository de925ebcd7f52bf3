import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type Koa from 'koa';

const TYPES: Record<string, string> = {
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.js': 'text/javascript; charset=utf-8',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** A year: the longest lifetime browsers honour; the URL changes with the content. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** For an address without the current content hash: always asked again. */
const REVALIDATE = 'no-cache';

/** `portal.css`, or `portal.3f9a0c1d2e.css` (name, content hash, extension). */
const ASSET_PATH = /^\/static\/([a-z0-9-]+)(?:\.([0-9a-f]{10}))?(\.(?:css|svg|js|png|ico))$/;

function hashOf(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex').slice(0, 10);
}

/**
 * The files of web/, served as they are. Pages link them by an address that carries a hash of
 * their content (`asset('portal.css')` → `/static/portal.<hash>.css`), so browsers may keep
 * them a year and still get a changed stylesheet at once: the changed file has a new address.
 * A file's hash is taken once, when a page first links it, like the templates are read once.
 */
export class StaticAssets {
  private readonly hashes = new Map<string, string>();

  constructor(private readonly webDir: string) {}

  /** The address of a file in web/ for a page to link; a missing file is a programming error. */
  url(name: string): string {
    let hash = this.hashes.get(name);
    if (!hash) {
      hash = hashOf(readFileSync(path.join(this.webDir, name)));
      this.hashes.set(name, hash);
    }
    const ext = path.extname(name);
    return `/static/${name.slice(0, -ext.length)}.${hash}${ext}`;
  }

  /**
   * Answers /static/… and /favicon.ico before sessions are looked at: an asset needs no person.
   * An address whose hash is not the file's current one (a page from before a deploy) still
   * gets the file, but only for this once.
   */
  middleware(): Koa.Middleware {
    return async (ctx, next) => {
      if (ctx.path === '/favicon.ico') return this.send(ctx, 'favicon.ico', null);
      const m = ASSET_PATH.exec(ctx.path);
      if (!m) return next();
      return this.send(ctx, m[1]! + m[3]!, m[2] ?? null);
    };
  }

  private async send(ctx: Koa.Context, name: string, hash: string | null): Promise<void> {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      ctx.status = 405;
      ctx.set('Allow', 'GET, HEAD');
      ctx.body = 'Method not allowed';
      return;
    }
    let content: Buffer;
    try {
      content = await readFile(path.join(this.webDir, name));
    } catch {
      // Plain text: the portal's error page would itself need a session and this stylesheet.
      ctx.status = 404;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'Not found';
      return;
    }
    ctx.type = TYPES[path.extname(name)]!;
    ctx.set('Cache-Control', hash !== null && hash === hashOf(content) ? IMMUTABLE : name === 'favicon.ico' ? 'public, max-age=86400' : REVALIDATE);
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.body = content;
  }
}
