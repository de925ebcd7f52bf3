import type { Config } from '../../config/load.ts';
import { createLogger } from '../../log/logger.ts';
import { startHelpgate, type Helpgate } from '../../main.ts';
import { stopOnSignal } from '../until-signal.ts';

export function banner(hg: Helpgate): string {
  const c = hg.config;
  const db = hg.database.engine === 'external' ? `MongoDB at ${redact(hg.database.uri)}` : `${hg.database.label} (embedded) at ${hg.database.uri}, data in ${c.dataDir}`;
  const outbound = c.outboundSmtpUrl
    ? `relay ${redact(c.outboundSmtpUrl)}`
    : `captured in the database (no OUTBOUND_SMTP_URL): ${hg.portal ? `the portal's Mail page ${c.publicUrl}/mail, or ` : ''}\`npx helpgate outbox\``;
  const senders =
    c.unboundSenders === 'hold'
      ? `held until the sender signs in with the link we answer with (UNBOUND_SENDERS=hold, kept ${c.holdDays} days)`
      : 'accepted: mail from any address opens a ticket (UNBOUND_SENDERS=accept)';
  const units = c.units.map((u) => `    ${u.entry ? '*' : ' '} ${u.key.padEnd(18)} ${u.name} <${u.address}> (${u.members.length} member${u.members.length === 1 ? '' : 's'})`);
  return [
    'helpgate is running',
    `  SMTP intake   smtp://${hg.smtp.host}:${hg.smtp.port}  (mail to ${c.helpdesk.address}; max ${c.maxMessageSize} bytes)`,
    ...c.mailboxes.map(
      (m) =>
        `  IMAP          ${m.name}: ${m.tls === 'implicit' ? 'imaps' : 'imap'}://${m.user}@${m.host}:${m.port}/${m.folder}  (stored mail is ${m.afterStore === 'move' ? `moved to "${m.moveTo}"` : m.afterStore === 'seen' ? 'flagged \\Seen' : 'deleted'}; \`helpgate status\`)`,
    ),
    `  Database      ${db}`,
    `  Outbound mail ${outbound}`,
    `  Senders       ${senderMode(c)}`,
    `  Unknown senders ${senders}`,
    ...(hg.portal ? [`  Portal        ${c.publicUrl}  (listening on ${hg.portal.url})`, `  Health        ${hg.portal.url}/healthz (alive), ${hg.portal.url}/readyz (ready)`] : []),
    `  Metrics       ${hg.metricsServer ? `${hg.metricsServer.url}/metrics` : c.metrics.token && hg.portal ? `${hg.portal.url}/metrics (with METRICS_TOKEN)` : 'off (set METRICS_PORT, or METRICS_TOKEN for the portal)'}`,
    ...(hg.devAai
      ? [
          `  Sign-in       dev LS AAI stand-in, issuer ${hg.devAai.issuer} (set OIDC_ISSUER for the real LS AAI)`,
          '  Test users (username / password):',
          ...hg.devAai.users.map((u) => `      ${u.username.padEnd(12)} ${u.password.padEnd(20)} ${u.about}`),
        ]
      : [`  Sign-in       ${c.oidc.issuer}`]),
    `  Public URL    ${c.publicUrl}  (ticket links in mail)`,
    `  Ticket tag    [${c.ticketPrefix}#NUMBER]`,
    `  Config file   ${c.configFile}`,
    '  Support Units (* = entry unit for new tickets):',
    ...units,
    'Stop with Ctrl-C.',
  ].join('\n');
}

/** Which sender-authentication mode is in force (README "Sender authentication"). */
function senderMode(c: Config): string {
  const hops = c.senderAuth.trustedAuthservIds.length ? `trusted hops: ${c.senderAuth.trustedAuthservIds.join(', ')}` : 'no trusted hop (TRUSTED_AUTHSERV_IDS)';
  return c.senderAuth.unauthenticated === 'accept'
    ? `UNAUTHENTICATED_SENDERS=accept: From: taken at its word where no DMARC is published (open mode); ${hops}`
    : `UNAUTHENTICATED_SENDERS=flag: only DMARC, a trusted hop or a reply address proves a sender; ${hops}`;
}

function redact(uri: string): string {
  return uri.replace(/\/\/([^:@/]+):([^@/]+)@/, '//$1:***@');
}

export async function serveCommand(_args: string[], config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const hg = await startHelpgate(config, { log });
  process.stdout.write(`${banner(hg)}\n`);
  await stopOnSignal(log, () => hg.stop());
  return 0;
}
