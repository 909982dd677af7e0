package middleware

import (
	"net/http"
	"slices"
	"strings"

	"github.com/mcpauth-go/mcpauth/authn"
)

// withStepUpScopes makes an insufficient_scope challenge answered from
// behind authentication (an authorizer's step-up, or the handler's) name the
// scopes authentication requires of this request as well as the ones the
// challenge asks for. A token granted only the challenged scopes would be
// refused by authentication on the retry, and a client that requests exactly
// the challenged scopes (the MCP TypeScript SDK does) would then alternate
// between two challenges forever; the MCP authorization specification asks
// servers to name every scope the operation needs in one challenge.
func withStepUpScopes(opts authn.Options, next http.Handler) http.Handler {
	if len(opts.Scopes) == 0 && opts.ScopesFor == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		required := opts.Scopes
		if opts.ScopesFor != nil {
			required = unionScopes(required, opts.ScopesFor(r))
		}
		if len(required) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&stepUpWriter{ResponseWriter: w, required: required}, r)
	})
}

// stepUpWriter rewrites the scope of a 403 insufficient_scope challenge.
type stepUpWriter struct {
	http.ResponseWriter
	required []string
	wrote    bool
}

func (w *stepUpWriter) WriteHeader(code int) {
	if !w.wrote && code == http.StatusForbidden {
		mergeChallengeScopes(w.Header(), w.required)
	}
	if code >= 200 {
		w.wrote = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *stepUpWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Flush flushes the underlying writer when it can (event streams).
func (w *stepUpWriter) Flush() {
	w.wrote = true
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *stepUpWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// mergeChallengeScopes prepends required to the scope parameter of every
// Bearer insufficient_scope challenge in h, without duplicates.
func mergeChallengeScopes(h http.Header, required []string) {
	values := h.Values("WWW-Authenticate")
	changed := false
	for i, v := range values {
		var isScopeErr bool
		scopeAt := [2]int{-1, -1}
		for _, p := range authParams(v) {
			switch {
			case strings.EqualFold(p.name, "error"):
				isScopeErr = v[p.start:p.end] == "insufficient_scope"
			case strings.EqualFold(p.name, "scope") && p.quoted:
				scopeAt = [2]int{p.start, p.end}
			}
		}
		if !isScopeErr || scopeAt[0] < 0 || strings.ContainsAny(v[scopeAt[0]:scopeAt[1]], `\"`) {
			continue
		}
		merged := strings.Join(unionScopes(required, strings.Fields(v[scopeAt[0]:scopeAt[1]])), " ")
		values[i] = v[:scopeAt[0]] + merged + v[scopeAt[1]:]
		changed = true
	}
	if changed {
		h["WWW-Authenticate"] = values
	}
}

// authParam is one name=value parameter of a challenge; start and end
// delimit its value in the header (inside the quotes when quoted).
type authParam struct {
	name       string
	start, end int
	quoted     bool
}

// authParams returns the parameters of a one-challenge header value such as
// `Bearer error="insufficient_scope", scope="a b"` (RFC 9110 §11.2), skipping
// the scheme. Quoted values may hold escapes and commas; a malformed tail
// ends the list.
func authParams(v string) []authParam {
	var out []authParam
	i := strings.IndexAny(v, " \t")
	if i < 0 {
		return nil
	}
	for i < len(v) {
		for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == ',') {
			i++
		}
		eq := strings.IndexByte(v[i:], '=')
		if eq <= 0 {
			return out
		}
		p := authParam{name: strings.TrimSpace(v[i : i+eq])}
		i += eq + 1
		for i < len(v) && (v[i] == ' ' || v[i] == '\t') {
			i++
		}
		if i < len(v) && v[i] == '"' {
			p.quoted, p.start = true, i+1
			for i++; i < len(v) && v[i] != '"'; i++ {
				if v[i] == '\\' {
					i++
				}
			}
			if i >= len(v) {
				return out
			}
			p.end = i
			i++
		} else {
			p.start = i
			for i < len(v) && v[i] != ',' && v[i] != ' ' && v[i] != '\t' {
				i++
			}
			p.end = i
		}
		out = append(out, p)
	}
	return out
}

// unionScopes returns a followed by the scopes of b not in a.
func unionScopes(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, s := range b {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
