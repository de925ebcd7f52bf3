import type { Config } from '../../config/load.ts';
import { parseMessage, parsedToJson } from '../../mail/parse/parse.ts';
import { storeInboxItem } from '../../mail/receive/inbox-writer.ts';
import { openCliSession } from '../db-access.ts';
import { recordPipeDelivery } from '../../db/intake-status.ts';
import { EX_DATAERR, UsageError } from '../usage.ts';
import { readStdin } from '../read-stdin.ts';

export async function parseCommand(_args: string[], config: Config): Promise<number> {
  const raw = await readStdin(config.maxMessageSize);
  if (!raw) {
    process.stderr.write(`helpgate: message larger than MAX_MESSAGE_SIZE (${config.maxMessageSize} bytes)\n`);
    return EX_DATAERR;
  }
  process.stdout.write(`${JSON.stringify(parsedToJson(await parseMessage(raw)), null, 2)}\n`);
  return 0;
}

/** `ingest [-f sender] [--] [recipient…]`: the arguments Postfix's pipe(8) and Exim pass. */
export function parseIngestArgs(args: string[]): { mailFrom: string | null; rcptTo: string[] } {
  let mailFrom: string | null = null;
  const rcptTo: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '-f' || a === '--from') {
      if (i + 1 >= args.length) throw new UsageError('-f needs the envelope sender');
      mailFrom = args[++i]!.replace(/^<|>$/g, '');
    } else if (a.startsWith('-f') && a.length > 2) mailFrom = a.slice(2).replace(/^<|>$/g, '');
    else if (a === '--') continue;
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else rcptTo.push(a.toLowerCase());
  }
  return { mailFrom, rcptTo };
}

/**
 * Without arguments, the envelope Postfix's local(8) (an alias "|helpgate ingest") and Exim's
 * pipe transport put in the environment: SENDER, and ORIGINAL_RECIPIENT or RECIPIENT.
 */
export function envelopeFromEnvironment(envelope: { mailFrom: string | null; rcptTo: string[] }, env: Record<string, string | undefined>): { mailFrom: string | null; rcptTo: string[] } {
  const recipient = env.ORIGINAL_RECIPIENT || env.RECIPIENT;
  return {
    mailFrom: envelope.mailFrom ?? env.SENDER ?? null,
    rcptTo: envelope.rcptTo.length ? envelope.rcptTo : recipient ? [recipient.toLowerCase()] : [],
  };
}

export async function ingestCommand(args: string[], config: Config): Promise<number> {
  const envelope = envelopeFromEnvironment(parseIngestArgs(args), process.env);
  const raw = await readStdin(config.maxMessageSize);
  if (!raw) {
    process.stderr.write(`helpgate: message larger than MAX_MESSAGE_SIZE (${config.maxMessageSize} bytes)\n`);
    return EX_DATAERR;
  }
  const session = await openCliSession(config);
  try {
    const item = await storeInboxItem(session.store, 'pipe', raw, {
      mailFrom: envelope.mailFrom,
      rcptTo: envelope.rcptTo.length ? envelope.rcptTo : [config.helpdesk.address],
    });
    process.stdout.write(`stored as ${item.id}\n`);
    await recordPipeDelivery(session.store);
    return 0;
  } finally {
    await session.close();
  }
}
