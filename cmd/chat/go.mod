module github.com/wsdriver/websocket/cmd/chat

go 1.25.0

require (
	github.com/chromedp/chromedp v0.22.1
	github.com/wsdriver/websocket v0.0.0-00010101000000-000000000000
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/chromedp/cdproto v0.159.0 // indirect
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	golang.org/x/sys v0.45.0 // indirect
)

replace github.com/wsdriver/websocket => ../..
