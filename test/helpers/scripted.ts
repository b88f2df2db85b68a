// A scripted downstream for failure paths smtp-server cannot play: refusing the DATA command itself,
// never answering, or hanging up. Replies per command come from the script; DATA content is read
// up to CRLF.CRLF and discarded.
import net from 'node:net';

export interface Script {
  greeting?: string | null;
  /** reply per command verb (EHLO, MAIL, RCPT, DATA, DOT, RSET, QUIT); null: never answer */
  replies?: Partial<Record<string, string | null>>;
  /** milliseconds to wait before answering a verb */
  delays?: Partial<Record<string, number>>;
}

export interface ScriptedServer {
  port: number;
  commands: string[];
  sawDot: boolean;
  close(): Promise<void>;
}

const DEFAULTS: Record<string, string> = {
  EHLO: '250-scripted\r\n250 PIPELINING',
  MAIL: '250 2.1.0 Ok',
  RCPT: '250 2.1.5 Ok',
  DATA: '354 go ahead',
  DOT: '250 2.0.0 Ok',
  RSET: '250 2.0.0 Ok',
  QUIT: '221 2.0.0 Bye',
  XFORWARD: '250 2.0.0 Ok',
};

export async function startScripted(script: Script): Promise<ScriptedServer> {
  const state: ScriptedServer = { port: 0, commands: [], sawDot: false, close: async () => undefined };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let inData = false;
    const reply = (verb: string) => {
      const text = script.replies && verb in script.replies ? script.replies[verb] : (DEFAULTS[verb] ?? '502 5.5.2 unknown');
      if (text === null || text === undefined) return;
      const send = () => {
        if (socket.destroyed) return;
        socket.write(text + '\r\n');
        if (verb === 'QUIT' || /^421/.test(text)) socket.end();
      };
      const delay = script.delays?.[verb];
      if (delay) setTimeout(send, delay);
      else send();
    };
    if (script.greeting !== null) socket.write((script.greeting ?? '220 scripted ESMTP') + '\r\n');
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          buffer = buffer.slice(end + 5);
          inData = false;
          state.sawDot = true;
          reply('DOT');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol === -1) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        state.commands.push(line);
        const verb = line.split(/[ :]/)[0].toUpperCase();
        reply(verb);
        if (verb === 'DATA' && (script.replies?.DATA ?? DEFAULTS.DATA).startsWith('354')) inData = true;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return state;
}
