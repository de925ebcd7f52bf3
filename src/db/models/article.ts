import { Schema, type Connection, type Types } from 'mongoose';

const addressSchema = new Schema({ address: { type: String, default: '' }, name: { type: String, default: '' } }, { _id: false });
const attachmentSchema = new Schema(
  {
    filename: { type: String, default: null },
    contentType: { type: String, required: true },
    size: { type: Number, required: true },
    sha256: { type: String, required: true },
    contentId: { type: String, default: null },
    inline: { type: Boolean, default: false },
  },
  { _id: false },
);

/**
 * Who a received mail is from, as far as it could be checked (domain/ingest/sender-trust.ts):
 * each mechanism's result, the From: domain DMARC authenticated, and the conclusion.
 */
const senderAuthSchema = new Schema(
  {
    /** verified: the sender is proven; accepted: unproven but taken at its word (UNAUTHENTICATED_SENDERS=accept); unverified. */
    status: { type: String, enum: ['verified', 'accepted', 'unverified'], required: true },
    /** The address the conclusion is about (the From: address). */
    address: { type: String, default: null },
    /** What proved it: dmarc (our check), hop (a trusted Authentication-Results), token (a reply address), or null. */
    via: { type: String, default: null },
    /** In words, for agents: "DMARC pass for uni.example", "no DMARC record for example.org". */
    reason: { type: String, default: '' },
    spf: { type: String, default: 'none' },
    spfDomain: { type: String, default: null },
    dkim: { type: String, default: 'none' },
    dkimDomains: { type: [String], default: [] },
    dmarc: { type: String, default: 'none' },
    dmarcPolicy: { type: String, default: null },
    arc: { type: String, default: 'none' },
    alignedDomain: { type: String, default: null },
    /** The trusted hop (authserv-id) whose verdict was read, if any. */
    hop: { type: String, default: null },
  },
  { _id: false },
);

export interface SenderAuth {
  status: 'verified' | 'accepted' | 'unverified';
  address: string | null;
  via: 'dmarc' | 'hop' | 'token' | null;
  reason: string;
  spf: string;
  spfDomain: string | null;
  dkim: string;
  dkimDomains: string[];
  dmarc: string;
  dmarcPolicy: string | null;
  arc: string;
  alignedDomain: string | null;
  hop: string | null;
}

/** in: a mail we received; out: an answer relayed to the requester; system: our own record (e.g. a delivery failure). */
export const ARTICLE_DIRECTIONS = ['in', 'system'] as const;
/** Who wrote it, when known: the LS AAI `sub` of a portal user. */
export type AuthorSub = string | null;
export const AUTHOR_ROLES = ['requester', 'participant', 'agent', 'system'] as const;

export const articleSchema = new Schema(
  {
    ticketId: { type: Schema.Types.ObjectId, required: true },
    ticketNumber: { type: Number, required: true },
    /** Idempotency key: "mid:<Message-ID>" or "sha:<raw sha256>" for mail without one. */
    key: { type: String, required: true },
    direction: { type: String, enum: ARTICLE_DIRECTIONS, required: true },
    authorRole: { type: String, enum: AUTHOR_ROLES, required: true },
    channel: { type: String, enum: ['mail', 'web', 'system'], default: 'mail' },
    from: { type: addressSchema, default: null },
    to: { type: [addressSchema], default: [] },
    cc: { type: [addressSchema], default: [] },
    subject: { type: String, default: '' },
    date: { type: Date, default: null },
    messageId: { type: String, default: null },
    inReplyTo: { type: String, default: null },
    references: { type: [String], default: [] },
    text: { type: String, default: '' },
    /** HTML exactly as received; it is sanitised only when shown. */
    html: { type: String, default: null },
    attachments: { type: [attachmentSchema], default: [] },
    authResults: { type: String, default: null },
    /** Mail only: the sender's authentication and what it concluded (null for web and system articles, and mail stored before it was checked). */
    senderAuth: { type: senderAuthSchema, default: null },
    /** Why no automatic mail was sent for this article (loop protection), if so. */
    automated: { type: String, default: null },
    authorSub: { type: String, default: null },
    /** An internal note: shown to agents only, mailed to the unit only, never to the requester. */
    internal: { type: Boolean, default: false },
    /** Why an agent's mail was kept as an internal note (commands without a valid token). */
    flag: { type: String, default: null },
    inboxId: { type: Schema.Types.ObjectId, default: null },
    rawSha256: { type: String, default: null },
    /** The parsed content's hash: tells a redelivery from another mail reusing the Message-ID. */
    contentHash: { type: String, default: null },
    /** Something agents should know about how the mail was filed (e.g. "duplicate Message-ID"). */
    note: { type: String, default: null },
  },
  { timestamps: true, collection: 'articles' },
);
articleSchema.index({ key: 1 }, { unique: true });
// A ticket's page reads its articles in one query, in this order.
articleSchema.index({ ticketId: 1, createdAt: 1, _id: 1 });

export interface ArticleAddress {
  address: string;
  name: string;
}

export interface ArticleAttachment {
  filename: string | null;
  contentType: string;
  size: number;
  sha256: string;
  contentId: string | null;
  inline: boolean;
}

export interface Article {
  _id: Types.ObjectId;
  ticketId: Types.ObjectId;
  ticketNumber: number;
  key: string;
  direction: (typeof ARTICLE_DIRECTIONS)[number];
  authorRole: (typeof AUTHOR_ROLES)[number];
  channel: 'mail' | 'web' | 'system';
  from: ArticleAddress | null;
  to: ArticleAddress[];
  cc: ArticleAddress[];
  subject: string;
  date: Date | null;
  messageId: string | null;
  inReplyTo: string | null;
  references: string[];
  text: string;
  html: string | null;
  attachments: ArticleAttachment[];
  authResults: string | null;
  senderAuth?: SenderAuth | null;
  automated: string | null;
  authorSub: string | null;
  internal?: boolean;
  flag?: string | null;
  inboxId: Types.ObjectId | null;
  rawSha256: string | null;
  contentHash?: string | null;
  note?: string | null;
  createdAt: Date;
  updatedAt: Date;
}
export const articleModel = (conn: Connection) => conn.model('Article', articleSchema);
