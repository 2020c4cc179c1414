//go:build !linux

package websocket

import "errors"

// pollSupported is false where the library has no poller of its own: event
// loops keep their goroutine while idle.
const pollSupported = false

// poller is never created on this platform.
type poller struct{}

func sharedPoller() (*poller, error)  { return nil, errors.New("websocket: no poller on this platform") }
func (p *poller) add(c *Conn, fd int) {}
func (p *poller) remove(c *Conn)      {}
func (p *poller) arm(c *Conn) bool    { return false }

// polledConns reports how many connections the poller holds (tests).
func polledConns() int { return 0 }
