/**
 * Received HTML mail is written by anyone, so the portal shows it only after this filter.
 *
 * Built on sanitize-html: a well-kept, widely used allow-list sanitiser that parses with
 * htmlparser2 and so runs on plain Node 20 without a DOM (DOMPurify would need jsdom as
 * well). Everything not named below is removed; nothing is removed by a deny-list.
 *
 * What the allow-list decides, and why:
 * - No script, style, frames, plugins, forms, SVG or MathML, and no `<head>` machinery
 *   (meta refresh, base, link): each either runs code, fetches something, or reparses.
 * - No event handlers, and no `id`, `name` or `class`: ids and names would let a mail
 *   overwrite globals of the portal page (DOM clobbering), classes would let it borrow the
 *   portal's own styles to imitate its buttons and notices.
 * - Links and images are rebuilt from a URL parsed the way a browser parses it, so
 *   entity-encoded, mixed-case or whitespace-split schemes are seen for what they are.
 *   Relative URLs are refused: in a mail they can only point into the portal itself, and
 *   an image there is a request made with the reader's cookies.
 * - Remote images are beacons that tell the sender when and where a mail was read; they
 *   are only fetched when the reader asks for them.
 */
import sanitizeHtml from 'sanitize-html';

export interface SanitizeMailOptions {
  /** Load `http(s):` images. When false they are dropped, counted, and marked for a placeholder. */
  allowRemoteImages: boolean;
  /**
   * Where the portal serves the inline attachment a `cid:` image refers to. Receives the
   * Content-ID as written after `cid:`, percent-decoded and without angle brackets; returns
   * null for an unknown id (the image is then shown by its alt text only).
   */
  cidUrl?: (contentId: string) => string | null;
}

export interface SanitizedMail {
  html: string;
  /** Remote images not loaded; the page offers "Show remote images" when this is above 0. */
  blockedRemoteImages: number;
}

/** Set on an `<img>` whose remote source was removed, so the page can draw a placeholder. */
export const BLOCKED_IMAGE_ATTRIBUTE = 'data-blocked-image';

const LINK_SCHEMES = ['http:', 'https:', 'mailto:'];
const REMOTE_IMAGE_SCHEMES = ['http:', 'https:'];

const ALLOWED_TAGS = [
  'a', 'abbr', 'address', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center',
  'cite', 'code', 'col', 'colgroup', 'dd', 'del', 'dfn', 'div', 'dl', 'dt', 'em', 'font',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img', 'ins', 'kbd', 'li', 'mark', 'ol', 'p',
  'pre', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'table', 'tbody',
  'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
];

/**
 * Disallowed elements whose content is dropped too, not shown as text: code, style sheets,
 * document titles, and containers whose content a browser would never have rendered.
 */
const DROPPED_WITH_CONTENT = [
  'script', 'style', 'title', 'textarea', 'option', 'select', 'xmp', 'noscript', 'noembed',
  'noframes', 'template', 'iframe', 'object', 'applet', 'svg', 'math',
];

const CELL_ATTRIBUTES = ['align', 'valign', 'width', 'height', 'bgcolor', 'colspan', 'rowspan', 'nowrap'];

const ALLOWED_ATTRIBUTES: Record<string, string[]> = {
  '*': ['title', 'lang', 'dir', 'style'],
  a: ['href', 'rel', 'target'],
  img: ['src', 'alt', 'width', 'height', 'referrerpolicy', BLOCKED_IMAGE_ATTRIBUTE],
  font: ['color', 'face', 'size'],
  table: ['align', 'width', 'border', 'cellpadding', 'cellspacing', 'bgcolor', 'summary'],
  td: CELL_ATTRIBUTES,
  th: [...CELL_ATTRIBUTES, 'scope', 'abbr'],
  tr: ['align', 'valign', 'bgcolor'],
  col: ['span', 'width', 'align', 'valign'],
  colgroup: ['span', 'width', 'align', 'valign'],
  div: ['align'],
  p: ['align'],
  hr: ['align', 'width', 'size', 'noshade'],
  ol: ['start', 'type', 'reversed'],
  ul: ['type'],
  li: ['value', 'type'],
};

/**
 * Inline style is kept for a handful of text properties, because a great deal of mail is
 * unreadable without its colours and alignment. Each value must match a pattern that has no
 * parenthesis except in `rgb()`/`rgba()` with plain numbers, and no backslash, so `url(`
 * beacons, `expression(` and CSS escapes cannot get through. Layout properties (position,
 * size, margins, display) stay out: with them a mail could cover the portal's own controls.
 */
