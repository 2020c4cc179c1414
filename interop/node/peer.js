'use strict';
// Node `ws` peer for the interop matrix. The Go tests in interop/ start it and
// read one JSON object per line from stdout. The behaviour of each case kind is
// defined in interop/cases.go; this file mirrors it and must stay in step with
// the Python peer (interop/python/peer.py) and the browser page.
//
//   node peer.js server                 serve until stdin closes; first line {"ready":..., "ports":{MODE: port}}
//   node peer.js client URL KIND:NAME[:MODE]... connect to URL/NAME for each case in turn
//
// MODE is the permessage-deflate configuration (PeerDeflate in interop/cases_test.go):
// the server listens on one port per mode, the client uses the case's.
//
// Each case ends with a line {"case": NAME, "ok": bool, "detail": str}.

const crypto = require('crypto');
const WebSocket = require('ws');
const wsVersion = require('ws/package.json').version;

const OFFERED_PROTOCOLS = ['x-unknown', 'chat.v2', 'chat.v1'];
const EXPECTED_PROTOCOL = 'chat.v2';
const PEER_PING = Buffer.from('ping from peer');
const CLOSE_FROM_US = [4001, 'bye from us: żółw ✓'];
const CLOSE_FROM_PEER = [4002, 'bye from peer: ñandú ✓'];
const FRAGMENTS = 7;
const CASE_TIMEOUT_MS = 60000;
const MAX_PAYLOAD = 64 << 20;
const PEER_WINDOW_BITS = 10;

// DEFLATE maps a mode to ws's perMessageDeflate option, the same for client
// and server: "default" is ws as deployed (it offers and accepts
// permessage-deflate with context takeover); the others make ws ask for
// something (a client in its offer, a server in its response).
const DEFLATE = {
  default: true,
  'no-ctx': { serverNoContextTakeover: true, clientNoContextTakeover: true },
  window: { serverMaxWindowBits: PEER_WINDOW_BITS, clientMaxWindowBits: PEER_WINDOW_BITS },
};

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Session wraps one connection: queued messages, and a promise for its close.
class Session {
  constructor(ws) {
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.pongs = [];
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') }));
    });
    ws.on('message', (data, isBinary) => {
      const m = { data, isBinary };
      const w = this.waiters.shift();
      if (w) w.resolve(m); else this.queue.push(m);
    });
    ws.on('pong', (data) => this.pongs.forEach((f) => f(data)));
    this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w.reject(new Error('closed before a message arrived'));
    });
  }

  next() {
    if (this.queue.length) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  send(data, opts) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
  }

  // waitClose echoes what still arrives and demands the other side's close code.
  async waitClose(code, reason) {
    this.ws.on('message', (data, isBinary) => this.ws.send(data, { binary: isBinary }));
    const got = await this.closed;
    if (got.code !== code) throw new Error(`close code ${got.code} ${JSON.stringify(got.reason)}, want ${code}`);
    if (reason !== undefined && got.reason !== reason) {
      throw new Error(`close reason ${JSON.stringify(got.reason)}, want ${JSON.stringify(reason)}`);
    }
    return `closed ${got.code} ${JSON.stringify(got.reason)}`;
  }
}

