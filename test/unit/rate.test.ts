// Sender rates without a network: which messages are outbound, the policy section, the verdict a
// fired threshold gives, the fail modes (with a store that fails), attachment typing by content.
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { Cluster, Redis } from 'ioredis';
import { parsePolicy, PolicyError } from '../../src/policy/load.js';
import type { Policy } from '../../src/policy/schema.js';
import { parseMessageParts } from '../../src/inspect/attachments.js';
import { parseHeaderBlock } from '../../src/message/parsed.js';
import type { Kind } from '../../src/inspect/office/sniff.js';
import { hasOfficeAttachment } from '../../src/rate/attachment-kinds.js';
import { RateLimiter, RateRefusal, rateStoreFor } from '../../src/rate/limiter.js';
import { classify, headerFromAddress, mailSubjects } from '../../src/rate/outbound.js';
import { planFor } from '../../src/rate/plan.js';
import type { RateStore } from '../../src/rate/store.js';
import { createRedisClient, type StateBackend } from '../../src/state/index.js';
import type { Verdict } from '../../src/verdict.js';
import { buildDocx, buildZip } from '../fixtures/office/container-builders.js';
import { emailWith } from '../fixtures/office/emails.js';
import { capturedLogger } from '../helpers/logs.js';

const policy = (overrides: string[] = []): Policy => parsePolicy('', 'p.yaml', ['network.internalDomains=[corp.test]', ...overrides]).policy;
const relay: Verdict = { action: 'relay', score: 0, findings: [], reason: 'no rule matched' };

function capture() {
  const { log, logs } = capturedLogger('debug');
  return { logs, log };
}

const message = (p: Policy, from = 'alice@corp.test', header = 'Alice <alice@corp.test>', rcpts = ['x@outside.test']) => ({
  id: 'TESTID',
  policy: p,
  client: '127.0.0.1',
  mailFrom: from,
  rcptTo: rcpts,
  headers: parseHeaderBlock(`From: ${header}\r\nSubject: s`),
  attachmentKinds: [] as Kind[],
});

describe('sender rates: outbound classification', function () {
  it('outbound = internal client AND (envelope sender OR header From) in an internal domain', () => {
    const p = policy();
    assert.ok(classify(p, '127.0.0.1', 'alice@corp.test', ['x@outside.test'], undefined));
    assert.ok(classify(p, '127.0.0.1', 'bounce@outside.test', ['x@outside.test'], 'Alice <alice@corp.test>'), 'header From internal');
    assert.equal(classify(p, '127.0.0.1', 'm@outside.test', ['x@corp.test'], 'm@outside.test'), undefined, 'external sender');
    assert.equal(classify(p, '192.0.2.7', 'alice@corp.test', ['x@corp.test'], undefined), undefined, 'external client');
    assert.ok(classify(p, '::ffff:127.0.0.1', 'alice@corp.test', [], undefined), 'IPv4-mapped');
  });

  it('subjects per rate.keys; header From counted only when internal and different; recipients split', () => {
    const p = policy(['rate.keys=[envelopeSender, headerFrom, clientIp]']);
    const o = classify(p, '127.0.0.1', 'Alice@Corp.test', ['X@outside.test', 'x@outside.test', 'y@corp.test'], '"Boss" <boss@corp.test>')!;
    assert.deepEqual(o.subjects, ['sender:alice@corp.test', 'from:boss@corp.test', 'ip:127.0.0.1']);
    assert.deepEqual(o.externalRecipients, ['x@outside.test']);
    assert.equal(o.fromMismatch, true);
    const same = classify(p, '127.0.0.1', 'alice@corp.test', [], 'alice@CORP.test')!;
    assert.deepEqual(same.subjects, ['sender:alice@corp.test', 'ip:127.0.0.1']);
    assert.equal(same.fromMismatch, false);
    assert.deepEqual(mailSubjects(p, '127.0.0.1', 'alice@corp.test'), ['sender:alice@corp.test', 'ip:127.0.0.1']);
    assert.equal(mailSubjects(p, '127.0.0.1', 'x@outside.test'), undefined);
  });

  it('reads the From address out of display names and groups', () => {
    assert.equal(headerFromAddress('"Smith, J" <J.Smith@Corp.test>'), 'j.smith@corp.test');
    assert.equal(headerFromAddress('"a@evil.test" <real@corp.test>'), 'real@corp.test');
    assert.equal(headerFromAddress('plain@corp.test (Plain)'), 'plain@corp.test');
    assert.equal(headerFromAddress('undisclosed'), undefined);
  });
});

