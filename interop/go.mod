module github.com/wsdriver/websocket/interop

go 1.24

require (
	github.com/coder/websocket v1.8.15
	github.com/gorilla/websocket v1.5.3
	github.com/wsdriver/websocket v0.0.0
)

require golang.org/x/net v0.40.0

replace github.com/wsdriver/websocket => ..
