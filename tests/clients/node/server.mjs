// Starts a memcached server for the memjs tests, as tests/clients/memcached_server.py does for
// the Python suites: memcached-rs's release build, or the binary named by MEMCACHED_BIN, on a
// free loopback port; stop() ends it.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BINARY = process.env.MEMCACHED_BIN || process.env.MEMCACHED_RS_BIN
  || path.join(ROOT, 'target', 'release', 'memcached-rs');

export const SASL_USER = 'nodeuser';
export const SASL_PASSWORD = 'n0de-secret';

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    sock.setTimeout(200);
    sock.on('connect', () => { sock.destroy(); resolve(true); });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => { sock.destroy(); resolve(false); });
  });
}

// Credentials in both forms a server may read them: MEMCACHED_SASL_PWDB (`user:password` lines,
// memcached-rs and memcached built with --enable-sasl-pwdb) and Cyrus SASL's sasldb, named in
// SASL_CONF_PATH/memcached.conf (Debian's memcached). saslpasswd2 is in Debian's sasl2-bin.
export function saslConfig(user = SASL_USER, password = SASL_PASSWORD) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'memcached-sasl-'));
  const pwdb = path.join(dir, 'pwdb');
  writeFileSync(pwdb, `${user}:${password}\n`);
  const sasldb = path.join(dir, 'sasldb');
  for (const saslpasswd2 of ['/usr/sbin/saslpasswd2', '/usr/bin/saslpasswd2']) {
    if (existsSync(saslpasswd2)) {
      execFileSync(saslpasswd2, ['-p', '-c', '-a', 'memcached', '-f', sasldb, user], { input: password });
      break;
    }
  }
  writeFileSync(path.join(dir, 'memcached.conf'), `mech_list: plain\nsasldb_path: ${sasldb}\n`);
  return {
    user,
    password,
    env: { MEMCACHED_SASL_PWDB: pwdb, SASL_CONF_PATH: dir },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function startServer(extra = [], env = {}) {
  const port = await freePort();
  const args = ['-p', String(port), '-U', '0', '-l', '127.0.0.1', '-t', '2', ...extra];
  if (process.getuid && process.getuid() === 0) args.push('-u', 'root');
  const proc = spawn(BINARY, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.on('data', (d) => { output += d; });
  proc.stderr.on('data', (d) => { output += d; });
  let exited = false;
  const exitedPromise = new Promise((resolve) => proc.on('exit', (code, signal) => {
    exited = true;
    resolve({ code, signal });
  }));
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (exited || Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${BINARY} ${args.join(' ')} did not start: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    proc,
    output: () => output,
    async stop() {
      if (!exited) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exitedPromise;
        clearTimeout(timer);
      }
    },
  };
}

// One text-protocol request on a fresh connection; resolves with the reply once it ends with
// `end`. Used to look at what the binary-protocol client stored.
export function textRequest(port, request, end = '\r\n') {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let data = Buffer.alloc(0);
    sock.setTimeout(5000);
    sock.on('connect', () => sock.write(request));
    sock.on('data', (d) => {
      data = Buffer.concat([data, d]);
      if (data.toString('latin1').endsWith(end)) { sock.destroy(); resolve(data); }
    });
    sock.on('timeout', () => { sock.destroy(); reject(new Error(`timeout; got ${JSON.stringify(data.toString('latin1'))}`)); });
    sock.on('error', reject);
  });
}