describe('sender rates: policy section', function () {
  it('compiles thresholds: defer and suspend (with suspend.action defer) block, suspend suspends', () => {
    const plan = planFor(
      policy([
        'rate.windows=[10m, 1h]',
        'rate.thresholds=[{metric: office, window: 1h, limit: 20, action: defer}, {metric: messages, window: 10m, limit: 5, action: suspend}, {metric: macro, window: 1h, limit: 1, action: alert}]',
      ]).rate,
    );
    assert.deepEqual(
      plan.thresholds.map((t) => [t.symbol, t.window, t.blocks, t.suspends]),
      [
        ['RATE_OFFICE_ATTACHMENTS', 1, true, false],
        ['RATE_MESSAGES', 0, true, true],
        ['RATE_MACRO_FINDINGS', 1, false, false],
      ],
    );
    assert.equal(
      planFor(policy(['rate.suspend.action=quarantine', 'rate.thresholds=[{metric: messages, window: 1h, limit: 5, action: suspend}]']).rate).thresholds[0]
        .blocks,
      false,
    );
  });

  it('a threshold must name one of rate.windows, with file:line:column', () => {
    try {
      parsePolicy('rate:\n  windows: [1h]\n  thresholds:\n    - { metric: office, window: 2h, limit: 1, action: tag }\n', 'p.yaml');
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof PolicyError);
      assert.deepEqual(
        err.problems.map((p) => `${p.key}: ${p.message}`),
        ['rate.thresholds.0.window: not one of rate.windows'],
      );
    }
  });

  it('Redis Sentinel and Cluster from the state section (one factory)', () => {
    const cluster = createRedisClient({ backend: 'redis', url: 'redis://:pw@x', failMode: 'open', cluster: ['10.0.0.1:7000', '10.0.0.2:7000'] });
    assert.ok(cluster instanceof Cluster);
    cluster.disconnect();
    const sentinel = createRedisClient({ backend: 'redis', url: 'redis://:pw@x/2', failMode: 'open', sentinels: ['10.0.0.1:26379'], sentinelName: 'mail' });
    assert.ok(sentinel instanceof Redis);
    assert.equal(sentinel.options.name, 'mail');
    assert.equal(sentinel.options.db, 2);
    assert.equal(sentinel.options.commandTimeout, 500);
    sentinel.disconnect();
    assert.throws(
      () => parsePolicy('state: { backend: redis, url: "redis://x", sentinels: ["a:1"], cluster: ["b:2"] }\n', 'p.yaml'),
      /either sentinels or cluster/,
    );
  });
});

