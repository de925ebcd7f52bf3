import type { Store } from './store.ts';

/** A blob someone stopped referring to, with its size when known (how many chunks it has). */
export interface ReleasedBlob {
  sha256: string;
  size: number;
}

/**
 * Whether anything still refers to the blob `sha`. Blobs are content-addressed and shared: one
 * attachment sent by two people, a file forwarded by an agent, the same raw mail delivered twice
 * are one blob. What refers to blobs:
 *
 * - articles' attachments (`attachments.sha256`);
 * - inbox items whose raw message lives in the blob store (`raw` null) and was not removed;
 *   held mail is an inbox item too, and the IMAP intake's record of a too-large message;
 * - files of a rejected portal form kept in a session for its next submission.
 *
 * Each question scans its collection on FerretDB: meant for the erasure and the daily job, not
 * for a request.
 */
export async function blobInUse(store: Store, sha: string): Promise<boolean> {
  const { Article, Inbox, Session } = store.models;
  if (await Article.exists({ 'attachments.sha256': sha })) return true;
  if (await Inbox.exists({ rawSha256: sha, raw: null, rawRemoved: null })) return true;
  if (await Session.exists({ 'data.heldFiles.sha256': sha })) return true;
  return false;
}

/**
 * Deletes the blobs of `released` that nothing refers to any more; returns how many were
 * deleted. Call it after the references were removed. A blob stored again after the check
 * (the same file arriving in a new mail at that moment) loses its bytes: its article then
 * shows the attachment as missing. The window is the few milliseconds between check and
 * delete, and it needs the very same bytes; we accept it rather than lock every blob write.
 */
export async function removeUnusedBlobs(store: Store, released: readonly ReleasedBlob[]): Promise<number> {
  const bySha = new Map<string, number>();
  for (const b of released) if (b.sha256) bySha.set(b.sha256, Math.max(bySha.get(b.sha256) ?? 0, b.size));
  let removed = 0;
  for (const [sha, size] of bySha) {
    if (await blobInUse(store, sha)) continue;
    if ((await store.blobs.delete(sha, size)) > 0) removed++;
  }
  return removed;
}
