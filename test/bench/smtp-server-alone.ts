// The ceiling of the relay benchmark: smtp-server configured as the gateway configures it (the same
// patches, no greeting delay), accepting every message and discarding it: no relay leg, no
// inspection, no logging. No gateway built on smtp-server can be faster than this on the same machine.
//
//   node dist/test/bench/smtp-server-alone.js PORT
import { SMTPServer } from 'smtp-server';
import { applySmtpServerPatches } from '../../src/gateway/smtp-server-patches.js';

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: smtp-server-alone.js PORT');
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
  onData(stream, _session, callback) {
    stream.on('end', () => callback());
    stream.resume();
  },
});
server.listen(port, '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
