// memjs (Node.js, binary protocol only) against a fresh server: set with {expires}, get,
// concurrent sets with Promise.all, increment, delete, close — and the same with SASL
// credentials against a server started with -S.
//
// Run with `npm test` here or `make test-clients-binary`; MEMCACHED_BIN picks the server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import memjs from 'memjs';

import { saslConfig, startServer, textRequest } from './server.mjs';

const quiet = { log: () => {} };

function connect(address, options = {}) {
  return memjs.Client.create(address, { timeout: 2, conntimeout: 4, retries: 1, logger: quiet, ...options });
}

function stats(client) {
  return new Promise((resolve, reject) => {
    client.stats((err, server, values) => (err ? reject(err) : resolve({ server, values })));
  });
}

describe('memjs', () => {
  let server;
  let client;

  before(async () => {
    server = await startServer();
    client = connect(server.address);
  });

  after(async () => {
    client?.close();
    await server?.stop();
  });

  test('set with expires, then get', async () => {
    assert.equal(await client.set('greeting', 'hello world', { expires: 600 }), true);
    const { value, flags } = await client.get('greeting');
    assert.deepEqual(value, Buffer.from('hello world'));
    assert.deepEqual(flags, Buffer.alloc(4));

    // The expiry reached the server: the item has a TTL of at most 600 seconds.
    const meta = (await textRequest(server.port, 'mg greeting t s\r\n')).toString();
    const m = /^HD t(\d+) s11\r\n$/.exec(meta);
    assert.ok(m, meta);
    assert.ok(Number(m[1]) > 0 && Number(m[1]) <= 600, meta);

    // More than 30 days is an absolute Unix time: one in 1970 has already passed.
    assert.equal(await client.set('expired', 'x', { expires: 60 * 60 * 24 * 30 + 1 }), true);
    assert.deepEqual(await client.get('expired'), { value: null, flags: null });
    assert.deepEqual(await client.get('never-set'), { value: null, flags: null });
  });

  test('binary-safe and large values', async () => {
    const blob = Buffer.alloc(700 * 1024);
    for (let i = 0; i < blob.length; i++) blob[i] = (i * 7919) & 0xff;
    assert.equal(await client.set('blob', blob), true);
    assert.deepEqual((await client.get('blob')).value, blob);
    assert.equal(await client.set('empty', ''), true);
    assert.deepEqual((await client.get('empty')).value, Buffer.alloc(0));
  });

  test('many sets at once with Promise.all', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `bulk:${i}`);
    const stored = await Promise.all(keys.map((k, i) => client.set(k, `value-${i}-`.repeat(i % 13 + 1))));
    assert.deepEqual(stored, keys.map(() => true));
    const got = await Promise.all(keys.map((k) => client.get(k)));
    got.forEach(({ value }, i) => assert.equal(value.toString(), `value-${i}-`.repeat(i % 13 + 1)));
    const { values } = await stats(client);
    assert.ok(Number(values.curr_items) >= 200, JSON.stringify(values));
  });

  test('increment and decrement', async () => {
    // A missing counter is created with the initial value; the amount is not added.
    assert.deepEqual(await client.increment('hits', 5, { initial: 10 }), { success: true, value: 10 });
    assert.deepEqual(await client.increment('hits', 5), { success: true, value: 15 });
    // memjs 1.3.2's decrement needs the options object (it reads options.initial).
    assert.deepEqual(await client.decrement('hits', 20, {}), { success: true, value: 0 });
    assert.deepEqual(await client.increment('hits', 1000000), { success: true, value: 1000000 });
    assert.equal((await client.get('hits')).value.toString(), '1000000');
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => client.increment('hits', 1)));
    assert.ok(concurrent.every((r) => r.success));
    assert.deepEqual(concurrent.map((r) => r.value).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => 1000001 + i));
    assert.equal((await client.get('hits')).value.toString(), '1000050');
    // Incrementing a value that is not a number is an error.
    await client.set('text', 'abc');
    await assert.rejects(client.increment('text', 1), /MemJS INCREMENT/);
  });

  test('add, replace, append, prepend, touch', async () => {
    assert.equal(await client.add('fresh', 'one'), true);
    assert.equal(await client.add('fresh', 'two'), false);
    assert.equal(await client.replace('fresh', 'three'), true);
    assert.equal(await client.replace('absent', 'x'), false);
    assert.equal(await client.append('fresh', '>'), true);
    assert.equal(await client.prepend('fresh', '<'), true);
    // memjs 1.3.2 sends prepend as opcode 0x0E, which is APPEND (PREPEND is 0x0F): the server
    // must do what the opcode says.
    assert.equal((await client.get('fresh')).value.toString(), 'three><');
    assert.equal(await client.touch('fresh', 100), true);
    assert.equal(await client.touch('absent', 100), false);
  });

  test('delete', async () => {
    await client.set('doomed', 'x');
    assert.equal(await client.delete('doomed'), true);
    assert.equal(await client.delete('doomed'), false);
    assert.deepEqual(await client.get('doomed'), { value: null, flags: null });
  });

  test('stats and flush', async () => {
    const { server: name, values } = await stats(client);
    assert.equal(name, server.address);
    assert.equal(values.version, '1.6.38');
    assert.equal(Number(values.pid), server.proc.pid);
    const flushed = await client.flush();
    assert.deepEqual(flushed, { [server.address]: true });
    for (const key of ['greeting', 'blob', 'bulk:0', 'bulk:199', 'hits', 'fresh']) {
      assert.deepEqual(await client.get(key), { value: null, flags: null }, key);
    }
    assert.equal((await stats(client)).values.cmd_flush, '1');
  });

  test('close, then a new client sees the data', async () => {
    const c = connect(server.address);
    assert.equal(await c.set('persist', 'kept'), true);
    c.close();
    const d = connect(server.address);
    assert.equal((await d.get('persist')).value.toString(), 'kept');
    d.quit();
  });
});

