import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { Upload } from '../../domain/portal/web-tickets.ts';
import type { PortalContext } from '../context.ts';

/** A random id put in a form when it is shown: submitting it twice does the thing once. */
export const newSubmission = () => randomBytes(18).toString('base64url');

/** Uploaded files of a multipart form (koa-body / formidable), read and removed from disk. */
export async function uploads(ctx: PortalContext, name: string): Promise<Upload[]> {
  const files = (ctx.request as { files?: Record<string, unknown> }).files?.[name];
  const list = (Array.isArray(files) ? files : files ? [files] : []) as { filepath: string; originalFilename?: string | null; mimetype?: string | null; size: number }[];
  const out: Upload[] = [];
  for (const f of list) {
    if (f.size > 0 || f.originalFilename) {
      out.push({ filename: (f.originalFilename ?? 'attachment').replace(/[\r\n"\\/]/g, '_').slice(0, 200), contentType: f.mimetype ?? 'application/octet-stream', content: await readFile(f.filepath) });
    }
    await rm(f.filepath, { force: true });
  }
  return out.filter((u) => u.content.length > 0 || u.filename !== 'attachment');
}

/** The ticket number in the path, or null when it is not one. */
export function ticketNumber(ctx: PortalContext): number | null {
  const raw = String(ctx.params.number ?? '');
  return /^\d{1,9}$/.test(raw) ? Number(raw) : null;
}
