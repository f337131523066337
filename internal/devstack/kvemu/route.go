package kvemu

import (
	"net/http"
	"strings"
)

// route is a parsed data-plane request.
type route struct {
	op      string // permission/operation name, also logged
	action  string // what to do
	name    string // key name
	version string // "" = current
	crypto  string // for action "crypto": "wrapKey", "unwrapKey", "encrypt", "decrypt", "sign", "verify"
}

var cryptoSegments = map[string]string{
	"wrapkey": "wrapKey", "unwrapkey": "unwrapKey", "encrypt": "encrypt",
	"decrypt": "decrypt", "sign": "sign", "verify": "verify",
}

// parseRoute maps method and path to an operation. Versions are 32 hex
// digits, so they never collide with the reserved segments; azkeys sends
// both "/keys/k/" (trailing slash) and "/keys/k/wrapkey" for "no version".
func parseRoute(method, path string) (route, *apiError) {
	seg := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(seg) > 0 && seg[len(seg)-1] == "" && len(seg) > 1 {
		seg = seg[:len(seg)-1] // "/keys/k/" == "/keys/k"
	}
	bad := func() (route, *apiError) {
		return route{op: "unknown"}, errorf(http.StatusNotFound, "NotFound", "",
			"The emulator does not serve %s %s.", method, path)
	}
	want := func(rt route, m string) (route, *apiError) {
		if method != m {
			return route{op: rt.op}, errorf(http.StatusMethodNotAllowed, "MethodNotAllowed", "",
				"The requested resource does not support http method '%s'.", method)
		}
		return rt, nil
	}
	switch {
	case len(seg) == 1 && seg[0] == "keys":
		return want(route{op: "list", action: "listKeys"}, http.MethodGet)
	case len(seg) == 1 && seg[0] == "deletedkeys":
		return want(route{op: "list", action: "listDeleted"}, http.MethodGet)
	case len(seg) >= 2 && seg[0] == "deletedkeys":
		rt := route{name: seg[1]}
		if !keyNameRE.MatchString(rt.name) {
			return route{op: "get"}, badParameter("The request URI contains an invalid name: %s", rt.name)
		}
		switch {
		case len(seg) == 2 && method == http.MethodGet:
			rt.op, rt.action = "get", "getDeleted"
		case len(seg) == 2 && method == http.MethodDelete:
			rt.op, rt.action = "purge", "purge"
		case len(seg) == 3 && seg[2] == "recover":
			rt.op, rt.action = "recover", "recover"
			return want(rt, http.MethodPost)
		default:
			return bad()
		}
		return rt, nil
	case len(seg) < 2 || len(seg) > 4 || seg[0] != "keys":
		return bad()
	}

	rt := route{name: seg[1]}
	if rt.name == "restore" && len(seg) == 2 && method == http.MethodPost {
		return route{op: "restore"}, badParameter("The emulator does not implement key restore.")
	}
	if !keyNameRE.MatchString(rt.name) {
		return route{op: "get"}, badParameter("The request URI contains an invalid name: %s", rt.name)
	}
	if len(seg) == 2 {
		switch method {
		case http.MethodGet:
			rt.op, rt.action = "get", "get"
		case http.MethodPatch:
			rt.op, rt.action = "update", "update"
		case http.MethodDelete:
			rt.op, rt.action = "delete", "delete"
		case http.MethodPut:
			return route{op: "import"}, badParameter("The emulator does not implement key import.")
		default:
			return want(route{op: "get"}, http.MethodGet)
		}
		return rt, nil
	}
	third := seg[2]
	if len(seg) == 3 {
		switch third {
		case "create":
			rt.op, rt.action = "create", "create"
			return want(rt, http.MethodPost)
		case "rotate":
			rt.op, rt.action = "rotate", "rotate"
			return want(rt, http.MethodPost)
		case "versions":
			rt.op, rt.action = "list", "listVersions"
			return want(rt, http.MethodGet)
		case "backup", "rotationpolicy", "release":
			return route{op: third}, badParameter("The emulator does not implement %s.", third)
		}
		if op, ok := cryptoSegments[third]; ok {
			rt.op, rt.action, rt.crypto = op, "crypto", op
			return want(rt, http.MethodPost)
		}
		rt.version = third
		switch method {
		case http.MethodGet:
			rt.op, rt.action = "get", "get"
		case http.MethodPatch:
			rt.op, rt.action = "update", "update"
		default:
			return want(route{op: "get"}, http.MethodGet)
		}
		return rt, nil
	}
	op, ok := cryptoSegments[seg[3]]
	if !ok {
		return bad()
	}
	rt.op, rt.action, rt.crypto, rt.version = op, "crypto", op, third
	return want(rt, http.MethodPost)
}
