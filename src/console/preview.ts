// The safe preview of a held message, for the admins' item page and the recipients' page alike:
// what a person needs to judge it, and nothing that could act. Text parts are shown as text. HTML is
// passed through sanitize-html with an allow-list of plain formatting tags and almost no attributes:
// scripts, styles (and with them every CSS url()), event handlers, forms, frames and objects are
// dropped; an image becomes a placeholder naming its source, a link a span naming its target, so
// nothing is fetched and nothing is followed. The page's Content-Security-Policy (server.ts) is the
// second wall: the browser itself may load nothing from anywhere but the console.
import { createHash } from 'node:crypto';
import { simpleParser, type ParsedMail } from 'mailparser';
import sanitizeHtml from 'sanitize-html';
import { sniff } from '../inspect/office/sniff.js';
import { html, multiline, trusted, type Html } from './layout.js';
import type { Translate } from './i18n.js';
import { formatBytes } from './i18n.js';

/** Past this many characters a part is cut for the preview (and says so). */
const MAX_PREVIEW_CHARS = 256 * 1024;

export interface PreviewAttachment {
  filename: string;
  /** the Content-Type the sender declared */
  declaredType: string;
  /** what the bytes are, as the gateway's own sniffer sees them (src/inspect/office/sniff.ts) */
  kindByContent: string;
  size: number;
  sha256: string;
}

export interface Preview {
  subject?: string;
  from?: string;
  to?: string;
  date?: string;
  text?: string;
  /** sanitised: safe to put into a page as markup */
  safeHtml?: string;
  truncated: boolean;
  attachments: PreviewAttachment[];
}

const ALLOWED_TAGS = [
  'p',
  'br',
  'div',
  'span',
  'b',
  'i',
  'u',
  's',
  'strong',
  'em',
  'small',
  'sub',
  'sup',
  'font',
  'center',
  'ul',
  'ol',
  'li',
  'dl',
  'dt',
  'dd',
  'blockquote',
  'pre',
  'code',
  'hr',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'table',
  'thead',
  'tbody',
  'tfoot',
  'tr',
  'td',
  'th',
  'caption',
];

/** Attribute values may show a URL, but only as text: clipped, control characters out. */
function shown(url: string | undefined): string {
  const clean = (url ?? '').replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
  return clean.length > 200 ? clean.slice(0, 199) + '…' : clean;
}

const SANITIZE: sanitizeHtml.IOptions = {
  allowedTags: ALLOWED_TAGS,
  allowedAttributes: {
    td: ['colspan', 'rowspan'],
    th: ['colspan', 'rowspan'],
    span: ['class', 'data-href', 'data-src', 'title'],
  },
  allowedClasses: { span: ['mm-link', 'mm-img'] },
  // no attribute that takes a URL survives, so no scheme is allowed either
  allowedSchemes: [],
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite', 'action', 'background', 'poster', 'srcset', 'xlink:href'],
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  nonTextTags: ['style', 'script', 'textarea', 'option', 'xmp', 'noscript', 'title', 'head', 'template', 'iframe', 'object', 'noembed', 'noframes'],
  transformTags: {
    a: (_tag, attribs) => ({ tagName: 'span', attribs: { class: 'mm-link', 'data-href': shown(attribs.href), title: shown(attribs.href) } }),
    img: (_tag, attribs) => ({
      tagName: 'span',
      attribs: { class: 'mm-img', 'data-src': shown(attribs.src || attribs['data-src']), title: shown(attribs.alt) },
    }),
  },
};

/** HTML from a message, made inert (see the module comment). */
export function sanitizeMessageHtml(dirty: string): string {
  return sanitizeHtml(dirty, SANITIZE);
}

function clip(value: string): { text: string; cut: boolean } {
  return value.length > MAX_PREVIEW_CHARS ? { text: value.slice(0, MAX_PREVIEW_CHARS), cut: true } : { text: value, cut: false };
}

function addressText(value: ParsedMail['from'] | ParsedMail['to']): string | undefined {
  if (!value) return undefined;
  return (Array.isArray(value) ? value : [value]).map((v) => v.text).join(', ');
}

/** Parses the raw message (bytes as received) into what the preview shows. */
export async function buildPreview(raw: Buffer): Promise<Preview> {
  const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true, skipTextLinks: true, skipHtmlToText: false });
  let truncated = false;
  const preview: Preview = {
    truncated: false,
    attachments: parsed.attachments.map((a) => ({
      filename: a.filename ?? '',
      declaredType: a.contentType,
      kindByContent: sniff(a.content),
      size: a.size,
      sha256: createHash('sha256').update(a.content).digest('hex'),
    })),
  };
  if (parsed.subject !== undefined) preview.subject = parsed.subject;
  const from = addressText(parsed.from);
  if (from) preview.from = from;
  const to = addressText(parsed.to);
  if (to) preview.to = to;
  if (parsed.date) preview.date = parsed.date.toISOString();
  if (parsed.text) {
    const { text, cut } = clip(parsed.text);
    preview.text = text;
    truncated ||= cut;
  }
  if (typeof parsed.html === 'string' && parsed.html) {
    const { text, cut } = clip(parsed.html);
    preview.safeHtml = sanitizeMessageHtml(text);
    truncated ||= cut;
  }
  preview.truncated = truncated;
  return preview;
}

/** The preview as a page fragment: the HTML part (sanitised) when there is one, and the text part. */
export function renderPreview(preview: Preview, t: Translate): Html {
  const parts: Html[] = [];
  if (preview.safeHtml !== undefined) {
    parts.push(
      html`<h3>${t('iPreviewHtml')}</h3>
        <div class="preview preview-html" lang="">${trusted(preview.safeHtml)}</div>`,
    );
  }
  if (preview.text !== undefined) {
    parts.push(
      html`<h3>${t('iPreviewText')}</h3>
        <div class="preview preview-text"><pre>${multiline(preview.text)}</pre></div>`,
    );
  }
  if (!parts.length) parts.push(html`<p class="muted">${t('iPreviewNone')}</p>`);
  return html`<p class="muted">${t('iPreviewNote')}</p>
    ${preview.truncated ? html`<p class="warn">${t('iPreviewTruncated')}</p>` : ''}${parts}`;
}

/** The attachments table: names, declared types, types by content, sizes and SHA-256. */
export function renderAttachments(preview: Preview, t: Translate): Html {
  if (!preview.attachments.length) return html`<p class="muted">${t('iNoAttachments')}</p>`;
  return html`<div class="scroll">
    <table class="attachments">
      <thead>
        <tr>
          <th>${t('iAttName')}</th>
          <th>${t('iAttDeclared')}</th>
          <th>${t('iAttByContent')}</th>
          <th>${t('iAttSize')}</th>
          <th>${t('iHash')}</th>
        </tr>
      </thead>
      <tbody>
        ${preview.attachments.map(
          (a) =>
            html`<tr>
              <td class="addr">${a.filename || '—'}</td>
              <td class="mono">${a.declaredType}</td>
              <td class="mono">${a.kindByContent}</td>
              <td class="nowrap">${formatBytes(a.size)}</td>
              <td class="mono">${a.sha256}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}
