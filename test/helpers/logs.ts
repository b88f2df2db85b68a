// A real logger (the project's pino) whose JSON lines land in an array the test can read.
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/observe/log.js';

export function capturedLogger(level = 'debug'): { log: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger(level, destination), logs };
}
