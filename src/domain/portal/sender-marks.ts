import type { Article } from '../../db/models/article.ts';

/** What an agent's ticket page says about who sent a received mail. */
export interface SenderMark {
  verified: boolean;
  /** "Verified sender" or "Unverified sender": the words, not only a colour. */
  label: string;
  /** Why, in words: "DMARC pass for uni.example", "example.org publishes no DMARC record…". */
  reason: string;
  /** Each mechanism's result, for the curious: "SPF pass · DKIM pass (uni.example) · DMARC pass · ARC none". */
  details: string;
}

/** The mark of each received mail that was checked (domain/ingest/sender-trust.ts), by article id. */
export function senderMarks(articles: Pick<Article, '_id' | 'direction' | 'senderAuth'>[]): Record<string, SenderMark> {
  const marks: Record<string, SenderMark> = {};
  for (const a of articles) {
    const auth = a.senderAuth;
    if (a.direction !== 'in' || !auth) continue;
    const verified = auth.status === 'verified';
    const dkim = auth.dkimDomains.length ? `${auth.dkim} (${auth.dkimDomains.join(', ')})` : auth.dkim;
    marks[String(a._id)] = {
      verified,
      label: verified ? 'Verified sender' : 'Unverified sender',
      reason: auth.reason,
      details: [`SPF ${auth.spf}`, `DKIM ${dkim}`, `DMARC ${auth.dmarc}`, `ARC ${auth.arc}`, ...(auth.hop ? [`trusted hop ${auth.hop}`] : [])].join(' · '),
    };
  }
  return marks;
}

/** How many received mails on the ticket came from senders nothing vouched for (they changed nothing). */
export function unverifiedCount(articles: Pick<Article, 'direction' | 'senderAuth'>[]): number {
  return articles.filter((a) => a.direction === 'in' && a.senderAuth?.status === 'unverified').length;
}
