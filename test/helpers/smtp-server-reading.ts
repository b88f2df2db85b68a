// How smtp-server itself reads a RCPT path (the address its onRcptTo hook gets), or undefined where it
// answers 501. The gateway must not judge relay by this reading; the tests use it to tell the forms
// smtp-server lets through (and the gateway must refuse itself) from those it already refuses.
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';

type Parse = (this: unknown, name: string, command: Buffer) => { address: string } | false;

const connection = { _server: { options: {}, logger: { error: () => undefined } }, session: {}, id: 'reading' };

export function smtpServerReading(path: string): string | undefined {
  const parse = (SMTPConnection.prototype as unknown as { _parseAddressCommand: Parse })._parseAddressCommand;
  const parsed = parse.call(connection, 'rcpt to', Buffer.from(`RCPT TO:${path}`));
  return parsed && parsed.address ? parsed.address : undefined;
}
