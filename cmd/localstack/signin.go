package main

import (
	"fmt"
	"net/url"
)

// pageLink is the Settings page (API.md §8) opened for tenant and signed
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
