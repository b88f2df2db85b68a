// A test SMTP client that sends exactly what the test says: raw command lines and raw message bytes.
// Whole transactions go through the demo's submitting client (src/demo/submit.ts): one copy of that code.
import net from 'node:net';
import { SmtpClient, type SmtpReply } from '../../src/relay/smtp-client.js';

export { connect, sendData, transaction } from '../../src/demo/submit.js';

export function text(reply: SmtpReply | undefined): string {
  return reply ? `${reply.code} ${reply.lines.join(' ')}` : '(none)';
}

/**
 * Writes raw bytes in one go (pipelining, odd syntax) and collects `count` replies, each as
 * `code text` (multi-line replies joined), after the greeting.
 */
export async function rawExchange(port: number, input: string | Buffer, count: number, timeout = 10000): Promise<string[]> {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const replies: string[] = [];
    let buffer = '';
    let pending: string[] = [];
    let greeted = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`timed out after ${replies.length} replies: ${JSON.stringify(replies)}`));
    }, timeout);
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(replies);
    });
    socket.on('data', (d: Buffer) => {
      buffer += d.toString('utf8');
      let eol: number;
      while ((eol = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        pending.push(line.slice(4));
        if (line[3] === '-') continue;
        const reply = `${line.slice(0, 3)} ${pending.join(' ')}`;
        pending = [];
        if (!greeted) {
          greeted = true;
          socket.write(input);
          continue;
        }
        replies.push(reply);
        if (replies.length === count) {
          clearTimeout(timer);
          socket.destroy();
          resolve(replies);
        }
      }
    });
  });
}

/**
 * A raw client in the middle of DATA: greeting, EHLO, MAIL, RCPT and DATA sent, resolved once the 354
 * is in, with the socket left open for the test to write (part of) a message and vanish.
 */
export function inData(port: number, mail = 'MAIL FROM:<alice@internal.test>', rcpt = 'RCPT TO:<bob@outside.test>'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', reject);
    // a server that says 421 and closes, or closes without a word, is an answer too (a promise left
    // pending here hung a test that restarts the gateway)
    socket.once('close', () => reject(new Error('connection closed before 354')));
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('no 354 within 10 s'));
    });
    let replies = 0;
    let buffer = '';
    const onData = (d: Buffer) => {
      buffer += d.toString('latin1');
      let eol;
      while ((eol = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        if (!/^\d{3} /.test(line)) continue;
        replies++;
        if (replies === 1 && !/^220 /.test(line)) {
          socket.destroy();
          reject(new Error(line));
          return;
        }
        if (replies === 1) socket.write(`EHLO c\r\n${mail}\r\n${rcpt}\r\nDATA\r\n`);
        if (/^354 /.test(line)) {
          socket.off('data', onData);
          socket.off('error', reject);
          socket.setTimeout(0);
          resolve(socket);
        } else if (replies > 1 && !/^2/.test(line)) {
          socket.destroy();
          reject(new Error(line));
        }
      }
    };
    socket.on('data', onData);
  });
}

/** Resolves once an SMTP server greets on `port` (a process just started); throws after ~10 s. */
export async function waitForSmtp(port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      const c = await SmtpClient.connect({ host: '127.0.0.1', port, connectTimeout: 500, commandTimeout: 2000 });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on ${port}`);
}
