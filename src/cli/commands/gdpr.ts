import type { Config } from '../../config/load.ts';
import { NotFoundError } from '../../errors/errors.ts';
import { exportPersonalData } from '../../domain/privacy/export.ts';
import { eraseNow } from '../../domain/privacy/requests.ts';
import { findDataSubject } from '../../domain/privacy/subject.ts';
import { openCliSession } from '../db-access.ts';
import { UsageError } from '../usage.ts';

/**
 * `helpgate gdpr export <address|sub> > data.zip`: the personal-data archive of a person, as
 * Account → Download my data makes it. `helpgate gdpr erase <address|sub> [--dry-run]`: erases
 * them now (recorded as an executed erasure request), or says what would be erased.
 */
export async function gdprCommand(args: string[], config: Config): Promise<number> {
  const dryRun = args.includes('--dry-run');
  const [sub, who, ...rest] = args.filter((a) => a !== '--dry-run');
  if ((sub !== 'export' && sub !== 'erase') || !who || rest.length) throw new UsageError('gdpr needs "export" or "erase" and an address or LS AAI identifier');
  if (dryRun && sub !== 'erase') throw new UsageError('--dry-run is for gdpr erase');
  if (sub === 'export' && process.stdout.isTTY) throw new UsageError('gdpr export writes a zip archive: redirect it to a file (helpgate gdpr export WHO > data.zip)');
  const session = await openCliSession(config);
  try {
    const subject = await findDataSubject(session.ctx, who);
    if (!subject) throw new NotFoundError('person (neither a known LS AAI identifier nor a mail address)', who);
    if (sub === 'export') {
      const archive = await exportPersonalData(session.ctx, subject);
      await new Promise<void>((resolve, reject) => process.stdout.write(archive.zip, (err) => (err ? reject(err) : resolve())));
      const s = archive.summary;
      process.stderr.write(`exported ${subject.sub ?? subject.addresses[0]}: ${s.tickets} tickets, ${s.articles} articles, ${s.attachments} attachments, ${s.mails} raw mails\n`);
      return 0;
    }
    const { counts } = await eraseNow(session.ctx, subject, { kind: 'cli', sub: null, name: 'helpgate gdpr erase' }, { dryRun });
    const who2 = subject.sub ? `${subject.sub} (${subject.addresses.join(', ') || 'no address'})` : subject.addresses[0];
    process.stdout.write(
      `${dryRun ? 'would erase' : 'erased'} ${who2}:\n` +
        `  identity and address bindings${subject.sub ? '' : ' (none: the address is bound to no identity)'}\n` +
        `  ${counts.articles} of their articles emptied (${counts.attachments} attachments) on ${counts.tickets} tickets\n` +
        `  ${counts.rawMails} received mails deleted\n` +
        `  ${counts.outbound} outbound mails redacted\n` +
        (dryRun ? '' : `  ${counts.blobs} stored files no longer used by anything deleted\n`),
    );
    return 0;
  } finally {
    await session.close();
  }
}
