package main

import (
	"fmt"
	"io"
	"net/url"
)

// pageLink is the Settings page (contract §8) opened for tenant and signed
// in with a development token: ?tenant= picks the tenant, #token= is a
// token source the page reads (internal/edge/ui/static/app.js). A fragment
// never reaches a server, and the page removes it from the address bar.
func (s *stack) pageLink(base, tenant string, roles ...string) (string, error) {
	tok, err := s.issuer.Token(tenant, roles...)
	if err != nil {
		return "", fmt.Errorf("mint a development token: %w", err)
	}
	return base + "/api/ui/?tenant=" + url.QueryEscape(tenant) + "#token=" + url.QueryEscape(tok), nil
}

// printPageLink prints the link a person opens after the stack is up:
// the page signed in as the tenant's administrator and operator.
func (s *stack) printPageLink(w io.Writer, tenant string) {
	link, err := s.pageLink(s.BaseURL(), tenant, "byok.admin", "backup.operator")
	if err != nil {
		s.cfg.Log.Warn("no Settings page link", "err", err)
		return
	}
	fmt.Fprintf(w, "\nSettings page for tenant %q, signed in for 1 h (byok.admin, backup.operator):\n  %s\n", tenant, link)
}
