import { HelpgateError } from '../errors/errors.ts';

/** sysexits.h codes, as MTAs read them. */
export const EX_USAGE = 64;
export const EX_DATAERR = 65;
export const EX_TEMPFAIL = 75;
export const EX_CONFIG = 78;

export const USAGE = `Usage: helpgate <command> [options]

  serve                       run the helpdesk (SMTP intake, ingest and outbox workers)
  parse < mail.eml            print the parsed message as JSON (no database)
  ingest [-f SENDER] [RCPT…] < mail.eml
                              store a message for processing, as an MTA pipe does
                              (exit 0 stored, 75 database unreachable: try again)
  tickets list [--json]       the newest tickets
  tickets show NUMBER [--json]
                              one ticket with its articles
  outbox [--json]             outbound mail and its state (captured mail included), and
                              the addresses whose mail bounced repeatedly
  outbox show ID [--raw]      one outbound mail decoded: headers, text, the links in it
                              (--raw: the MIME source of a captured mail)
  outbox bounces [--json]     every address our mail hard-bounced from, with counts
  inbox [--json]              received messages and their processing state
  inbox retry ID              process a (quarantined) message again
  status [--json]             each intake (SMTP, mailboxes, pipe): state, last message,
                              backlog, last error
  export > dump.jsonl         every collection as JSON lines (Extended JSON)
  import < dump.jsonl         load such a dump into an empty database (to move engines)
  gdpr export WHO > data.zip  the personal data of a person (an address or LS AAI
                              identifier) as Account → Download my data gives it
  gdpr erase WHO [--dry-run]  erase a person's data now (see docs/privacy.md); with
                              --dry-run, only say what would be erased
  dkim [--json]               the DNS records to publish: the DKIM key (TXT), SPF, DMARC
  tools ferretdb              build the embedded FerretDB now (otherwise on first start)
  dev-aai                     run the dev LS AAI stand-in alone (DEV_AAI_HOST:DEV_AAI_PORT)
                              and print its issuer and test users
  version                     the version, and whether it runs from the build (dist/)
                              or from the sources

Commands that use the database reach the helpgate running on HELPGATE_DATA_DIR (or
MONGODB_URI); with none running they fail (ingest: 75), unless given --start-database,
which starts the data folder's engine for the command.

Configuration comes from environment variables; see README.md.`;

export class UsageError extends HelpgateError {
  constructor(message: string) {
    super('usage', `${message}\n\n${USAGE}`);
  }
}