async function runKind(s, kind) {
  switch (kind) {
    case 'echo':
    case 'echo-fragmented': {
      const m = await s.next();
      const typ = m.isBinary ? 'binary' : 'text';
      const digest = crypto.createHash('sha256').update(m.data).digest('hex');
      await s.send(`digest ${typ} ${m.data.length} ${digest}`, { binary: false });
      if (kind === 'echo-fragmented') {
        const size = Math.max(1, Math.ceil(m.data.length / FRAGMENTS));
        if (m.data.length < 2) throw new Error(`message of ${m.data.length} bytes too short to fragment`);
        // Byte-wise cuts: text fragments may split a UTF-8 sequence, as RFC 6455 allows.
        for (let off = 0; off < m.data.length; off += size) {
          const end = Math.min(off + size, m.data.length);
          await s.send(m.data.subarray(off, end), { binary: m.isBinary, fin: end === m.data.length });
        }
      } else {
        await s.send(m.data, { binary: m.isBinary });
      }
      return s.waitClose(1000);
    }
    case 'idle':
      return s.waitClose(1000);
    case 'ping-from-peer': {
      const got = new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no pong within 10s')), 10000);
        s.pongs.push((data) => {
          clearTimeout(t);
          resolve(data);
        });
      });
      s.ws.ping(PEER_PING);
      const data = await got;
      if (!data.equals(PEER_PING)) throw new Error(`pong payload ${data.toString('hex')}, want ${PEER_PING.toString('hex')}`);
      await s.send('pong-ok ' + PEER_PING.toString('hex'), { binary: false });
      return s.waitClose(1000);
    }
    case 'subprotocol': {
      await s.send(`protocol ${s.ws.protocol}`, { binary: false });
      if (s.ws.protocol !== EXPECTED_PROTOCOL) {
        throw new Error(`subprotocol ${JSON.stringify(s.ws.protocol)}, want ${EXPECTED_PROTOCOL}`);
      }
      return s.waitClose(1000);
    }
    case 'close-from-us':
      return s.waitClose(...CLOSE_FROM_US);
    case 'close-from-peer': {
      s.ws.close(...CLOSE_FROM_PEER);
      const got = await s.closed;
      // ws reports 1006 when the closing handshake did not complete.
      if (got.code === 1006) throw new Error('closing handshake did not complete (1006)');
      return `handshake done, peer echoed ${got.code} ${JSON.stringify(got.reason)}`;
    }
    default:
      throw new Error(`unknown kind ${kind}`);
  }
}

async function runCase(name, fn) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`case timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
  });
  try {
    const detail = await Promise.race([fn(), timeout]);
    emit({ case: name, ok: true, detail: detail || '' });
  } catch (e) {
    emit({ case: name, ok: false, detail: String((e && e.message) || e) });
  } finally {
    clearTimeout(timer);
  }
}

function open(url, protocols, mode) {
  return new Promise((resolve, reject) => {
    const perMessageDeflate = DEFLATE[mode];
    if (perMessageDeflate === undefined) throw new Error(`unknown deflate mode ${mode}`);
    const ws = new WebSocket(url, protocols, { maxPayload: MAX_PAYLOAD, handshakeTimeout: 10000, perMessageDeflate });
    const s = new Session(ws);
    ws.once('open', () => resolve(s));
    ws.once('error', reject);
  });
}

async function client(base, cases) {
  emit({ ready: true, version: wsVersion });
  for (const item of cases) {
    const [kind, name, mode = 'default'] = item.split(':');
    let s;
    await runCase(name, async () => {
      s = await open(`${base}/${name}`, kind === 'subprotocol' ? OFFERED_PROTOCOLS : [], mode);
      return runKind(s, kind);
    });
    // A failed case must not leave its connection to disturb the next one.
    if (s && s.ws.readyState !== WebSocket.CLOSED) s.ws.terminate();
  }
}

function server() {
  const ports = {};
  const modes = Object.keys(DEFLATE);
  for (const mode of modes) {
    const wss = new WebSocket.Server({
      host: '127.0.0.1',
      port: 0,
      maxPayload: MAX_PAYLOAD,
      // Compression is used only when the client (our side) offers it.
      perMessageDeflate: DEFLATE[mode],
      handleProtocols: (protocols) => (protocols.has(EXPECTED_PROTOCOL) ? EXPECTED_PROTOCOL : false),
    });
    wss.on('connection', (ws, req) => {
      const s = new Session(ws);
      const parts = req.url.replace(/^\/+/, '').split('/');
      if (parts.length !== 2) {
        ws.close(1008, 'path must be /KIND/NAME');
        return;
      }
      runCase(decodeURIComponent(parts[1]), () => runKind(s, parts[0])).then(() => {
        if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
      });
    });
    wss.on('listening', () => {
      ports[mode] = wss.address().port;
      if (Object.keys(ports).length === modes.length) emit({ ready: true, ports, version: wsVersion });
    });
  }
  // The Go test owns this process: it ends it by closing stdin.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'server') {
  server();
} else if (mode === 'client' && rest.length >= 1) {
  client(rest[0], rest.slice(1)).then(() => process.exit(0));
} else {
  process.stderr.write('usage: node peer.js server | client URL KIND:NAME[:MODE]...\n');
  process.exit(2);
}
