// Package websocket implements the WebSocket protocol (RFC 6455, version
// 13), server and client, with the event-driven API of websocket-driver
// (the Common Lisp library by Eitaro Fukamachi whose API this package
// mirrors: make-server, start-connection, on :message, send, ...) and an
// idiomatic blocking API over one protocol core. It imports nothing but the
// standard library.
//
// # Overview
//
// A server connection comes from an HTTP request, so it mounts on any
// http.Handler: net/http's ServeMux, a router, any middleware.
// websocket-driver's echo server is:
//
//	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
//		ws := websocket.NewServer(w, r, nil)
//		ws.OnMessage(func(m websocket.Message) {
//			ws.Write(context.Background(), m.Type, m.Data) // text as text, binary as binary
//		})
//		ws.Start()
//	})
//
// Write sends a message of the type it is given, so the echo keeps each
// message's type. Send picks the type from its argument (a string is sent
// as text, a []byte as binary); SendText and SendBinary say it outright.
// A client is the mirror image:
//
//	ws := websocket.NewClient("ws://localhost:5000/echo", nil)
//	ws.OnMessage(func(m websocket.Message) { fmt.Println("Got:", m.Text()) })
//	ws.Send("Hi") // queued until the connection is open
//	ws.Start()
//
// The blocking API suits code that prefers its own loops: Accept and Dial
// return an open connection; Read, ReadMessage and NextReader receive,
// Write and NextWriter send; all take a context.
//
//	c, err := websocket.Accept(w, r, nil)
//	...
//	for {
//		typ, msg, err := c.ReadMessage(ctx, buf)
//		if err != nil {
//			return // a *CloseError once the peer closed
//		}
//		buf = msg
//		c.Write(ctx, typ, msg)
//	}
//
// ServerOptions and ClientOptions carry websocket-driver's options: MaxLength
// (default 0x3ffffff bytes; a larger message closes the connection with
// 1009), Protocols (websocket-driver's accept-protocols) and Header (websocket-driver's
// additional-headers), plus the origin policy, compression and timeouts.
// Version, Protocol and ReadyState report what websocket-driver's version, protocol
// and ready-state do.
//
// # Events
//
// The handlers are OnOpen, OnMessage, OnClose, OnError, OnPing and OnPong.
// Start (websocket-driver's start-connection) sends the handshake, and then the
// connection's event loop reads it and calls the handlers, one at a time,
// in the order things arrived.
//
// An idle connection costs no goroutine. On Linux, the event loop of a
// plain TCP connection (not TLS) parks once the connection has been idle
// for one to two seconds, or right after the handshake if nothing arrived
// behind it: its goroutine ends, one epoll set for the whole process
// watches the socket, and when bytes arrive a new goroutine takes the loop
// up where it stopped. A busy connection never parks and pays nothing for
// this. Handlers always run on their connection's own goroutine, never on
// the poller's, so a handler that blocks delays only its connection. Other
// platforms and TLS connections keep one goroutine per connection.
//
// A handler may call any method of the
// connection, including Send and Close, but while it runs no other event of
// that connection is delivered and pings wait for their pong: keep handlers
// short, and hand long work to another goroutine. Message.Data belongs to
// the handler, which may keep it; with BorrowMessageData it is only lent
// until OnMessage returns (no allocation per message). A panic in a handler
// is recovered: it is logged, with its stack, through the options' Logger
// (slog.Default() if nil), and that connection alone is closed with 1011
// (a panic in OnError or OnClose is only logged). OnClose is
// called exactly once, last, with the close code and reason the peer sent,
// 1006 if the TCP connection dropped without a close frame, or the code the
// library failed the connection with after a protocol error (which OnError
// reported first). Sends and pings made before the connection opens are
// queued and go out, in order, when it does.
//
// # Concurrency
//
// Every sending method (Send, SendText, SendBinary, SendPing, Ping, Write,
// WritePrepared, NextWriter, Close, CloseNow) is safe to call from any
// number of goroutines: whole messages go out one at a time, and control
// frames (pings, pongs, close) may go between the fragments of a message
// being streamed by a MessageWriter. Reading is for one goroutine at a time:
// the event loop, or the code calling Read, ReadMessage, NextReader and the
// reader it returns. Pings are answered, and the closing handshake is
// completed, by whoever is reading, so a blocking-API user must keep
// reading to see them.
//
// When several messages arrive together (a peer that pipelines), the frames
// written in reply are gathered and sent in one write instead of one system
// call each: the batch is sent before the reader next waits for the
// network, and never later than half a millisecond after it opened. A
// connection whose messages arrive one at a time writes each frame at once.
//
// # Close
//
// Close(code, reason) starts the closing handshake: it sends a close frame,
// waits for the peer's (at most CloseTimeout, default 5 s) and closes the
// TCP connection; a server closes TCP first, a client waits for it, as RFC
// 6455 §7.1.1 asks. When the peer starts it, its close frame is echoed the
// same way. Reads then return a *CloseError holding the peer's code and
// reason; CloseStatus(err) extracts the code. A peer that breaks the
// protocol gets a close frame with the code RFC 6455 names (1002 for
// framing errors, 1007 for invalid UTF-8, 1009 for a message over
// MaxLength) and reads return a *ProtocolError with that code. CloseNow
// drops the connection without a handshake. Close codes 1005, 1006 and 1015
// are only ever reported, never sent.
//
// # Context
//
// A context passed to a read bounds the wait: if it ends before a message
// starts to arrive, the read returns ctx.Err() and the connection is
// unharmed, because the protocol core keeps every byte it has been given.
// A context that ends in the middle of a message, or of a write, drops the
// connection, since the stream can no longer be resumed.
//
// # Write timeout
//
// Every write (Send, SendText, SendBinary, SendPing, Ping, Write,
// WritePrepared, each fragment of a NextWriter, the pongs and close frames
// the library sends) is bounded by WriteTimeout (DefaultWriteTimeout, 10 s,
// unless the options say otherwise), and by the context of the methods
// that take one: the earlier wins. Write(ctx, typ, p) is the context
// variant of SendText and SendBinary. A write to a peer that stopped
// reading returns ErrWriteTimeout (errors.Is(err, os.ErrDeadlineExceeded)
// holds too) and drops the connection, since a frame is then half-sent:
// later calls return ErrClosed, reads and OnClose report
// StatusAbnormalClosure, and Close called meanwhile returns within the
// write timeout (or the close timeout, if shorter).
//
// # Keepalive
//
// A peer that vanished without closing TCP looks idle for ever. With
// PingInterval set (it is off by default: a program using the blocking API
// that does not always have a Read waiting would see its healthy
// connections dropped), the connection sends a ping every interval and
// drops the peer, with StatusAbnormalClosure, a reason naming the missing
// pong and ErrPongTimeout, when nothing at all arrives within PongTimeout
// (default: PingInterval) of a ping. Any byte received counts as a sign of
// life, so a pong queued behind a large message does not condemn a slow
// but healthy peer. Pongs are seen only while the connection is read: the
// event loop always reads (a parked loop is woken by the pong, and the
// schedule is a runtime timer, not a goroutine), while with the blocking
// API a goroutine must be in Read, ReadMessage or NextReader. Ping(ctx)
// sends one ping and returns the round trip once its pong arrives.
//
// # Compression
//
// permessage-deflate (RFC 7692) is off unless asked for: a client with
// ClientOptions.Compression set offers it, a server with
// ServerOptions.Compression set accepts it, and it is used only when both
// agree; otherwise the connection simply proceeds uncompressed. All of RFC
// 7692 is supported: server_no_context_takeover, client_no_context_takeover,
// server_max_window_bits and client_max_window_bits (with or without a
// value). A server takes the first offer it can honour among several, and
// declines offers with unknown, repeated or invalid parameters; a
// Sec-WebSocket-Extensions header that breaks the RFC 6455 grammar gets 400
// with the reason when compression is on (it is ignored when off). A client
// fails the handshake when the server accepts something it did not offer.
//
// Messages of at least CompressionOptions.Threshold bytes (default 128) are
// compressed at CompressionOptions.Level (default 1, flate.BestSpeed), by
// Write, Send, NextWriter (each fragment is compressed and flushed as it
// goes out) and WritePrepared. RSV1 marks a compressed message's first frame
// only; control frames are never compressed. Received messages are inflated
// as their bytes arrive, by one streaming inflater for every reading style
// (Read, ReadMessage, NextReader and the event API). The inflated size
// counts against MaxLength, and inflating stops as soon as it passes it, so
// a compression bomb closes the connection with 1009 having cost about
// twice MaxLength of memory at most (the compressed size is limited by
// MaxLength too, plus about 3% for deflate's framing of incompressible
// data). Compressed data that does not inflate closes with 1007, as does
// compressed text at its first inflated byte that cannot be UTF-8, as
// uncompressed text does;
// RSV1 on a continuation or control frame, or on any frame when compression
// was not agreed, closes with 1002.
//
// Context takeover (each message may refer to the ones before it) is used
// unless NoContextTakeover is set on either side; it compresses streams of
// similar small messages several times better but keeps state per
// connection: measured by BenchmarkCompressedConnMemory (Go 1.26,
// linux/amd64), a server connection holds about 1.2 MB at level 1 (0.85 MB
// at levels 6 and 9), nearly all of it the compress/flate writer, plus a 32
// KiB window of received messages; with no context takeover in both
// directions it holds nothing more than an uncompressed connection (about 6
// KB), as writers and readers then come from pools for one message at a
// time. WritePrepared compresses a message once per level for all the
// connections that do not use context takeover in their sending direction.
// compress/flate always compresses with a 32 KiB window, so a peer's
// max_window_bits below 15 is honoured by dropping context takeover in that
// direction and sending messages longer than the window (and streamed ones)
// Huffman-coded only, without back-references; received messages are always
// inflated with a 32 KiB window.
//
// # Origin and security
//
// Browsers let any page open a WebSocket to any server and send the user's
// cookies with it. A server that authenticates by cookie must check where
// the page came from, or another site can act as the user (cross-site
// WebSocket hijacking). So a server accepts by default only a request with
// no Origin header (not a browser) or with its own origin (the Origin's
// host equals the request's Host); ServerOptions.OriginPatterns allows
// more, and a refused origin gets 403 Forbidden. ServerOptions.CheckOrigin
// replaces that policy with the caller's own, and ServerOptions.Authorize
// can refuse a handshake (with 403, or the status of a *HandshakeError it
// returns, such as 401) before the connection is upgraded. Received messages are
// limited by MaxLength, checked against the length a frame announces before
// its payload is read, so a peer cannot make the library buffer more.
// Malformed handshakes get 400 (426 with Sec-WebSocket-Version: 13 for a
// version other than 13, 405 for a method other than GET) with the reason in
// the body; nothing a peer sends makes the library panic.
//
// # HTTP/2
//
// Accept and NewServer also answer WebSockets over HTTP/2 (RFC 8441): a
// browser that loaded the page over HTTP/2 then opens its WebSockets as
// streams of that connection, with no TCP or TLS handshake of their own.
// The handshake policy and the options are the same. Such a request has
// the method CONNECT, so a ServeMux pattern "GET /ws" does not route it:
// register "/ws" or add "CONNECT /ws". The stream ends when the handler
// returns, so a handler must not return before its connection is done
// (over HTTP/2 Start returns only then). net/http (Go 1.26) serves HTTP/2
// over TLS (ListenAndServeTLS, or a TLS listener offering "h2") and
// advertises extended CONNECT only when the process starts with
// GODEBUG=http2xconnect=1 in its environment: it reads it once at start-up,
// so neither a //go:debug line nor os.Setenv turns it on, but a program may
// re-execute itself with it (cmd/chat does). Without it browsers open their
// WebSockets over HTTP/1.1 on connections of their own, as they always did.
// http.Server's HTTP2.MaxConcurrentStreams (default 250) bounds the
// WebSockets one connection carries. A client needs no setting: with
// ClientOptions.HTTP2, an HTTP2Client, it shares one connection per origin
// and falls back to HTTP/1.1 where the server does not allow WebSockets over
// HTTP/2.
//
// # Backends
//
// The same handler runs on three transports. net/http over HTTP/1.1 is the
// default and the general one: TLS, any request, streaming responses, and
// a goroutine per connection (parked in a poller while idle, see Design).
// net/http over HTTP/2 (see HTTP/2) carries many WebSockets on one TLS
// connection. The event-loop backend (package eventloop) owns its
// listener and runs every connection on a few event loops, with no
// goroutine per idle connection and no net/http state: for servers that
// hold very many connections or push to many at once. A program switches
// with one line:
//
//	http.ListenAndServe(addr, handler)      // net/http
//	eventloop.ListenAndServe(addr, handler) // event loops
//
// On the event-loop backend the http.Handler runs on a goroutine per
// request, as under net/http. The event API's handlers then run on a
// goroutine that a connection holds only while it has messages to handle,
// so one that blocks stalls its own connection only; with
// eventloop.Server.HandlersOnLoop they run on the loop itself, faster, but
// a handler that blocks there stalls every connection of its loop. The
// blocking API keeps its goroutine for the connection's life, as on
// net/http. Sends never block there: what the socket does not take is
// queued, up to eventloop.Server.MaxWriteQueue, past which the connection
// is dropped (1006). The event-loop backend does not do TLS (terminate it
// in front), HTTP/2, request bodies (it serves GET only: other methods,
// HEAD included, get 405), keep-alive or streaming responses (an answer
// other than the upgrade is buffered, at most 8 MiB, and ends the
// connection).
//
// # Design
//
// The protocol itself lives in a sans-I/O core: a decoder that is fed bytes
// and reports events (data, ping, pong, close) while enforcing every rule of
// RFC 6455, and encoders that turn calls into frame bytes. The core never
// touches a socket. The net/http server side and the client dial are thin
// transports around it, so tests and fuzzing drive the core with byte
// slices, and other transports can feed the same core. The event API's
// poller is one of them: it only decides when a connection's loop runs,
// and the loop feeds the same decoder.
package websocket
