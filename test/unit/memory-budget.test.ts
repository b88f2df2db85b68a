// The process's memory budget on its own (src/message/memory-budget.ts), and the spool and the
// admission of a message that spend from it: who waits, in which order, and that nothing is lost
// or leaked when a waiter goes away.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { withinMemoryBudget } from '../../src/message/admission.js';
import { MemoryBudget, type Lease } from '../../src/message/memory-budget.js';
import { Spool } from '../../src/message/spool.js';
import { loadPolicy } from '../../src/policy/load.js';
import { defaultPolicyFile } from '../helpers/gateway.js';

/** Lets every promise callback that is ready run. */
const settle = () => new Promise((r) => setImmediate(r));

/** Requests that record the order in which they were granted; `pending` holds each one's promise. */
function recorder(budget: MemoryBudget) {
  const granted: string[] = [];
  const leases = new Map<string, Lease>();
  const pending = new Map<string, Promise<Lease>>();
  const request = (name: string, bytes: number, signal?: AbortSignal): void => {
    const lease = budget.acquire(bytes, signal).then((lease) => {
      granted.push(name);
      leases.set(name, lease);
      return lease;
    });
    lease.catch(() => undefined); // a test that aborts a request asserts on its rejection through `pending`
    pending.set(name, lease);
  };
  return { granted, leases, pending, request };
}

describe('memory budget', () => {
  it('grants at once while there is room; past it, requests wait and are granted first come, first served', async () => {
    const budget = new MemoryBudget(100);
    const { granted, leases, request } = recorder(budget);
    request('a', 60);
    await settle();
    request('b', 50);
    request('c', 10); // would fit now, but b came first: c does not pass it
    request('d', 30);
    await settle();
    assert.deepEqual(granted, ['a']);
    assert.equal(budget.waiters, 3);
    leases.get('a')!.release();
    await settle();
    assert.deepEqual(granted, ['a', 'b', 'c', 'd']);
    assert.equal(budget.inUse, 90);
    for (const lease of leases.values()) lease.release();
    assert.equal(budget.inUse, 0);
  });

  it('a request larger than the whole budget runs alone, and nothing passes it while it waits', async () => {
    const budget = new MemoryBudget(100);
    const { granted, leases, request } = recorder(budget);
    request('small', 30);
    await settle();
    request('huge', 500);
    request('after', 1);
    await settle();
    assert.deepEqual(granted, ['small']);
    leases.get('small')!.release();
    await settle();
    assert.deepEqual(granted, ['small', 'huge']);
    assert.equal(budget.inUse, 100, 'the whole budget, no more');
    assert.equal(budget.take(1), false, 'no spool keeps bytes in memory beside it');
    leases.get('huge')!.release();
    await settle();
    assert.deepEqual(granted, ['small', 'huge', 'after']);
  });

  it('a waiter whose signal aborts leaves the queue having taken nothing; the one behind it goes on', async () => {
    const budget = new MemoryBudget(100);
    const { granted, leases, pending, request } = recorder(budget);
    request('a', 80);
    await settle();
    const gone = new AbortController();
    request('gone', 50, gone.signal);
    request('next', 20); // fits beside a, but waits behind 'gone'
    await settle();
    assert.deepEqual(granted, ['a']);
    gone.abort('client_gone');
    await assert.rejects(pending.get('gone')!, (reason) => reason === 'client_gone');
    await settle();
    assert.deepEqual(granted, ['a', 'next']);
    assert.equal(budget.inUse, 100);
    assert.equal(budget.waiters, 0);
    leases.get('a')!.release();
    leases.get('next')!.release();
    assert.equal(budget.inUse, 0, 'nothing leaked');
  });

  it('a signal aborted before the request: rejected at once, nothing taken', async () => {
    const budget = new MemoryBudget(100);
    const gone = new AbortController();
    gone.abort('client_gone');
    await assert.rejects(budget.acquire(10, gone.signal), (reason) => reason === 'client_gone');
    assert.equal(budget.inUse, 0);
    assert.equal(budget.waiters, 0);
  });

  it('a lease released twice gives its bytes back once', async () => {
    const budget = new MemoryBudget(100);
    const a = await budget.acquire(40);
    const b = await budget.acquire(40);
    a.release();
    a.release();
    assert.equal(budget.inUse, 40);
    b.release();
    assert.equal(budget.inUse, 0);
  });

  it('take() never waits: refused past the budget, and while anyone waits (the spool writes to its file instead)', async () => {
    const budget = new MemoryBudget(100);
    assert.equal(budget.take(70), true);
    assert.equal(budget.take(40), false);
    const waiting = budget.acquire(50);
    await settle();
    assert.equal(budget.take(10), false, 'room for 10, but a message waits: it goes first');
    budget.give(70);
    (await waiting).release();
    assert.equal(budget.take(10), true);
  });

  it('a larger budget (policy reload) grants the waiters that now fit', async () => {
    const budget = new MemoryBudget(100);
    const { granted, request } = recorder(budget);
    request('a', 100);
    request('b', 100);
    await settle();
    budget.capacity = 200;
    await settle();
    assert.deepEqual(granted, ['a', 'b']);
  });
});

