// The one logger: pino, one JSON object per line, so an admin can grep by id, symbol or client.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level = 'info', destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { service: 'mailmoat' }, timestamp: pino.stdTimeFunctions.isoTime }, destination as pino.DestinationStream);
}
