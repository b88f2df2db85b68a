// MAIL and RCPT lines are forwarded as they came: one the downstream could read differently is refused.
import assert from 'node:assert/strict';
import { commandLineFault } from '../../src/gateway/command-line.js';
import { faultyLines } from '../fixtures/command-lines.js';

describe('MAIL and RCPT line syntax', function () {
  it('finds every control character and every byte sequence that is not UTF-8', () => {
    for (const verb of ['MAIL FROM', 'RCPT TO'] as const) {
      const lines = faultyLines(verb, 'bob@corp.example');
      assert.ok(lines.length > 60);
      for (const { name, bytes } of lines) assert.ok(commandLineFault(bytes), `${verb}: ${name}`);
    }
  });

  it('passes ordinary lines: parameters, UTF-8 addresses, spaces', () => {
    for (const line of [
      'MAIL FROM:<> SIZE=100 BODY=8BITMIME SMTPUTF8',
      'RCPT TO:<j\u00f6rg@corp.example> NOTIFY=NEVER',
      'rcpt to: <x@corp.example>',
      'MAIL FROM:<"a b"@x.example>',
    ]) {
      assert.equal(commandLineFault(Buffer.from(line)), undefined, line);
    }
  });
});