describe('the spool and the memory budget', () => {
  const dir = () => mkdtempSync(path.join(tmpdir(), 'mailmoat-budget-spool-'));
  const message = (size: number) => Buffer.alloc(size, 'm'.repeat(78) + '\r\n');

  async function spooled(budget: MemoryBudget, bytes: Buffer, where = dir(), memoryLimit = 1024 * 1024): Promise<Spool> {
    const spool = new Spool(where, memoryLimit, 25 * 1024 * 1024, budget);
    await spool.receive(Readable.from([bytes.subarray(0, bytes.length >> 1), bytes.subarray(bytes.length >> 1)]));
    return spool;
  }

  it('keeps a message in memory from the budget, and gives the bytes back when disposed', async () => {
    const budget = new MemoryBudget(1024 * 1024);
    const spool = await spooled(budget, message(100_000));
    assert.equal(spool.onDisk, false);
    assert.equal(budget.inUse, 100_000);
    await spool.dispose();
    assert.equal(budget.inUse, 0);
  });

  it('with no room in the budget the message goes to its file, byte for byte', async () => {
    const budget = new MemoryBudget(64 * 1024);
    const bytes = message(100_000);
    const spool = await spooled(budget, bytes);
    assert.equal(spool.onDisk, true);
    assert.equal(budget.inUse, 0, 'the part held before the budget ran out was given back');
    const read: Buffer[] = [];
    for await (const chunk of spool.read()) read.push(chunk as Buffer);
    assert.ok(Buffer.concat(read).equals(bytes));
    await spool.dispose();
  });

  it('spill() moves a message from memory to its file and gives its bytes back; dispose() removes the file', async () => {
    const budget = new MemoryBudget(1024 * 1024);
    const where = dir();
    const bytes = message(200_000);
    const spool = await spooled(budget, bytes, where);
    await spool.spill();
    assert.equal(spool.onDisk, true);
    assert.equal(budget.inUse, 0);
    const [file] = readdirSync(where);
    assert.ok(readFileSync(path.join(where, file)).equals(bytes));
    await spool.dispose();
    assert.deepEqual(readdirSync(where), []);
  });
});

describe('a message admitted under the memory budget', () => {
  const policy = (budget: string) => loadPolicy(defaultPolicyFile, [`limits.memoryBudget=${budget}`]).policy;

  it('a message that must wait holds none of the budget meanwhile: its bytes go to its file, and it runs when its turn comes', async () => {
    const budget = new MemoryBudget(1_000_000);
    const where = mkdtempSync(path.join(tmpdir(), 'mailmoat-admission-'));
    const spool = new Spool(where, 1024 * 1024, 25 * 1024 * 1024, budget);
    await spool.receive(Readable.from([Buffer.alloc(300_000, 'x')]));
    assert.equal(budget.inUse, 300_000);
    const inspected = await budget.acquire(600_000); // another message under inspection
    const queued = budget.acquire(400_000); // and one waiting for its turn, ahead of ours
    const ran: number[] = [];
    const admitted = withinMemoryBudget(spool, policy('1000000'), new AbortController().signal, () => Promise.resolve(ran.push(budget.inUse)), { budget });
    const ahead = await queued; // granted with the room our message gave up by going to its file
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(ran, []);
    assert.equal(spool.onDisk, true);
    assert.equal(budget.inUse, 1_000_000, 'the two others; the waiting message holds nothing');
    inspected.release();
    await admitted;
    assert.deepEqual(ran, [700_000], 'inspected counted at its size, beside the one ahead of it');
    ahead.release();
    assert.equal(budget.inUse, 0, 'and given back after');
    await spool.dispose();
  });

  it('the wait ends when the client goes away: rejected with its reason, nothing held, the spool still disposable', async () => {
    const budget = new MemoryBudget(1024 * 1024);
    const where = mkdtempSync(path.join(tmpdir(), 'mailmoat-admission-'));
    const spool = new Spool(where, 64 * 1024, 25 * 1024 * 1024, budget);
    await spool.receive(Readable.from([Buffer.alloc(2 * 1024 * 1024, 'x')]));
    const other = await budget.acquire(1); // the message is larger than the budget: it waits to run alone
    const client = new AbortController();
    let ran = false;
    const admitted = withinMemoryBudget(spool, policy('1MB'), client.signal, () => Promise.resolve((ran = true)), { budget });
    await new Promise((r) => setTimeout(r, 20));
    client.abort('client_gone');
    await assert.rejects(admitted, (reason) => reason === 'client_gone');
    assert.equal(ran, false);
    assert.equal(budget.waiters, 0);
    other.release();
    assert.equal(budget.inUse, 0);
    await spool.dispose();
    assert.deepEqual(readdirSync(where), []);
  });
});