describe('memjs with SASL', () => {
  let sasl;
  let server;
  const clients = [];

  before(async () => {
    sasl = saslConfig();
    server = await startServer(['-S'], sasl.env);
  });

  after(async () => {
    clients.forEach((c) => c.close());
    await server?.stop();
    sasl?.remove();
  });

  test('credentials in the options', async () => {
    const c = connect(server.address, { username: sasl.user, password: sasl.password });
    clients.push(c);
    assert.equal(await c.set('secret', 'value', { expires: 600 }), true);
    assert.equal((await c.get('secret')).value.toString(), 'value');
    assert.deepEqual(await c.increment('counter', 1, { initial: 1 }), { success: true, value: 1 });
    assert.deepEqual(await c.increment('counter', 2), { success: true, value: 3 });
    assert.equal(await c.delete('counter'), true);
  });

  test('credentials in the server string', async () => {
    const c = connect(`${sasl.user}:${sasl.password}@${server.address}`);
    clients.push(c);
    assert.equal((await c.get('secret')).value.toString(), 'value');
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => c.set(`s${i}`, String(i))));
    assert.deepEqual(many, Array(20).fill(true));
    assert.equal((await c.get('s19')).value.toString(), '19');
  });

  test('wrong password and no credentials are refused', async () => {
    const wrong = connect(server.address, { username: sasl.user, password: 'wrong', retries: 1 });
    clients.push(wrong);
    await assert.rejects(wrong.get('secret'));
    const anonymous = connect(server.address, { retries: 1 });
    clients.push(anonymous);
    await assert.rejects(anonymous.set('secret', 'overwritten'));
    const c = connect(server.address, { username: sasl.user, password: sasl.password });
    clients.push(c);
    assert.equal((await c.get('secret')).value.toString(), 'value');
  });
});
