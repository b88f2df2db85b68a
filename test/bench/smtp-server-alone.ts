// The ceiling of the relay benchmark: smtp-server configured as the gateway configures it (the same
// patches, no greeting delay), accepting every message and discarding it: no relay leg, no
// inspection, no logging. No gateway built on smtp-server can be faster than this on the same machine.
//
//   node dist/test/bench/smtp-server-alone.js PORT [IDLE_TIMEOUT_SECONDS]
//
// IDLE_TIMEOUT_SECONDS: how long a client may be silent (smtp-server's default: 60). The memory
// benchmark gives 300, Postfix's smtpd_timeout, the MTA this sink stands for there.
import { SMTPServer } from 'smtp-server';
import { applySmtpServerPatches } from '../../src/gateway/smtp-server-patches.js';

const port = Number(process.argv[2]);
const idleSeconds = process.argv[3] === undefined ? 60 : Number(process.argv[3]);
if (!Number.isInteger(port) || port <= 0 || !(idleSeconds > 0)) {
  console.error('usage: smtp-server-alone.js PORT [IDLE_TIMEOUT_SECONDS]');
  process.exit(2);
}
applySmtpServerPatches();
const server = new SMTPServer({
  name: 'smtp-server-alone',
  disabledCommands: ['AUTH', 'STARTTLS'],
  authOptional: true,
  disableReverseLookup: true,
  hideENHANCEDSTATUSCODES: false,
  logger: false,
  socketTimeout: idleSeconds * 1000,
  onData(stream, _session, callback) {
    stream.on('end', () => callback());
    stream.resume();
  },
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
