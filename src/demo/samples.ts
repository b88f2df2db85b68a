// The demo's sample mail, built by code: our organisation is example.com, its partner partner.example.
// Each sample is what the gateway meets in the wild, small enough to read: a clean note, an invoice
// with an auto-run macro, a quote request and the hijacked "reply" to it, and a PC sending Word files.
import MailComposer from 'nodemailer/lib/mail-composer';
import { buildDoc } from './vba-project.js';

export interface Sample {
  /** one line for the summary: what this message is */
  label: string;
  mailFrom: string;
  rcptTo: string[];
  bytes: Buffer;
}

export const ORG = 'example.com';
const ALICE = { name: 'Alice Walker', address: 'alice.walker@example.com' };
const BOB = { name: 'Bob Smith', address: 'bob.smith@partner.example' };
/** the hijacker's sending account: a compromised mailbox somewhere unrelated */
const ATTACKER = 'kurt@hacked-shop.example';
/** the internal PC whose mail client an infection drives */
const INFECTED = 'ken.tanaka@example.com';
const QUOTE_ID = '<q3-quote-request@example.com>';
const DATE = new Date('2024-06-03T10:02:00+09:00');

/** The auto-run macro of the invoice: a Document_Open-style AutoOpen that shells out to PowerShell. */
const DROPPER_VBA = 'Sub AutoOpen()\r\n  Dim x\r\n  x = Shell("powershell -w hidden -enc SQBFAFgA", 0)\r\nEnd Sub\r\n';

interface Mail {
  from: string;
  to: string;
  subject: string;
  text: string;
  messageId: string;
  inReplyTo?: string;
  attachments?: { filename: string; content: Buffer; contentType: string }[];
}

async function compose(mail: Mail): Promise<Buffer> {
  const { inReplyTo, ...rest } = mail;
  const composer = new MailComposer({ ...rest, date: DATE, ...(inReplyTo ? { inReplyTo, references: [inReplyTo] } : {}) });
  return composer.compile().build();
}

const mailbox = (p: { name: string; address: string }) => `"${p.name}" <${p.address}>`;

/** A partner's note to us: nothing in it to hold. */
export async function cleanNote(): Promise<Sample> {
  return {
    label: 'a note from a partner, no attachment',
    mailFrom: BOB.address,
    rcptTo: [ALICE.address],
    bytes: await compose({
      from: mailbox(BOB),
      to: mailbox(ALICE),
      subject: 'Minutes of Tuesday',
      text: 'Hi Alice,\nthe minutes of Tuesday are below. Talk soon,\nBob',
      messageId: '<minutes-tuesday@partner.example>',
    }),
  };
}

/** An "invoice" whose Word 97 document runs a macro when opened: Emotet's classic lure. */
export async function macroInvoice(): Promise<Sample> {
  const doc = buildDoc({ modules: [{ name: 'Module1', code: DROPPER_VBA }] });
  return {
    label: 'an invoice with invoice-0612.doc (an AutoOpen macro that starts PowerShell)',
    mailFrom: 'billing@supplier.example',
    rcptTo: [ALICE.address],
    bytes: await compose({
      from: '"Supplier Billing" <billing@supplier.example>',
      to: mailbox(ALICE),
      subject: 'Invoice 2024-0612',
      text: 'Dear customer,\nplease find the invoice attached. Enable editing to view it.\n',
      messageId: '<invoice-0612@supplier.example>',
      attachments: [{ filename: 'invoice-0612.doc', content: doc, contentType: 'application/msword' }],
    }),
  };
}

/** Alice asks Bob for a quote: relayed outbound, so the thread memory learns the thread and its people. */
export async function quoteRequest(): Promise<Sample> {
  return {
    label: 'Alice asks Bob (partner.example) for a quote: outbound, the thread memory learns it',
    mailFrom: ALICE.address,
    rcptTo: [BOB.address],
    bytes: await compose({
      from: mailbox(ALICE),
      to: mailbox(BOB),
      subject: 'Quote for the Q3 order',
      text: 'Hi Bob,\nplease send us your quote for the Q3 order.\nRegards, Alice',
      messageId: QUOTE_ID,
    }),
  };
}

/** The hijack: the stolen thread continued from another mailbox, under Bob's name. */
export async function hijackedReply(): Promise<Sample> {
  return {
    label: `a "reply" to the quote request under Bob's name, sent from ${ATTACKER}`,
    mailFrom: ATTACKER,
    rcptTo: [ALICE.address],
    bytes: await compose({
      from: mailbox({ name: BOB.name, address: ATTACKER }),
      to: mailbox(ALICE),
      subject: 'Re: Quote for the Q3 order',
      text: 'Hi Alice,\nplease see the attached quote and confirm today.\nBob\n\n> Hi Bob,\n> please send us your quote for the Q3 order.\n> Regards, Alice',
      messageId: '<re-q3-quote@hacked-shop.example>',
      inReplyTo: QUOTE_ID,
    }),
  };
}

/** One of the infected PC's messages: a Word document (no macro in it) to yet another outside address. */
export async function wordFromInfectedPc(n: number): Promise<Sample> {
  const to = `contact${n}@customer${n}.example`;
  return {
    label: `report-${n}.doc`,
    mailFrom: INFECTED,
    rcptTo: [to],
    bytes: await compose({
      from: `"Ken Tanaka" <${INFECTED}>`,
      to,
      subject: `Report ${n}`,
      text: 'Please find the report attached.\n',
      messageId: `<report-${n}@example.com>`,
      attachments: [{ filename: `report-${n}.doc`, content: buildDoc(undefined), contentType: 'application/msword' }],
    }),
  };
}
