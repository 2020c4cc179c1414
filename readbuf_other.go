//go:build !unix

package websocket

const idleReadSupported = false

func (c *Conn) rawRead(fd uintptr) bool { return true }
