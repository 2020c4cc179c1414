module github.com/wsdriver/websocket/cmd/chat

go 1.25.0

require (
	github.com/wsdriver/websocket v0.0.0-00010101000000-000000000000
	go.etcd.io/bbolt v1.5.0
)

require golang.org/x/sys v0.45.0 // indirect

replace github.com/wsdriver/websocket => ../..
