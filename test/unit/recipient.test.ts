// Relay control judges the RCPT line the downstream will read, byte for byte: every address form a
// downstream may route elsewhere is refused from outside clients, whatever smtp-server made of it.
import assert from 'node:assert/strict';
import { judgeRecipient, postmasterAddress } from '../../src/gateway/recipient.js';
import { parsePath } from '../../src/gateway/smtp-path.js';
import { parsePolicy } from '../../src/policy/load.js';
import { isInternalAddress } from '../../src/policy/network.js';
import { DOMAINS, plainInternalRecipients, POSTMASTER_FORMS, relayForms } from '../fixtures/relay-forms.js';
import { smtpServerReading } from '../helpers/smtp-server-reading.js';

const OUTSIDE_CLIENT = '203.0.113.9';
const INSIDE_CLIENT = '10.1.2.3';

function policyWith(...overrides: string[]) {
  return parsePolicy('', 'p.yaml', ['network.internalNetworks=[10.0.0.0/8]', ...overrides]).policy;
}
const policy = policyWith(`network.internalDomains=[${DOMAINS.internal}, ${DOMAINS.lettered}, "*.branch.example"]`);
const judge = (client: string, path: string, params = '') => judgeRecipient(policy, client, `RCPT TO:${path}${params}`, smtpServerReading(path) ?? path);

describe('relay control: address forms', function () {
  const forms = relayForms();

  it(`refuses every one of ${forms.length} forms from an outside client with 554 5.7.1`, () => {
    assert.ok(forms.length > 100);
    for (const form of forms) {
      const decision = judge(OUTSIDE_CLIENT, form.path);
      assert.equal(decision.accepted, false, `${form.family}: ${form.path}`);
      if (!decision.accepted) {
        assert.equal(decision.code, 554, form.path);
        assert.match(decision.text, /^5\.7\.1 <.*>: Relay access denied/, form.path);
      }
    }
  });

  it('catches the forms smtp-server reads as an internal address (the ones the old check let through)', () => {
    const slipping = forms.filter((f) => {
      const read = smtpServerReading(f.path);
      return read !== undefined && isInternalAddress(policy, read);
    });
    // the families that hide behind smtp-server's reading, each represented
    const families = new Set(slipping.map((f) => f.family));
    for (const family of [
      'routing local part',
      'routing local part, quoted',
      'routing local part, with a comment',
      'backslash escape in a quoted local part',
      'Unicode form of a routing character',
      'source route',
      'Unicode full stop in the domain',
      'Unicode case form of a letter',
      'a second path after the first',
    ]) {
      assert.ok(families.has(family), `${family} is among the forms smtp-server reads as internal`);
    }
    for (const form of slipping) assert.equal(judge(OUTSIDE_CLIENT, form.path).accepted, false, form.path);
  });

  it('names the form in the reply and the log', () => {
    const cases: [string, RegExp][] = [
      ['<x%evil.example@corp.example>', /percent hack \(%\) in the local part$/],
      ['<evil.example!x@corp.example>', /bang path \(!\) in the local part$/],
      ['<"x%evil.example"@corp.example>', /percent hack \(%\) in the local part$/],
      ['<"x@evil.example"@corp.example>', /an @ in the local part$/],
      ['<"x\\@evil.example"@corp.example>', /backslash in the local part$/],
      ['<@hop1,@hop2:x@corp.example>', /source route$/],
      ['<x\uff05evil.example@corp.example>', /percent hack \(%\) in the local part \(after Unicode compatibility normalisation\)$/],
      ['<x@corp\u3002example>', /Unicode full stop U\+3002 in the domain$/],
      ['<x@corp\uff0eexample>', /Unicode full stop U\+FF0E in the domain$/],
      ['<x@corp\uff61example>', /Unicode full stop U\+FF61 in the domain$/],
      ['<x@corp.example.>', /trailing dot in the domain$/],
      ['<x@[127.0.0.1]>', /address literal$/],
      ['<x@\u212aiosk.example>', /non-ASCII domain/],
      ['<x(c)@corp.example>', /'\(' in the local part$/],
      ['<x%evil.example>', /percent hack/],
      ['<bob@corp.example> <x%evil.example@corp.example>', /a parameter that is not RFC 5321 syntax$/],
      ['<x@evil.example>', /Relay access denied$/],
    ];
    for (const [path, reason] of cases) {
      const decision = judge(OUTSIDE_CLIENT, path);
      assert.ok(!decision.accepted && reason.test(decision.text), `${path}: ${JSON.stringify(decision)}`);
    }
  });

  it('judges the line, not the address smtp-server hands over', () => {
    const decision = judgeRecipient(policy, OUTSIDE_CLIENT, 'RCPT TO:<x%evil.example@corp.example>', 'bob@corp.example');
    assert.equal(decision.accepted, false);
  });

  it('accepts plain internal recipients from outside, the line unchanged', () => {
    for (const path of [...plainInternalRecipients(), '<carol@hq.branch.example>']) {
      const decision = judge(OUTSIDE_CLIENT, path, ' NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x%2By@corp.example');
      assert.ok(decision.accepted, `${path}: ${JSON.stringify(decision)}`);
      assert.equal(decision.line, `RCPT TO:${path} NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x%2By@corp.example`);
    }
    // a wildcard covers subdomains, not the domain's look-alikes
    assert.equal(judge(OUTSIDE_CLIENT, '<x@branch.example.evil.example>').accepted, false);
  });

  it('lets an internal client send every form, forwarded as written', () => {
    for (const form of forms) {
      const decision = judge(INSIDE_CLIENT, form.path, ' NOTIFY=NEVER');
      assert.ok(decision.accepted, form.path);
      assert.equal(decision.line, `RCPT TO:${form.path} NOTIFY=NEVER`);
    }
  });
});