const COLOUR = [/^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i, /^rgba?\(\s*[\d.]+%?(?:\s*,\s*[\d.]+%?){2,3}\s*\)$/i, /^[a-z]+$/i];
const ALLOWED_STYLES: Record<string, RegExp[]> = {
  color: COLOUR,
  'background-color': COLOUR,
  'text-align': [/^(?:left|right|center|justify|start|end)$/i],
  'font-weight': [/^(?:normal|bold|bolder|lighter|[1-9]00)$/i],
  'font-style': [/^(?:normal|italic|oblique)$/i],
  'text-decoration': [/^(?:none|underline|overline|line-through)(?:\s+(?:underline|overline|line-through))*$/i],
};

/**
 * Parses an attribute value as a browser would resolve it, but without a base URL: a value
 * that is not an absolute URL with one of `schemes` gives null.
 */
function absoluteUrl(value: string | undefined, schemes: string[]): URL | null {
  if (value === undefined) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  return schemes.includes(url.protocol) ? url : null;
}

/** The Content-ID a `cid:` URL names (RFC 2392), or null when the value is not one. */
function contentIdOf(value: string | undefined): string | null {
  const match = /^\s*cid:(.+)$/is.exec(value ?? '');
  if (!match) return null;
  try {
    return decodeURIComponent(match[1].trim()).replace(/^<|>$/g, '');
  } catch {
    return null;
  }
}

export function sanitizeMailHtml(html: string, opts: SanitizeMailOptions): SanitizedMail {
  let blockedRemoteImages = 0;

  const rewriteLink: sanitizeHtml.Transformer = (tagName, attribs) => {
    const href = absoluteUrl(attribs.href, LINK_SCHEMES);
    const { href: _dropped, ...rest } = attribs;
    return {
      tagName,
      attribs: { ...rest, ...(href ? { href: href.href } : {}), rel: 'noopener noreferrer nofollow', target: '_blank' },
    };
  };

  const rewriteImage: sanitizeHtml.Transformer = (tagName, attribs) => {
    const { src, alt, [BLOCKED_IMAGE_ATTRIBUTE]: _marker, referrerpolicy: _policy, ...rest } = attribs;
    // A mail image without alt text is nearly always decoration or a tracking pixel: an
    // empty alt lets screen readers pass over it instead of reading out its address.
    const kept = { ...rest, alt: alt ?? '' };
    const contentId = contentIdOf(src);
    if (contentId !== null) {
      const local = opts.cidUrl?.(contentId) ?? null;
      return { tagName, attribs: local === null ? kept : { ...kept, src: local } };
    }
    const remote = absoluteUrl(src, REMOTE_IMAGE_SCHEMES);
    if (!remote) return { tagName, attribs: kept };
    if (!opts.allowRemoteImages) {
      blockedRemoteImages++;
      return { tagName, attribs: { ...kept, [BLOCKED_IMAGE_ATTRIBUTE]: 'remote' } };
    }
    // Even a wanted image need not tell its host which ticket page it was shown on.
    return { tagName, attribs: { ...kept, src: remote.href, referrerpolicy: 'no-referrer' } };
  };

  const clean = sanitizeHtml(html, {
    allowedTags: ALLOWED_TAGS,
    allowedAttributes: ALLOWED_ATTRIBUTES,
    allowedStyles: { '*': ALLOWED_STYLES },
    nonTextTags: DROPPED_WITH_CONTENT,
    disallowedTagsMode: 'discard',
    // The transforms above already admit only these; sanitize-html checks once more.
    allowedSchemes: LINK_SCHEMES.map((s) => s.slice(0, -1)),
    allowedSchemesByTag: { img: REMOTE_IMAGE_SCHEMES.map((s) => s.slice(0, -1)) },
    allowProtocolRelative: false,
    transformTags: { a: rewriteLink, img: rewriteImage },
    // An image left with no source, no alt text and no placeholder would show nothing.
    exclusiveFilter: (frame) => frame.tag === 'img' && !frame.attribs.src && !frame.attribs.alt && !frame.attribs[BLOCKED_IMAGE_ATTRIBUTE],
  });
  return { html: clean, blockedRemoteImages };
}
