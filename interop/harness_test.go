package interop

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wsdriver/websocket"
	"github.com/wsdriver/websocket/eventloop"
)

// peerResult is a peer's verdict on one case.
type peerResult struct {
	Case   string `json:"case"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// peer is one column pair of the matrix: a WebSocket implementation that
// has a client, and maybe a server.
type peer interface {
	Name() string  // subtest name
	Title() string // column label
	// Setup checks that the peer can run here and learns its version.
	Setup(t *testing.T) error
	Version() string
	Can(Capability) bool
	HasServer() bool
	// RunClient runs the cases in order with the peer's client against our
	// server and returns when the client is done.
	RunClient(ctx context.Context, t *testing.T, srv *ourServer, cases []Case, report func(peerResult)) error
	// StartServer starts the peer's server, with a listener for each of
	// peerDeflateModes; bases maps a mode to its base URL ws://host:port,
	// and a case is at /KIND/NAME under it.
	StartServer(ctx context.Context, t *testing.T, report func(peerResult)) (bases map[PeerDeflate]string, stop func(), err error)
}

// peers lists the matrix's columns, in order.
func peers() []peer {
	return []peer{
		&browserPeer{},
		nodePeer(),
		pythonPeer(),
		&goPeer{lib: gorillaLib{}},
		&goPeer{lib: coderLib{}},
	}
}

// Directions of a cell.
const (
	dirOurServer = "our server" // the peer's client against our server
	dirOurClient = "our client" // our client against the peer's server
)

// apis are the styles of our API the matrix covers, one table each.
var apis = []API{APIBlocking, APIEvents}

// Backend is the server backend of an "our server" column.
type Backend string

const (
	// BackendHTTP is net/http (httptest.Server); our client's columns
	// have it too, as they have no backend of ours.
	BackendHTTP Backend = "net-http"
	// BackendEventLoop is package eventloop, the event API's handlers on
	// a goroutine per busy connection (its default).
	BackendEventLoop Backend = "eventloop"
	// BackendEventLoopOnLoop is package eventloop with HandlersOnLoop.
	BackendEventLoopOnLoop Backend = "eventloop-on-loop"
)

// loopBackends lists the event-loop columns of peer p's client against
// our server with API api. HandlersOnLoop changes nothing for the blocking
// API, whose handler owns its goroutine, so there are three styles: the
// blocking API, the event API with its handlers on a worker, the event
// API on the loop. Running every style with every peer would double the
// matrix's time, so each peer runs two or three and each style runs with
// three or four peers, chosen for what the peer's client exercises:
// Chromium (no fragments, no pings, always deflate) is the event API's
// typical client, so both event styles; Node ws (every capability) all
// three; Python websockets the blocking API and the worker; gorilla the
// blocking API and the loop; coder both event styles.
func loopBackends(p peer, api API) []Backend {
	type style struct {
		b   Backend
		api API
	}
	var (
		blocking = style{BackendEventLoop, APIBlocking}
		worker   = style{BackendEventLoop, APIEvents}
		onLoop   = style{BackendEventLoopOnLoop, APIEvents}
	)
	var out []Backend
	for _, s := range map[string][]style{
		"chromium":          {worker, onLoop},
		"node-ws":           {blocking, worker, onLoop},
		"python-websockets": {blocking, worker},
		"gorilla":           {blocking, onLoop},
		"coder":             {worker, onLoop},
	}[p.Name()] {
		if s.api == api {
			out = append(out, s.b)
		}
	}
	return out
}

// caseFilter selects the cases to run by name, from INTEROP_CASES (a
// regular expression; all cases when unset). -run cannot do it: a column
// runs its cases over one peer process, and they are reported afterwards.
var caseFilter = regexp.MustCompile(os.Getenv("INTEROP_CASES"))

// inCI reports whether a missing peer must fail the run instead of
// skipping it.
func inCI() bool { return os.Getenv("CI") != "" }

func TestInterop(t *testing.T) {
	for _, p := range peers() {
		t.Run(p.Name(), func(t *testing.T) {
			if err := p.Setup(t); err != nil {
				if inCI() {
					t.Fatalf("%s is not available (CI requires every peer; run scripts/install-deps.sh): %v", p.Title(), err)
				}
				t.Skipf("%s is not available: %v", p.Title(), err)
			}
			theMatrix.addPeer(p)
			for _, api := range apis {
				t.Run("our-server-"+string(api), func(t *testing.T) { testOurServer(t, p, api, BackendHTTP) })
				for _, b := range loopBackends(p, api) {
					t.Run("our-server-"+string(b)+"-"+string(api), func(t *testing.T) { testOurServer(t, p, api, b) })
				}
				if p.HasServer() {
					t.Run("our-client-"+string(api), func(t *testing.T) { testOurClient(t, p, api) })
				}
			}
		})
	}
}

// applicable splits the cases into those the peer can run and those it
// cannot, which become n/a cells.
func applicable(col column) []Case {
	var run []Case
	for _, c := range allCases() {
		if !caseFilter.MatchString(c.Name) {
			continue // a partial run: the matrix file stays as it was
		}
		if c.Needs != "" && !col.p.Can(c.Needs) {
			theMatrix.set(col, c, cell{status: statusNA, detail: fmt.Sprintf("%s cannot %s", col.p.Title(), c.Needs)})
			continue
		}
		run = append(run, c)
	}
	return run
}

func testOurServer(t *testing.T, p peer, api API, b Backend) {
	col := column{p, dirOurServer, api, b}
	cases := applicable(col)
	reports := newReportBox(cases)
	srv := newOurServer(t, cases, api, b, reports.put)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout(cases))
	defer cancel()
	runErr := p.RunClient(ctx, t, srv, cases, reports.put)
	for _, c := range cases {
		ours := srv.result(c.Name, 5*time.Second)
		peerRes := reports.get(c.Name, 5*time.Second)
		record(t, col, c, ours, peerRes, runErr)
	}
}

func testOurClient(t *testing.T, p peer, api API) {
	col := column{p, dirOurClient, api, BackendHTTP}
	cases := applicable(col)
	reports := newReportBox(cases)
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout(cases))
	defer cancel()
	bases, stop, err := p.StartServer(ctx, t, reports.put)
	if err != nil {
		for _, c := range cases {
			record(t, col, c, err, peerResult{}, err)
		}
		return
	}
	defer stop()
	for _, c := range cases {
		base, ok := bases[c.peerDeflate()]
		if !ok {
			record(t, col, c, fmt.Errorf("internal: the peer server has no listener for mode %q", c.peerDeflate()), peerResult{}, nil)
			continue
		}
		ours := runOurClient(ctx, base, api, c)
		peerRes := reports.get(c.Name, 15*time.Second)
		record(t, col, c, ours, peerRes, nil)
	}
}

// runTimeout bounds a whole column.
func runTimeout(cases []Case) time.Duration {
	return time.Duration(len(cases)) * caseTimeout / 3
}

// record combines our verdict and the peer's into the cell, reported as a
// subtest so that a failure names its cell.
func record(t *testing.T, col column, c Case, ours error, pr peerResult, runErr error) {
	var problems []string
	if ours != nil {
		problems = append(problems, "ours: "+ours.Error())
	}
	switch {
	case pr.Case == "":
		msg := "peer: no report"
		if runErr != nil {
			msg += " (" + runErr.Error() + ")"
		}
		problems = append(problems, msg)
	case !pr.OK:
		problems = append(problems, "peer: "+pr.Detail)
	}
	ce := cell{status: statusPass, detail: pr.Detail}
	if len(problems) > 0 {
		ce = cell{status: statusFail, detail: strings.Join(problems, "; ")}
	}
	theMatrix.set(col, c, ce)
	t.Run(c.Name, func(t *testing.T) {
		if ce.status == statusFail {
			t.Errorf("%s: %s", col.where(c), ce.detail)
		}
	})
}

// reportBox holds the peer's verdicts by case.
type reportBox struct {
	mu sync.Mutex
	ch map[string]chan peerResult
}

func newReportBox(cases []Case) *reportBox {
	b := &reportBox{ch: make(map[string]chan peerResult)}
	for _, c := range cases {
		b.ch[c.Name] = make(chan peerResult, 1)
	}
	return b
}

func (b *reportBox) put(r peerResult) {
	b.mu.Lock()
	ch, ok := b.ch[r.Case]
	b.mu.Unlock()
	if !ok {
		return
	}
	select {
	case ch <- r:
	default: // a second verdict for a case is ignored; the first one counts
	}
}

func (b *reportBox) get(name string, wait time.Duration) peerResult {
	b.mu.Lock()
	ch := b.ch[name]
	b.mu.Unlock()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r
	case <-timer.C:
		return peerResult{}
	}
}

//go:embed browser/page.html
var browserPage []byte

// ourServer is our server for one column: /case/NAME runs a case; the
// other paths serve the browser page and collect its verdicts.
type ourServer struct {
	srv  *httptest.Server
	loop *eventloop.Server // the event-loop backend's server, or nil
	// relay is in front of loop (and srv) when loop is set. It is set
	// after the servers start, so their handlers read it atomically.
	relay    atomic.Pointer[sniffRelay]
	api      API
	cases    map[string]Case
	caseList []Case
	ours     map[string]chan error

	// For the browser peer, which reports over HTTP.
	report    func(peerResult)
	userAgent chan string
	done      chan struct{}
	doneOnce  sync.Once
}

type connKey struct{}

func newOurServer(t *testing.T, cases []Case, api API, b Backend, report func(peerResult)) *ourServer {
	s := &ourServer{
		api:       api,
		report:    report,
		cases:     make(map[string]Case),
		caseList:  cases,
		ours:      make(map[string]chan error),
		userAgent: make(chan string, 1),
		done:      make(chan struct{}),
	}
	for _, c := range cases {
		s.cases[c.Name] = c
		s.ours[c.Name] = make(chan error, 1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /case/{name}", s.handleCase)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(browserPage)
	})
	mux.HandleFunc("GET /cases", func(w http.ResponseWriter, r *http.Request) {
		type item struct {
			Name string `json:"name"`
			Kind Kind   `json:"kind"`
		}
		var list []item
		for _, c := range s.caseList {
			list = append(list, item{c.Name, c.Kind})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		var res peerResult
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&res); err == nil {
			s.report(res)
		}
	})
	mux.HandleFunc("POST /hello", func(w http.ResponseWriter, r *http.Request) {
		var hello struct {
			UserAgent string `json:"userAgent"`
		}
		json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&hello)
		select {
		case s.userAgent <- hello.UserAgent:
		default:
		}
	})
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		s.doneOnce.Do(func() { close(s.done) })
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Listener = sniffListener{s.srv.Listener}
	s.srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, c)
	}
	s.srv.Start()
	t.Cleanup(s.srv.Close)
	if b == BackendHTTP {
		return s
	}
	// The event-loop backend serves the same mux; the relay in front routes
	// the cases' WebSockets to it, sniffed, and the browser's plain HTTP
	// (POSTs included, which that backend does not serve) to srv.
	s.loop = &eventloop.Server{Handler: mux, HandlersOnLoop: b == BackendEventLoopOnLoop, MaxWriteQueue: maxQueue}
	if err := s.loop.Listen("127.0.0.1:0"); err != nil {
		t.Fatalf("eventloop: %v", err)
	}
	t.Cleanup(func() { s.loop.Close() })
	relay, err := newSniffRelay(s.loop.Addr().String(), s.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s.relay.Store(relay)
	t.Cleanup(relay.close) // first, while the servers still run
	return s
}

// maxQueue is the event-loop server's MaxWriteQueue: that backend never
// blocks a sender and drops a connection whose queue would pass it, so it
// must hold the largest case's message (16 MiB) and its framing.
const maxQueue = 32 << 20

// addr is host:port of the server the peer connects to.
func (s *ourServer) addr() string {
	if r := s.relay.Load(); r != nil {
		return r.addr()
	}
	return s.srv.Listener.Addr().String()
}

// sniffOf returns the sniffer of r's connection, or nil.
func (s *ourServer) sniffOf(r *http.Request) *sniffConn {
	if relay := s.relay.Load(); relay != nil {
		return relay.sniffFor(r.RemoteAddr)
	}
	sn, _ := r.Context().Value(connKey{}).(*sniffConn)
	return sn
}

func (s *ourServer) handleCase(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	c, ok := s.cases[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	sn := s.sniffOf(r)
	if sn == nil {
		s.setResult(name, fmt.Errorf("internal: connection from %s is not sniffed", r.RemoteAddr))
		http.Error(w, "not sniffed", http.StatusInternalServerError)
		return
	}
	sn.startServer()
	ctx, cancel := context.WithTimeout(context.Background(), caseTimeout)
	defer cancel()
	var oc *ourConn
	if s.api == APIBlocking {
		conn, err := websocket.Accept(w, r, ourServerOptions(c))
		if err != nil {
			s.setResult(name, fmt.Errorf("Accept: %w", err))
			return
		}
		oc = newOurConn(ctx, conn, s.api, sn)
	} else {
		conn := websocket.NewServer(w, r, ourServerOptions(c))
		oc = newOurConn(ctx, conn, s.api, sn)
		if err := conn.Start(); err != nil {
			s.setResult(name, fmt.Errorf("Start: %w", err))
			return
		}
	}
	defer oc.c.CloseNow()
	s.setResult(name, runCase(oc, c))
}

func (s *ourServer) setResult(name string, err error) {
	select {
	case s.ours[name] <- err:
	default:
	}
}

// result is our verdict on the case, once the connection for it ended.
func (s *ourServer) result(name string, wait time.Duration) error {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case err := <-s.ours[name]:
		return err
	case <-timer.C:
		return fmt.Errorf("the peer never ran the case (no connection to /case/%s)", name)
	}
}
