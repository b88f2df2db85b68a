// The smtp-server patches apply to the installed version, and would fail loudly on one they do not fit.
import assert from 'node:assert/strict';
import type net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { applySmtpServerPatches, expectSource, observeConnections, SmtpServerPatchError } from '../../src/gateway/smtp-server-patches.js';
import { rawExchange } from '../helpers/client.js';
import { decodeXtext, encodeXtext } from '../../src/relay/xtext.js';

describe('smtp-server patches', function () {
  it('apply to the installed smtp-server', () => {
    assert.doesNotThrow(() => applySmtpServerPatches());
    const init = (SMTPConnection.prototype as unknown as { init: () => void }).init.toString();
    assert.ok(!init.includes('100'), 'the fixed 100 ms greeting delay is gone');
  });

  it('refuse code that is not what they were written against', () => {
    const changed = function init() {
      // an upgraded smtp-server that moved things around
      return 42;
    };
    assert.throws(() => expectSource('init', changed, 'init() { this._setListeners(); }'), SmtpServerPatchError);
    assert.throws(() => expectSource('send', () => undefined, /_getEnhancedStatusCode\(code, context\)/), /smtp-server was upgraded/);
  });
});

describe('smtp-server patches: the connection observer', function () {
  it('is told of each command line and each reply code, and a command it refuses is not handled', async () => {
    const server = new SMTPServer({ disabledCommands: ['AUTH', 'STARTTLS'], authOptional: true, disableReverseLookup: true, logger: false });
    const seen: string[] = [];
    observeConnections(server, {
      command: (connection, line) => {
        seen.push(`C ${line.toString()}`);
        if (!line.toString().startsWith('VRFY')) return true;
        connection.send(421, '4.7.0 Not that one'); // a 421 closes the connection
        return false;
      },
      reply: (_connection, code) => void seen.push(`S ${code}`),
      full: () => false,
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.server.address() as net.AddressInfo;
      const replies = await rawExchange(port, 'NOOP\r\nRCPT TO:<x@y>\r\nVRFY bob\r\nHELP\r\n', 3);
      assert.deepEqual(
        replies.map((r) => r.slice(0, 3)),
        ['250', '503', '421'],
      );
      // VRFY was never handled, and nothing after it
      assert.deepEqual(seen, ['S 220', 'C NOOP', 'S 250', 'C RCPT TO:<x@y>', 'S 503', 'C VRFY bob', 'S 421']);
    } finally {
      server.close();
    }
  });

  it('refuses an smtp-server whose idle-timeout state or 421 handling changed', () => {
    const onTimeout = function _onTimeout() {
      return 'the client is idle';
    };
    assert.throws(
      () => expectSource('_onTimeout', onTimeout, /this\._handlerPending \|\| \(this\._dataStream && this\._parser && !this\._parser\._dataMode\)/),
      SmtpServerPatchError,
    );
  });
});

describe('xtext', function () {
  it('round-trips what XFORWARD carries', () => {
    for (const value of ['Some Windows Box', 'a+b=c', 'ünïcode', '[UNAVAILABLE]']) {
      assert.equal(decodeXtext(encodeXtext(value)), Buffer.from(value, 'utf8').toString('latin1'));
    }
    assert.equal(encodeXtext('a b+c=d'), 'a+20b+2Bc+3Dd');
  });
});
