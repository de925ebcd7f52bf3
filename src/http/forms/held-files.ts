import { randomBytes } from 'node:crypto';
import type { DomainContext } from '../../domain/context.ts';
import { storeUploads, type ArticleAttachment, type Upload } from '../../domain/portal/web-tickets.ts';
import type { SessionState } from '../session.ts';

/**
 * Files of a form that was not accepted, kept for its next submission so nobody has to attach
 * them again: the bytes are stored as blobs (where an accepted form's files go anyway), and
 * the session remembers them under the form's submission id for a short while. The re-shown
 * form lists them, each with a "remove" box.
 */
export type HeldFile = NonNullable<SessionState['data']['heldFiles']>[number];

/** How long a rejected form's files wait for the next try. */
const HOLD_MS = 60 * 60_000;
/** A session holds the files of this many forms at most (the oldest go first). */
const MAX_FORMS = 5;
const MAX_FILES_PER_FORM = 20;

function live(session: SessionState, now: number): HeldFile[] {
  return (session.data.heldFiles ?? []).filter((f) => f.until > now);
}

function save(session: SessionState, files: HeldFile[]): void {
  if (files.length) session.data.heldFiles = files;
  else delete session.data.heldFiles;
}

/** The files held for this form, without those the person asked to remove (which are let go). */
export function heldFor(session: SessionState, form: string, remove: readonly string[] = []): HeldFile[] {
  const now = Date.now();
  const all = live(session, now).filter((f) => !(f.form === form && remove.includes(f.id)));
  if (all.length !== (session.data.heldFiles ?? []).length) save(session, all);
  return all.filter((f) => f.form === form);
}

/**
 * Keeps a rejected form's files: those still held plus the ones just uploaded (stored now).
 * Returns what the re-shown form lists.
 */
export async function holdFiles(domain: DomainContext, session: SessionState, form: string, kept: readonly HeldFile[], uploads: readonly Upload[]): Promise<HeldFile[]> {
  const now = Date.now();
  const stored = await storeUploads(domain, [...uploads]);
  const added = stored.map((a) => ({ form, id: randomBytes(9).toString('base64url'), filename: a.filename ?? 'attachment', contentType: a.contentType, size: a.size, sha256: a.sha256, until: now + HOLD_MS }));
  const mine = [...kept.map((f) => ({ ...f, until: now + HOLD_MS })), ...added].slice(0, MAX_FILES_PER_FORM);
  const others = live(session, now).filter((f) => f.form !== form);
  const forms = [...new Set(others.map((f) => f.form))].slice(-(MAX_FORMS - 1));
  save(session, [...others.filter((f) => forms.includes(f.form)), ...mine]);
  return mine;
}

/** The form was accepted: its held files now belong to what it made. */
export function releaseHeld(session: SessionState, form: string): void {
  save(session, live(session, Date.now()).filter((f) => f.form !== form));
}

export function asAttachments(files: readonly HeldFile[]): ArticleAttachment[] {
  return files.map((f) => ({ filename: f.filename, contentType: f.contentType, size: f.size, sha256: f.sha256, contentId: null, inline: false }));
}
