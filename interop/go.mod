module github.com/wsdriver/websocket/interop

go 1.24

require github.com/wsdriver/websocket v0.0.0

replace github.com/wsdriver/websocket => ..
