package runner

import (
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// route is one HTTP function's route template, e.g.
// "tenants/{tenant}/backups/{backupId?}", matched like ASP.NET Core routing
// does for the host: literals case-insensitively, {p} one segment, {p?} an
// optional trailing segment, {*p} the rest; ":constraint" suffixes are
// accepted and not enforced.
type route struct {
	function string
	segs     []routeSeg
	methods  map[string]bool // nil: any method
	forward  bool
	literals int
}

type routeSeg struct {
	literal  string
	param    string
	optional bool
	catchAll bool
}

func parseRoute(function, template string, methods []string, forward bool) (*route, error) {
	rt := &route{function: function, forward: forward}
	template = strings.Trim(template, "/")
	if template != "" {
		parts := strings.Split(template, "/")
		for i, p := range parts {
			var s routeSeg
			switch {
			case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
				name := p[1 : len(p)-1]
				if n, _, ok := strings.Cut(name, ":"); ok {
					name = n
				}
				if strings.HasPrefix(name, "*") {
					s.catchAll, name = true, strings.TrimLeft(name, "*")
				}
				if strings.HasSuffix(name, "?") {
					s.optional, name = true, strings.TrimSuffix(name, "?")
				}
				if name == "" {
					return nil, fmt.Errorf("function %s: route %q has an empty parameter", function, template)
				}
				if (s.optional || s.catchAll) && i != len(parts)-1 {
					return nil, fmt.Errorf("function %s: route %q: only the last segment may be optional or catch-all", function, template)
				}
				s.param = name
			case strings.ContainsAny(p, "{}"):
				return nil, fmt.Errorf("function %s: route %q: mixed literal and parameter segments are not supported by the runner", function, template)
			default:
				s.literal = p
				rt.literals++
			}
			rt.segs = append(rt.segs, s)
		}
	}
	if len(methods) > 0 {
		rt.methods = map[string]bool{}
		for _, m := range methods {
			rt.methods[strings.ToUpper(m)] = true
		}
	}
	return rt, nil
}

// match reports whether path (below the route prefix, no leading slash)
// fits the template, and the route values.
func (rt *route) match(path string) (map[string]string, bool) {
	var parts []string
	if path = strings.Trim(path, "/"); path != "" {
		parts = strings.Split(path, "/")
	}
	vals := map[string]string{}
	for i, s := range rt.segs {
		if i >= len(parts) {
			if s.optional || s.catchAll {
				return vals, true
			}
			return nil, false
		}
		seg, err := url.PathUnescape(parts[i])
		if err != nil {
			return nil, false
		}
		switch {
		case s.catchAll:
			vals[s.param] = strings.Join(parts[i:], "/")
			return vals, true
		case s.param != "":
			if seg == "" {
				return nil, false
			}
			vals[s.param] = seg
		case !strings.EqualFold(s.literal, seg):
			return nil, false
		}
	}
	if len(parts) != len(rt.segs) {
		return nil, false
	}
	return vals, true
}

// sortRoutes orders routes so more specific templates are tried first.
func sortRoutes(rs []*route) {
	sort.SliceStable(rs, func(i, j int) bool {
		if rs[i].literals != rs[j].literals {
			return rs[i].literals > rs[j].literals
		}
		return len(rs[i].segs) > len(rs[j].segs)
	})
}
