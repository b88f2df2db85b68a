// A submitting client: one SMTP transaction sent exactly as given (raw MAIL and RCPT lines, the
// message bytes), every reply handed back. The demo sends its samples with it; the tests send theirs
// with the same code (test/helpers/client.ts). Built on the relay's own SMTP client.
import { Readable } from 'node:stream';
import { SmtpClient, type SmtpReply } from '../relay/smtp-client.js';

export async function connect(port: number, ehlo = 'client.test', host = '127.0.0.1'): Promise<SmtpClient> {
  const client = await SmtpClient.connect({ host, port, connectTimeout: 5000, commandTimeout: 30000 });
  if (ehlo) await client.ehlo(ehlo);
  return client;
}

/** DATA, the message, and the final reply (waited for up to `timeout` ms); the reply to DATA if it is not 354. */
export async function sendData(client: SmtpClient, message: Buffer | string, timeout = 60_000): Promise<SmtpReply> {
  const go = await client.command('DATA');
  if (go.code !== 354) return go;
  return client.sendMessage(Readable.from([Buffer.from(message)]), timeout);
}

export interface TransactionReplies {
  mail: SmtpReply;
  rcpts: SmtpReply[];
  /** the reply to DATA or to the final dot; none when MAIL or every RCPT was refused */
  data?: SmtpReply;
}

/** One whole transaction on a new connection; returns every reply in order. */
export async function transaction(port: number, mail: string, rcpts: string[], message: Buffer | string, ehlo?: string): Promise<TransactionReplies> {
  const client = await connect(port, ehlo);
  try {
    const mailReply = await client.command(mail);
    const rcptReplies: SmtpReply[] = [];
    for (const r of rcpts) rcptReplies.push(await client.command(r));
    if (mailReply.code !== 250 || !rcptReplies.some((r) => r.code === 250)) return { mail: mailReply, rcpts: rcptReplies };
    return { mail: mailReply, rcpts: rcptReplies, data: await sendData(client, message) };
  } finally {
    await client.quit();
  }
}