describe('relay control: <postmaster>', function () {
  it('is accepted from any client in any case and goes to postmaster at the first internal domain, parameters kept', () => {
    for (const client of [OUTSIDE_CLIENT, INSIDE_CLIENT]) {
      for (const path of POSTMASTER_FORMS) {
        const decision = judge(client, path, ' NOTIFY=NEVER');
        assert.deepEqual(decision, { accepted: true, line: 'RCPT TO:<postmaster@corp.example> NOTIFY=NEVER', address: 'postmaster@corp.example' });
      }
    }
  });

  it('goes to network.postmaster when the policy names one', () => {
    const named = policyWith('network.internalDomains=[corp.example]', 'network.postmaster=hostmaster@mail.corp.example');
    const decision = judgeRecipient(named, OUTSIDE_CLIENT, 'rcpt to:<Postmaster>', 'Postmaster');
    assert.deepEqual(decision, { accepted: true, line: 'rcpt to:<hostmaster@mail.corp.example>', address: 'hostmaster@mail.corp.example' });
  });

  it('skips wildcard domains; with no internal domain at all it goes downstream as sent', () => {
    assert.equal(postmasterAddress(policyWith('network.internalDomains=["*.corp.example", other.example]')), 'postmaster@other.example');
    const none = policyWith('network.internalDomains=[]');
    assert.equal(postmasterAddress(none), undefined);
    assert.deepEqual(judgeRecipient(none, OUTSIDE_CLIENT, 'RCPT TO:<postmaster>', 'postmaster'), {
      accepted: true,
      line: 'RCPT TO:<postmaster>',
      address: 'postmaster',
    });
  });

  it('only the bare word: routed or decorated postmasters are judged like any address', () => {
    for (const path of [
      '<postmaster%evil.example>',
      '<@hop:postmaster>',
      '<evil.example!postmaster>',
      '<postmaster@evil.example>',
      '<postmaster> <x%evil.example@corp.example>',
    ]) {
      assert.equal(judge(OUTSIDE_CLIENT, path).accepted, false, path);
    }
  });

  it('network.postmaster must be a plain address', () => {
    for (const bad of ['postmaster', 'x%y@corp.example', 'a!b@corp.example', 'postmaster@corp.example.', '"a b"@corp.example', 'postmaster@[127.0.0.1]']) {
      assert.throws(() => policyWith(`network.postmaster=${JSON.stringify(bad)}`), /postmaster/, bad);
    }
  });
});

describe('RCPT path syntax', function () {
  it('splits a path at the right @ and keeps the parameters as sent', () => {
    const parsed = parsePath('RCPT TO:<"a@b\\"c"@corp.example> NOTIFY=NEVER');
    assert.ok('path' in parsed);
    assert.equal(parsed.path.localPart, '"a@b\\"c"');
    assert.equal(parsed.path.domain, 'corp.example');
    assert.equal(parsed.path.params, ' NOTIFY=NEVER');
    for (const bad of [
      'RCPT TO:x@corp.example',
      'RCPT TO:<x@corp.example',
      'RCPT TO:<"x@corp.example>',
      'RCPT TO:<x@corp.example>junk',
      'RCPT TO:<@hop,x@corp.example>',
    ]) {
      assert.ok('error' in parsePath(bad), bad);
    }
  });
});
