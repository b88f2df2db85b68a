// The one place that says whether an address is internal: relay control, spoof, rates and notices
// all ask it, so its answers must stay right however often and for however many addresses it is asked.
import assert from 'node:assert/strict';
import { clientKey, inNetworks } from '../../src/policy/network.js';

describe('policy network: inNetworks', function () {
  const networks = ['127.0.0.0/8', '10.20.0.0/16', '2001:db8::/32'];

  it('answers IPv4, IPv4-mapped IPv6 and IPv6 by the CIDRs, and the same again when asked again', () => {
    for (let round = 0; round < 3; round++) {
      assert.equal(inNetworks(networks, '127.0.0.1'), true);
      assert.equal(inNetworks(networks, '::ffff:10.20.3.4'), true);
      assert.equal(inNetworks(networks, '10.21.0.1'), false);
      assert.equal(inNetworks(networks, '2001:db8::25'), true);
      assert.equal(inNetworks(networks, '2001:db9::25'), false);
      assert.equal(inNetworks(networks, 'not-an-address'), false);
    }
  });

  it('stays right past the memo of earlier answers (a scan from many addresses)', () => {
    for (let i = 0; i < 10_000; i++) {
      const address = `10.${20 + (i % 2)}.${(i >> 8) & 255}.${i & 255}`;
      assert.equal(inNetworks(networks, address), i % 2 === 0, address);
    }
    assert.equal(inNetworks(networks, '10.20.0.1'), true);
    assert.equal(inNetworks(networks, '192.0.2.1'), false);
  });

  it('a reloaded policy (a new network list) is judged by its own CIDRs', () => {
    assert.equal(inNetworks(['192.0.2.0/24'], '127.0.0.1'), false);
    assert.equal(inNetworks(['192.0.2.0/24'], '192.0.2.7'), true);
  });
});

describe('policy network: clientKey (one client for per-address connection limits)', function () {
  it('an IPv4 address is its own client, written plainly or IPv4-mapped', () => {
    assert.equal(clientKey('192.0.2.7', 64), '192.0.2.7');
    assert.equal(clientKey('::ffff:192.0.2.7', 64), '192.0.2.7');
    assert.notEqual(clientKey('192.0.2.7', 64), clientKey('192.0.2.8', 64));
  });

  it('IPv6 addresses count by their network of the prefix length, however they are written', () => {
    const key = clientKey('2001:db8:1:2::1', 64);
    for (const same of ['2001:db8:1:2:ffff:ffff:ffff:ffff', '2001:0DB8:0001:0002:0:0:0:abcd', '2001:db8:1:2::192.0.2.1', '2001:db8:1:2::1%eth0']) {
      assert.equal(clientKey(same, 64), key, same);
    }
    assert.notEqual(clientKey('2001:db8:1:3::1', 64), key);
    assert.equal(clientKey('2001:db8:1:3::1', 48), clientKey('2001:db8:1:2::1', 48));
    assert.notEqual(clientKey('::1', 128), clientKey('::2', 128));
    assert.equal(clientKey('::', 64), clientKey('::1', 64));
  });
});
