'use strict';
// WebSockets over HTTP/2 (RFC 8441) with Node: Node's http2 module carries
// the extended CONNECT and its stream, and ws does the WebSocket framing
// over that stream (ws accepts any Duplex as its socket). The Go tests in
// interop/h2_test.go start it and read one JSON object per line.
//
//   node h2peer.js server CERT KEY [no-xconnect]
//       serve echo WebSockets over HTTP/2 (and over HTTP/1.1, which ws
//       upgrades), until stdin closes; first line {"ready": true, "port": N}.
//       With no-xconnect the server does not advertise extended CONNECT.
//       Each WebSocket that ends prints {"event": "closed", "proto": "h2" or
//       "h1", "code": N, "reason": str}; each new TLS connection
//       {"event": "connection"}.
//   node h2peer.js client URL N
//       open N WebSockets as streams of one HTTP/2 connection to URL, each
//       echoing a text and a binary message and closing with 1000; one line
//       {"case": i, "ok": bool, "detail": str} each, then {"done": true}.

const fs = require('fs');
const http2 = require('http2');
const WebSocket = require('ws');

const MAX_PAYLOAD = 64 << 20;
const TIMEOUT_MS = 30000;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// overStream makes a ws WebSocket on an open HTTP/2 stream. ws has no
// public constructor for a socket it did not open itself: a WebSocket
// created without an address is a server's, and setSocket attaches the
// stream, as ws's own server does after an HTTP/1.1 upgrade.
function overStream(stream, isServer) {
  const ws = new WebSocket(null, undefined, {});
  ws._isServer = isServer; // a client masks what it sends
  ws._closeTimeout = 30000; // what ws's own client gets; unset, the close timer fires at once
  ws.setSocket(stream, Buffer.alloc(0), { maxPayload: MAX_PAYLOAD });
  return ws;
}

function echo(ws, proto) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('close', (code, reason) => emit({ event: 'closed', proto, code, reason: reason.toString('utf8') }));
  ws.on('error', (err) => emit({ event: 'error', proto, detail: String(err) }));
}

function server(certFile, keyFile, noXConnect) {
  const srv = http2.createSecureServer({
    cert: fs.readFileSync(certFile),
    key: fs.readFileSync(keyFile),
    allowHTTP1: true,
    settings: { enableConnectProtocol: !noXConnect },
  });
  srv.on('secureConnection', () => emit({ event: 'connection' }));
  srv.on('stream', (stream, headers) => {
    if (headers[':method'] !== 'CONNECT' || headers[':protocol'] !== 'websocket') {
      stream.respond({ ':status': 404 });
      stream.end();
      return;
    }
    if (headers['sec-websocket-version'] !== '13') {
      stream.respond({ ':status': 426, 'sec-websocket-version': '13' });
      stream.end();
      return;
    }
    const reply = { ':status': 200 };
    const offered = (headers['sec-websocket-protocol'] || '').split(',').map((s) => s.trim());
    if (offered.includes('chat')) reply['sec-websocket-protocol'] = 'chat';
    stream.respond(reply);
    echo(overStream(stream, true), 'h2');
  });
  const wss = new WebSocket.Server({ noServer: true, maxPayload: MAX_PAYLOAD });
  srv.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => echo(ws, 'h1'));
  });
  srv.listen(0, '127.0.0.1', () => emit({ ready: true, port: srv.address().port }));
  process.stdin.on('end', () => process.exit(0));
  process.stdin.resume();
}

function withTimeout(p, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`timed out: ${what}`)), TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(t));
}

async function oneSocket(session, url, i) {
  const stream = session.request(
    {
      ':method': 'CONNECT',
      ':protocol': 'websocket',
      ':scheme': 'https',
      ':path': url.pathname + url.search,
      ':authority': url.host,
      'sec-websocket-version': '13',
      'sec-websocket-protocol': 'x-unknown, chat',
    },
    { endStream: false },
  );
  const headers = await withTimeout(
    new Promise((resolve, reject) => {
      stream.once('response', resolve);
      stream.once('error', reject);
    }),
    'response headers',
  );
  if (headers[':status'] !== 200) throw new Error(`status ${headers[':status']}, want 200`);
  if (headers['sec-websocket-accept']) throw new Error('Sec-WebSocket-Accept over HTTP/2');
  if (headers['sec-websocket-protocol'] !== 'chat') {
    throw new Error(`subprotocol ${JSON.stringify(headers['sec-websocket-protocol'])}, want chat`);
  }
  const ws = overStream(stream, false);
  const messages = [];
  const waiters = [];
  ws.on('message', (data, isBinary) => {
    const w = waiters.shift();
    if (w) w({ data, isBinary });
    else messages.push({ data, isBinary });
  });
  let failure = '';
  ws.on('error', (err) => { failure = String(err); });
  const closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() + ' recv=' + ws._closeFrameReceived + ' sent=' + ws._closeFrameSent + ' state=' + stream.rstCode + '/' + stream.destroyed })));
  const next = () => (messages.length ? Promise.resolve(messages.shift()) : new Promise((r) => waiters.push(r)));
  const text = `hello ${i} over HTTP/2 ✓`;
  ws.send(text);
  let m = await withTimeout(next(), 'text echo');
  if (m.isBinary || m.data.toString('utf8') !== text) throw new Error(`echo ${JSON.stringify(m.data.toString())}`);
  const bin = Buffer.alloc(100000 + i, i & 0xff);
  ws.send(bin, { binary: true });
  m = await withTimeout(next(), 'binary echo');
  if (!m.isBinary || !m.data.equals(bin)) throw new Error(`binary echo of ${m.data.length} bytes differs`);
  ws.close(1000, 'bye');
  const got = await withTimeout(closed, 'close');
  if (got.code !== 1000) throw new Error(`closed with ${got.code} ${got.reason} ${failure}`);
  return `echoed, closed ${got.code}`;
}

async function client(rawURL, n) {
  const url = new URL(rawURL);
  const session = http2.connect(url.origin, { rejectUnauthorized: false });
  session.on('error', (err) => emit({ event: 'session-error', detail: String(err) }));
  await withTimeout(
    new Promise((resolve) => session.once('remoteSettings', resolve)),
    'the server\'s SETTINGS',
  );
  if (!session.remoteSettings.enableConnectProtocol) {
    emit({ done: true, error: 'the server does not advertise SETTINGS_ENABLE_CONNECT_PROTOCOL' });
    session.close();
    return;
  }
  await Promise.all(
    Array.from({ length: n }, (_, i) =>
      oneSocket(session, url, i).then(
        (detail) => emit({ case: i, ok: true, detail }),
        (err) => emit({ case: i, ok: false, detail: String(err && err.stack ? err.stack : err) }),
      ),
    ),
  );
  session.close();
  emit({ done: true });
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'server') {
  server(args[0], args[1], args[2] === 'no-xconnect');
} else if (mode === 'client') {
  client(args[0], Number(args[1] || 1)).catch((err) => {
    emit({ done: true, error: String(err) });
    process.exit(1);
  });
} else {
  process.stderr.write('usage: node h2peer.js server CERT KEY [no-xconnect] | client URL N\n');
  process.exit(2);
}
