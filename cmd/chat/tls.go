package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
)

// certificate is the server's TLS certificate, loaded from -tls-cert and
// -tls-key and reloaded from them on SIGHUP. New TLS handshakes take the
// current one; connections already open keep theirs, so a reload (say,
// after a renewal) drops nobody.
type certificate struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// loadCertificate reads the pair for the first time; a mistake here stops
// the server, with the flag named.
func loadCertificate(certFile, keyFile string) (*certificate, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("-tls-cert and -tls-key go together: give both (a PEM certificate chain and its private key), or neither to serve plain HTTP")
	}
	c := &certificate{certFile: certFile, keyFile: keyFile}
	if err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// reload reads the files again. On failure the previous certificate stays
// in use.
func (c *certificate) reload() error {
	pair, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("-tls-cert %s / -tls-key %s: %w", c.certFile, c.keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return fmt.Errorf("-tls-cert %s: %w", c.certFile, err)
		}
	}
	c.cur.Store(&pair)
	return nil
}

// logAttrs describes the current certificate for the log.
func (c *certificate) logAttrs() []any {
	leaf := c.cur.Load().Leaf
	return []any{"subject", leaf.Subject.String(), "dns", leaf.DNSNames, "not_after", leaf.NotAfter, "serial", leaf.SerialNumber.String()}
}

// reloadLogged is the SIGHUP handler.
func (c *certificate) reloadLogged(log *slog.Logger) {
	if err := c.reload(); err != nil {
		log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
		return
	}
	log.Info("TLS certificate reloaded", c.logAttrs()...)
}

// config is the listeners' TLS configuration. It offers HTTP/1.1 only: a
// WebSocket handshake is an HTTP/1.1 upgrade, which HTTP/2 does not have.
func (c *certificate) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.cur.Load(), nil
		},
	}
}
