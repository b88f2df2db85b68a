// The smtp-server patches apply to the installed version, and would fail loudly on one they do not fit.
import assert from 'node:assert/strict';
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { applySmtpServerPatches, expectSource, SmtpServerPatchError } from '../../src/gateway/smtp-server-patches.js';
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

describe('xtext', function () {
  it('round-trips what XFORWARD carries', () => {
    for (const value of ['Some Windows Box', 'a+b=c', 'ünïcode', '[UNAVAILABLE]']) {
      assert.equal(decodeXtext(encodeXtext(value)), Buffer.from(value, 'utf8').toString('latin1'));
    }
    assert.equal(encodeXtext('a b+c=d'), 'a+20b+2Bc+3Dd');
  });
});
