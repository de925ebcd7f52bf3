// mailauth ships no type declarations: these cover the part of its 4.x API that sender
// verification uses (authenticate, and the Authentication-Results parser it uses for ARC).

declare module 'mailauth' {
  /** Answers like node:dns's resolve(name, rrtype): TXT records as arrays of strings. */
  export type MailauthResolver = (name: string, rrtype: string) => Promise<unknown>;

  export interface AuthStatus {
    result: string;
    comment?: string | false;
    header?: Record<string, string | undefined>;
    smtp?: Record<string, string | undefined>;
  }

  export interface DkimSignatureResult {
    signingDomain?: string;
    status: AuthStatus & { aligned?: string | false; underSized?: number };
  }

  export interface AuthenticateResult {
    dkim: { headerFrom?: string[]; results?: DkimSignatureResult[]; headers?: { parsed: { key: string; line: Buffer | string }[] } };
    spf: false | { domain?: string; status: AuthStatus };
    dmarc: false | { domain?: string; policy?: string; p?: string; status: AuthStatus; alignment?: { spf?: { result?: string | false }; dkim?: { result?: string | false } } };
    arc: false | { status: AuthStatus };
    headers: string;
  }

  export function authenticate(
    input: Buffer | string,
    opts: {
      sender?: string;
      ip?: string;
      helo?: string;
      mta?: string;
      resolver?: MailauthResolver;
      minBitLength?: number;
      disableArc?: boolean;
      disableDmarc?: boolean;
      disableBimi?: boolean;
      trustReceived?: boolean;
    },
  ): Promise<AuthenticateResult>;
}

declare module 'mailauth/lib/parse-dkim-headers.js' {
  /** Parses one header line ("Authentication-Results: id; method=result prop=value; …"). */
  function parseDkimHeaders(line: string): { parsed: Record<string, unknown> & { value?: string } };
  export default parseDkimHeaders;
}
