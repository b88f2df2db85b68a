// The demo's downstream: an smtp-server on loopback that accepts every message and keeps it in memory,
// so the demo runs on a machine without Postfix. It stands where the real MTA would (downstream.*).
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { parseHeaderBlock } from '../message/parsed.js';

export interface Delivered {
  mailFrom: string;
  rcptTo: string[];
  messageId: string | undefined;
  bytes: Buffer;
}

export class StandInMta {
  readonly delivered: Delivered[] = [];
  private readonly server: SMTPServer;

  constructor() {
    this.server = new SMTPServer({
      name: 'stand-in-mta.localdomain',
      banner: 'Mailmoat demo stand-in MTA',
      disabledCommands: ['AUTH', 'STARTTLS'],
      authOptional: true,
      disableReverseLookup: true,
      hideENHANCEDSTATUSCODES: false,
      useXForward: true, // the gateway names the original client, as it does to Postfix
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const bytes = Buffer.concat(chunks);
          const end = bytes.indexOf('\r\n\r\n');
          const header = bytes.subarray(0, end === -1 ? bytes.length : end).toString('latin1');
          const messageId = parseHeaderBlock(header).find((f) => f.name === 'message-id')?.value;
          this.delivered.push({
            mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            rcptTo: session.envelope.rcptTo.map((r) => r.address),
            messageId,
            bytes,
          });
          cb(null, `2.0.0 Ok: queued as STANDIN${this.delivered.length}`);
        });
      },
    });
    this.server.on('error', () => undefined); // a client that breaks off is its own business
  }

  async listen(host = '127.0.0.1', port = 0): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return this.server.server.address() as AddressInfo;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
