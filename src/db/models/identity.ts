import { Schema, type Connection } from 'mongoose';

/** A person known through LS AAI: _id is their `sub`. Claims are refreshed at every sign-in. */
export const userSchema = new Schema(
  {
    _id: { type: String, required: true },
    name: { type: String, default: '' },
    givenName: { type: String, default: '' },
    familyName: { type: String, default: '' },
    /** The e-mail claim as last received, and whether the provider said it is verified. */
    email: { type: String, default: null },
    emailVerified: { type: Boolean, default: false },
    entitlements: { type: [String], default: [] },
    affiliations: { type: [String], default: [] },
    homeOrganization: { type: String, default: null },
    /** Denormalised copy of the bindings (the `addresses` collection is the authority). */
    addresses: {
      type: [new Schema({ address: String, boundAt: Date, via: String }, { _id: false })],
      default: [],
    },
    consents: {
      type: [new Schema({ version: String, at: Date, ip: String }, { _id: false })],
      default: [],
    },
    lastSignInAt: { type: Date, default: null },
  },
  { timestamps: true, collection: 'users', versionKey: false },
);

export interface PortalUser {
  _id: string;
  name: string;
  givenName: string;
  familyName: string;
  email: string | null;
  emailVerified: boolean;
  entitlements: string[];
  affiliations: string[];
  homeOrganization: string | null;
  addresses: { address: string; boundAt: Date; via: 'verified-claim' | 'confirmation-link' | 'sign-in-link' }[];
  consents: { version: string; at: Date; ip: string }[];
  lastSignInAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * Address → identity: _id is the lower-cased address. Inserting the document binds the
 * address, so an address can be bound to at most one identity (unique _id, atomic everywhere).
 */
export const addressBindingSchema = new Schema(
  { _id: { type: String, required: true }, sub: { type: String, required: true }, via: { type: String, required: true }, boundAt: { type: Date, required: true } },
  { collection: 'addresses', versionKey: false },
);

/**
 * Single-use tokens sent by mail (address confirmation, sign-in link for held mail): _id is the
 * sha256 of the token, so the token itself is never stored.
 */
export const mailTokenSchema = new Schema(
  {
    _id: { type: String, required: true },
    purpose: { type: String, enum: ['confirm-address', 'sign-in-link'], required: true },
    address: { type: String, required: true },
    /** For confirm-address: who asked to bind it. */
    sub: { type: String, default: null },
    expiresAt: { type: Date, required: true },
    /** When and by whom it was used; shown only. Single use is enforced by the "<_id>:used" marker document. */
    usedAt: { type: Date, default: null },
    usedBy: { type: String, default: null },
  },
  { collection: 'mailtokens', versionKey: false, timestamps: true },
);
mailTokenSchema.index({ expiresAt: 1 });

/** Portal sessions: _id is the sha256 of the cookie value. Expired ones are swept. */
export const sessionSchema = new Schema(
  {
    _id: { type: String, required: true },
    data: { type: Schema.Types.Mixed, default: {} },
    expiresAt: { type: Date, required: true },
  },
  { collection: 'sessions', versionKey: false, minimize: false },
);
sessionSchema.index({ expiresAt: 1 });

/**
 * What "my tickets" lists, one document per person (_id = sub): a summary of each of their
 * tickets keyed by number. The portal's list, search and paging read this one document by
 * _id, instead of filtering the whole tickets collection by owner.
 */
export const ticketListSchema = new Schema(
  { _id: { type: String, required: true }, tickets: { type: Schema.Types.Mixed, default: {} } },
  { collection: 'ticketlists', versionKey: false, minimize: false },
);

export const userModel = (conn: Connection) => conn.model('User', userSchema);
export const addressBindingModel = (conn: Connection) => conn.model('AddressBinding', addressBindingSchema);
export const mailTokenModel = (conn: Connection) => conn.model('MailToken', mailTokenSchema);
export const sessionModel = (conn: Connection) => conn.model('Session', sessionSchema);
export const ticketListModel = (conn: Connection) => conn.model('TicketList', ticketListSchema);
