import type { Config } from '../../config/load.ts';
import { dkimDnsRecord, dkimSigning } from '../../domain/outbound/dkim.ts';
import { openCliStore } from '../db-access.ts';
import { UsageError } from '../usage.ts';

/** A TXT value as the strings of at most 255 characters that a zone file needs (RFC 1035). */
function zoneStrings(value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return parts.length > 1 ? `( ${parts.join('\n    ')} )` : parts[0]!;
}

/**
 * `helpgate dkim [--json]`: the DNS records that make our outbound mail pass DKIM, SPF and DMARC.
 * The key is DKIM_PRIVATE_KEY_FILE, else the one in the database (made there now if helpgate has
 * never started on it).
 */
export async function dkimCommand(args: string[], config: Config): Promise<number> {
  const json = args.includes('--json');
  const rest = args.filter((a) => a !== '--json');
  if (rest.length) throw new UsageError(`dkim: unknown argument "${rest[0]}"`);
  let signing;
  if (config.dkim.keyFile) signing = await dkimSigning(null, config);
  else {
    const session = await openCliStore(config);
    try {
      signing = await dkimSigning(session.store, config);
    } finally {
      await session.close();
    }
  }
  const dkim = dkimDnsRecord(signing);
  const domain = config.helpdesk.domain;
  const relay = config.outboundSmtpUrl ? new URL(config.outboundSmtpUrl).hostname : null;
  const spf = { name: domain, value: `v=spf1 include:<the SPF domain of your relay${relay ? `, ${relay}` : ''}> -all` };
  const dmarc = { name: `_dmarc.${domain}`, value: `v=DMARC1; p=none; rua=mailto:postmaster@${domain}` };
  if (json) {
    process.stdout.write(`${JSON.stringify({ dkim: { ...dkim, type: 'TXT', selector: signing.keySelector, domain: signing.domainName }, spf: { ...spf, type: 'TXT' }, dmarc: { ...dmarc, type: 'TXT' } }, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(
    `DKIM: helpgate signs every outbound mail with d=${signing.domainName}, s=${signing.keySelector}. Publish:\n\n` +
      `name:  ${dkim.name}\ntype:  TXT\nvalue: ${dkim.value}\n\n` +
      `As a zone file line:\n${dkim.name}. 3600 IN TXT ${zoneStrings(dkim.value)}\n\n` +
      `SPF, for the envelope sender's domain (bounce addresses ${config.helpdesk.address.replace('@', '+bounce-…@')}):\n` +
      `${spf.name}. 3600 IN TXT "${spf.value}"\n` +
      `  (if the domain sends other mail, merge this into its existing SPF record: a domain has one)\n\n` +
      `DMARC, for the From domain (start with p=none, read the reports, then p=quarantine):\n` +
      `${dmarc.name}. 3600 IN TXT "${dmarc.value}"\n`,
  );
  return 0;
}