describe('sender rates: verdicts and fail modes (in-memory store)', function () {
  it('alert adds a finding and a log line but keeps the action; tag/quarantine/defer/suspend act', async () => {
    for (const [action, expected] of [
      ['alert', 'relay'],
      ['tag', 'tag'],
      ['quarantine', 'quarantine'],
      ['defer', 'defer'],
      ['suspend', 'defer'],
    ] as const) {
      const { logs, log } = capture();
      const limiter = new RateLimiter({ kind: 'memory' }, log);
      const p = policy([`rate.thresholds=[{metric: messages, window: 1h, limit: 1, action: ${action}}]`]);
      assert.equal((await limiter.afterVerdict(message(p), relay)).action, 'relay');
      const v = await limiter.afterVerdict(message(p), relay);
      assert.equal(v.action, expected, action);
      assert.deepEqual(
        v.findings.map((f) => f.symbol),
        action === 'suspend' ? ['RATE_MESSAGES', 'SENDER_SUSPENDED'] : ['RATE_MESSAGES'],
      );
      assert.match(v.findings[0].detail!, /^sender:alice@corp\.test: messages 2 > 1 in 1h$/);
      assert.equal(logs.filter((l) => l.event === 'rate_alert').length, 1);
      if (action === 'suspend') assert.equal(logs.filter((l) => l.event === 'sender_suspended').length, 1);
    }
  });

  it('verdict.symbols can override a rate action', async () => {
    const limiter = new RateLimiter({ kind: 'memory' }, capture().log);
    const p = policy(['rate.thresholds=[{metric: messages, window: 1h, limit: 0, action: defer}]', 'verdict.symbols={RATE_MESSAGES: {action: tag}}']);
    assert.equal((await limiter.afterVerdict(message(p), relay)).action, 'tag');
  });

  it('a deferred or rejected message is neither counted nor checked', async () => {
    const state: StateBackend = { kind: 'memory' };
    const limiter = new RateLimiter(state, capture().log);
    const p = policy(['rate.thresholds=[{metric: messages, window: 1h, limit: 0, action: tag}]']);
    const deferred: Verdict = { ...relay, action: 'defer' };
    assert.equal(await limiter.afterVerdict(message(p), deferred), deferred);
    const [peek] = await rateStoreFor(state).peek(['sender:alice@corp.test'], planFor(p.rate));
    assert.equal(peek.counts[0][0], 0);
  });

  it('state unreachable: open relays and logs loudly; closed answers 451 4.3.0 at MAIL and DATA', async () => {
    const failing = new Proxy({} as RateStore, {
      get: (_t, prop) => (prop === 'kind' ? 'redis' : () => Promise.reject(new Error('Connection is closed.'))),
    });
    for (const failMode of ['open', 'closed'] as const) {
      const { logs, log } = capture();
      const limiter = new RateLimiter({ kind: 'memory' }, log);
      Object.assign(limiter, { store: failing, state: { kind: 'redis', failMode } });
      const p = policy();
      const mail = await limiter.checkMail(p, 'ID1', '127.0.0.1', 'alice@corp.test');
      const data = await limiter.afterVerdict(message(p), relay).catch((e: unknown) => e);
      if (failMode === 'open') {
        assert.equal(mail, undefined);
        assert.equal((data as Verdict).action, 'relay');
      } else {
        assert.ok(mail instanceof RateRefusal && data instanceof RateRefusal);
        assert.equal(`${mail.responseCode} ${mail.message}`, '451 4.3.0 Sender rate state unavailable, try again later [ID1]');
        assert.equal(data.responseCode, 451);
      }
      assert.equal(logs.filter((l) => l.event === 'rate_state_unavailable' && l.level === 50).length, 2);
      // inbound mail never touches the state
      assert.equal(await limiter.checkMail(p, 'ID2', '127.0.0.1', 'x@outside.test'), undefined);
    }
  });

  it('alerts go to the webhook as JSON', async () => {
    const got: Record<string, unknown>[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => (got.push(JSON.parse(body) as Record<string, unknown>), res.end('ok')));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (server.address() as { port: number }).port;
      const limiter = new RateLimiter({ kind: 'memory' }, capture().log);
      const p = policy(['rate.thresholds=[{metric: messages, window: 1h, limit: 0, action: alert}]', `rate.alert.webhook="http://127.0.0.1:${port}/hook"`]);
      await limiter.afterVerdict(message(p), relay);
      for (let i = 0; i < 50 && !got.length; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(got[0].symbol, 'RATE_MESSAGES');
      assert.equal(got[0].subject, 'sender:alice@corp.test');
      assert.equal(got[0].action, 'alert');
    } finally {
      server.close();
    }
  });
});

describe('sender rates: attachment kinds by content', function () {
  it('a Word document under any name counts as Office; a text attachment does not', async () => {
    const docx = await buildDocx();
    const disguised = await emailWith([{ filename: 'photo.jpg', content: docx, contentType: 'image/jpeg' }]);
    const kinds = async (eml: Buffer) => (await parseMessageParts(Readable.from([eml]), policy())).attachmentKinds;
    assert.ok(hasOfficeAttachment(await kinds(disguised)));
    const zip = await emailWith([{ filename: 'a.zip', content: await buildZip([{ name: 'x.txt', data: Buffer.from('hi') }]) }]);
    assert.ok(hasOfficeAttachment(await kinds(zip)), 'archives count too');
    const txt = await emailWith([{ filename: 'invoice.docx', content: Buffer.from('just text'), contentType: 'text/plain' }]);
    assert.equal(hasOfficeAttachment(await kinds(txt)), false);
  });
});
