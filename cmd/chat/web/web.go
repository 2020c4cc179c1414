// Package web holds the browser client, embedded in the binary so the chat
// works offline with nothing but the executable.
package web

import "embed"

// FS holds static/: index.html (with a placeholder for the WebSocket port),
// app.js, style.css and the icon.
//
//go:embed static
var FS embed.FS
