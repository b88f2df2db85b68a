// HTML as the lines a reader sees, for the password finder: block elements and <br> end a line,
// table cells are separated by a tab, inline tags vanish without a trace ("Pass<b>word</b>" reads
// "Password", as on screen), scripts, styles and comments are dropped, and character references
// (&#12497;, &nbsp;, &colon;) are decoded by `entities` (the full HTML5 table, as a browser does).
// A regex pass, not a DOM: it runs on every HTML part of every message, on the event loop.
import { decodeHTML } from 'entities';

const DROPPED = /<!--[\s\S]*?(?:-->|$)|<(script|style|head|title|template)\b[^>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi;
const LINE_BREAK =
  /<(?:br|hr)\b[^>]*>|<\/?(?:p|div|tr|li|ul|ol|dl|dt|dd|h[1-6]|table|tbody|thead|blockquote|pre|section|article|header|footer|center|address)\b[^>]*>/gi;
const CELL = /<\/?(?:td|th)\b[^>]*>/gi;
const TAG = /<\/?[a-z!?][^>]*>/gi;

export function htmlToText(html: string): string {
  return decodeHTML(html.replace(DROPPED, ' ').replace(LINE_BREAK, '\n').replace(CELL, '\t').replace(TAG, ''));
}

/** Whether a text is HTML markup rather than text that mentions a tag. */
export function looksLikeHtml(text: string): boolean {
  return /<(?:html|body|p|br|div|span|table|td|font|b|strong|a)\b[^>]*>/i.test(text);
}
