import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import type { Upload } from '../../domain/portal/web-tickets.ts';
import type { PortalContext } from '../context.ts';
import { heldFor, type HeldFile } from '../forms/held-files.ts';
import { SUBMISSION } from '../forms/schemas.ts';

/** A random id put in a form when it is shown: submitting it twice does the thing once. */
export const newSubmission = () => randomBytes(18).toString('base64url');

/** The form's fields as strings (koa-body gives a string, or an array for a repeated name: its first string). */
export function formFields(ctx: PortalContext): Record<string, string> {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(body)) {
    const first = Array.isArray(v) ? v.find((x) => typeof x === 'string') : v;
    if (typeof first === 'string') out[name] = first;
  }
  return out;
}

/** Every value of a repeated field (checkboxes). */
export function formList(ctx: PortalContext, name: string): string[] {
  const v = ((ctx.request as { body?: Record<string, unknown> }).body ?? {})[name];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string');
}

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

/**
 * The files a form brings: those uploaded now (field `attachments`) and those kept from its
 * rejected earlier try (less the ones ticked "remove"). `form`: the submission id the files are
 * kept under (a fresh one when the form's own is not usable).
 */
export async function formFiles(ctx: PortalContext, submission: string): Promise<{ form: string; uploaded: Upload[]; held: HeldFile[] }> {
  const uploaded = await uploads(ctx, 'attachments');
  const form = SUBMISSION.test(submission) ? submission : newSubmission();
  return { form, uploaded, held: heldFor(ctx.state.session, form, formList(ctx, 'remove-file')) };
}

/** The ticket number in the path, or null when it is not one. */
export function ticketNumber(ctx: PortalContext): number | null {
  const raw = String(ctx.params.number ?? '');
  return /^\d{1,9}$/.test(raw) ? Number(raw) : null;
}
