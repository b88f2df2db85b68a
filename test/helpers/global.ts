// mocha global fixture: make sure a Redis server is reachable for the tests. Uses MAILMOAT_TEST_REDIS_URL
// or the usual 127.0.0.1:6379 when something answers there; otherwise starts `redis-server` on a free
// port for the run and stops it afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

let started: ChildProcess | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const candidate = process.env.MAILMOAT_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  if (await pings(candidate)) {
    process.env.MAILMOAT_TEST_REDIS_URL = candidate;
    return;
  }
  const port = await freePort();
  started = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const failed = new Promise<never>((_r, reject) =>
    started!.once('error', (err) => reject(new Error(`Redis is not reachable at ${candidate} and redis-server could not be started: ${err.message}`))),
  );
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    if (await Promise.race([pings(url), failed])) {
      process.env.MAILMOAT_TEST_REDIS_URL = url;
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server started on port ${port} but does not answer PING`);
}

export async function mochaGlobalTeardown(): Promise<void> {
  started?.kill();
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A raw RESP PING, so the check needs no client library. */
function pings(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}
