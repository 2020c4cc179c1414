package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/wsdriver/websocket/cmd/chat/internal/chat"
)

// tokenClaims are what a sign-in token says: the user's name (sub), until
// when (exp, required), and optionally the rooms the user may enter.
type tokenClaims struct {
	Rooms []string `json:"rooms,omitempty"`
	jwt.RegisteredClaims
}

// identity is a verified user.
type identity struct {
	nick    string
	rooms   []string // nil: every room
	expires time.Time
}

// authError is a refused sign-in: the HTTP status (401 for a missing or bad
// token, 403 for a good token that does not allow what was asked) and the
// reason, which is told to the client.
type authError struct {
	status int
	reason string
}

func (e *authError) Error() string { return e.reason }

// tokenOf finds a request's token: "Authorization: Bearer" (programs), or
// the token query parameter (browsers, whose WebSocket API cannot set
// headers).
func tokenOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.URL.Query().Get("token")
}

// authenticate checks r's token for room. With no -auth-secret everyone is
// anonymous and it returns nil, nil.
func (s *Server) authenticate(r *http.Request, room string) (*identity, error) {
	if len(s.cfg.AuthSecret) == 0 {
		return nil, nil
	}
	raw := tokenOf(r)
	if raw == "" {
		return nil, &authError{http.StatusUnauthorized, "sign-in required: this chat needs a token (Authorization: Bearer TOKEN, or ?token=TOKEN)"}
	}
	var c tokenClaims
	_, err := jwt.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return s.cfg.AuthSecret, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(30*time.Second))
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		at := ""
		if c.ExpiresAt != nil {
			at = " at " + c.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return nil, &authError{http.StatusUnauthorized, "token expired" + at + "; sign in again"}
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return nil, &authError{http.StatusUnauthorized, "token refused: it has no expiry (exp)"}
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, &authError{http.StatusUnauthorized, "token refused: its signature does not match this chat's -auth-secret"}
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return nil, &authError{http.StatusUnauthorized, "token refused: not valid yet (nbf)"}
	default:
		return nil, &authError{http.StatusUnauthorized, "token refused: " + err.Error()}
	}
	if err := chat.ValidNick(c.Subject); err != nil {
		return nil, &authError{http.StatusUnauthorized, "token refused: its subject (sub) is not a usable name: " + err.Error()}
	}
	id := &identity{nick: c.Subject, rooms: c.Rooms, expires: c.ExpiresAt.Time}
	if id.rooms != nil {
		for i, r := range id.rooms {
			id.rooms[i] = strings.ToLower(r)
		}
		if !slices.Contains(id.rooms, room) {
			return nil, &authError{http.StatusForbidden, fmt.Sprintf("your token does not allow room %q (it allows: %s)", room, strings.Join(id.rooms, ", "))}
		}
	}
	return id, nil
}

// refuseAuth answers a refused sign-in.
func refuseAuth(w http.ResponseWriter, err error) {
	var ae *authError
	if !errors.As(err, &ae) {
		ae = &authError{http.StatusUnauthorized, err.Error()}
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="chat", error="invalid_token", error_description=%q`, ae.reason))
	}
	http.Error(w, ae.reason, ae.status)
}

// authCheck is GET /auth/check?room=R: the browser page asks it why its
// WebSocket was refused, since a page cannot see a refused handshake's
// status. It answers in JSON: {"nick","rooms","expires"} or {"error"}.
func (s *Server) authCheck(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	room := strings.ToLower(r.URL.Query().Get("room"))
	if room == "" {
		room = chat.DefaultRoom
	}
	id, err := s.authenticate(r, room)
	if err != nil {
		var ae *authError
		errors.As(err, &ae)
		w.WriteHeader(ae.status)
		json.NewEncoder(w).Encode(map[string]string{"error": ae.reason})
		return
	}
	if id == nil {
		json.NewEncoder(w).Encode(map[string]any{"anonymous": true})
		return
	}
	json.NewEncoder(w).Encode(map[string]any{"nick": id.nick, "rooms": id.rooms, "expires": id.expires.UnixMilli()})
}
