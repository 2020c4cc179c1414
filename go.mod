module github.com/wsdriver/websocket

go 1.24
