package authz

import (
	"bytes"
	"cmp"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
)

// This file is the HTTP entry point; a tools/call reads top to bottom in
// the handler below: identity, body, parse and headers (rpc.go), subject
// (subject.go), decision (operation.go), audit (authorizer.go), then 403
// or the handler with the same bytes (lists: filter.go).

// JSON-RPC error codes used in responses.
const (
	CodeParseError     = -32700 // malformed JSON
	CodeInvalidRequest = -32600 // batch, duplicate keys, not a JSON-RPC message, body too large
	CodeInvalidParams  = -32602 // a tools/call without a name, …
	CodeMethodNotFound = -32601 // a method authz does not know (see "Unknown methods" in the package documentation)
	CodeInternalError  = -32603 // a list response that could not be filtered
	CodeHeaderMismatch = -32020 // MCP 2026-07-28 HeaderMismatch
	// CodeForbidden is the code of a policy denial. It is in the range
	// JSON-RPC leaves to implementations (-32000 to -32019 in MCP's
	// allocation) and is not used by the MCP specification.
	CodeForbidden = -32010
)

// Fixed public messages: a response never carries policy text or causes.
const (
	msgForbidden      = "Forbidden"
	msgParse          = "Parse error"
	msgInvalidRequest = "Invalid Request"
	msgInvalidParams  = "Invalid params"
	msgMethodNotFound = "Method not found"
	msgHeaderMismatch = "Header mismatch: Mcp-Method or Mcp-Name does not match the request body"
	msgTooLarge       = "Invalid Request: body too large"
	msgInternal       = "Internal error"
)

// Middleware returns next wrapped with policy enforcement. It must run after
// authn's middleware: a request without a verified identity in its context
// (authn.FromContext) is denied. For each POST it reads the body once (up to
// Config.MaxBodyBytes), answers malformed or ambiguous bodies with HTTP 400,
// checks Mcp-Method/Mcp-Name, decides, and either answers 403 or calls next
// with a body holding the identical bytes. Responses to tools/list,
// prompts/list, resources/list and resources/templates/list are buffered and
// filtered; every other response streams through untouched. Requests with
// other HTTP methods and no body (GET, DELETE of 2025-11-25 sessions) carry
// no JSON-RPC request and are passed on once an identity is present; one
// with a body is authorized like a POST.
func (a *Authorizer) Middleware(next http.Handler) http.Handler {
	return a.middleware(next, a.cfg.ResourceMetadataURL)
}

// MiddlewareWithResourceMetadata is Middleware whose step-up challenges
// carry resourceMetadataURL as resource_metadata (RFC 9728 §5.1) when
// Config.ResourceMetadataURL is empty (a configured one wins).
// middleware.Protect calls it with the URL of the metadata document it
// serves, so that challenges need no manual wiring.
func (a *Authorizer) MiddlewareWithResourceMetadata(next http.Handler, resourceMetadataURL string) http.Handler {
	return a.middleware(next, cmp.Or(a.cfg.ResourceMetadataURL, resourceMetadataURL))
}

func (a *Authorizer) middleware(next http.Handler, resourceMetadataURL string) http.Handler {
	// The refusals are answered by functions of their own (refuse, deny)
	// so that this function's frame, which stays on the goroutine's stack
	// under the parse, the decision and the handler, is small: a
	// connection's goroutine whose request path fits in 8 KB keeps that
	// stack, where a larger one is shrunk by every garbage collection and
	// grown again, by copying it, on the next request.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info, ok := authn.FromContext(r.Context())
		if !ok || info == nil || info.Subject == "" {
			a.refuse(w, r, time.Time{}, "", "", "no identity", http.StatusForbidden, nil, CodeForbidden, msgForbidden)
			return
		}
		if r.Method != http.MethodPost && r.ContentLength == 0 {
			// No body (net/http reports -1 for a body of unknown length):
			// nothing to authorize. A body is authorized whatever the
			// method, for handlers that decode it whatever the method.
			next.ServeHTTP(w, r)
			return
		}
		body, rb, err := readBody(r, a.cfg.MaxBodyBytes)
		start := a.decisionStart() // zero, without reading the clock, when unobserved
		if err != nil {
			writeRPCError(w, http.StatusBadRequest, nil, CodeParseError, msgParse)
			return
		}
		if r.Method != http.MethodPost && len(body) == 0 {
			// An empty body of unknown length (an HTTP/2 GET whose end of
			// stream comes in a DATA frame).
			r.Body, r.ContentLength = http.NoBody, 0
			next.ServeHTTP(w, r)
			return
		}
		if int64(len(body)) > a.cfg.MaxBodyBytes {
			a.refuse(w, r, start, info.Subject, "", "body too large", http.StatusRequestEntityTooLarge, nil, CodeInvalidRequest, msgTooLarge)
			return
		}
		// The parse, the entity view and the decision's policy ids live in
		// memory borrowed for this request.
		sc := scratches.Get().(*scratch)
		defer sc.release()
		req := &sc.req
		if err := req.parse(&sc.parser, body); err != nil {
			code, msg := CodeInvalidRequest, msgInvalidRequest
			if errors.Is(err, ErrParse) {
				code, msg = CodeParseError, msgParse
			}
			a.refuse(w, r, start, info.Subject, "", err.Error(), http.StatusBadRequest, req.id, code, msg)
			return
		}
		req.header = r.Header // its MCP-Protocol-Version is read for a removed method only
		if err := checkHeaders(r.Header, req); err != nil {
			a.refuse(w, r, start, info.Subject, req.method, "header mismatch", http.StatusBadRequest, req.id, CodeHeaderMismatch, msgHeaderMismatch)
			return
		}
		sub := a.subjectFor(info)
		if sub == nil {
			// Named with its issuer: that is what the log reader must fix
			// (Config.Issuers).
			a.refuse(w, r, start, info.Issuer+issuerSeparator+info.Subject, req.method, reasonIssuer, http.StatusForbidden, req.id, CodeForbidden, msgForbidden)
			return
		}
		ps := a.policies.Load()
		if !a.allow(w, r, start, ps, sub, req, sc, resourceMetadataURL) {
			return
		}
		if rb == nil {
			rb = &replayBody{}
		}
		rb.Reset(body)
		r.Body = rb
		r.ContentLength = int64(len(body))
		if !req.isResponse && req.mcp.kind == kindList {
			a.serveFiltered(w, r, next, ps, sub, &req.mcp)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allow decides req, logs the decision and reports whether the request
// may go on; when it may not, the response is written.
func (a *Authorizer) allow(w http.ResponseWriter, r *http.Request, start time.Time, ps *policySet, sub *subject, req *rpcRequest, sc *scratch, resourceMetadataURL string) bool {
	d, err := a.decide(ps, sub, req, sc)
	if err != nil {
		a.refuse(w, r, start, sub.id, req.method, err.Error(), http.StatusBadRequest, req.id, CodeInvalidParams, msgInvalidParams)
		return false
	}
	a.log(r.Context(), start, sub.id, req.method, d)
	if d.Allowed {
		return true
	}
	a.deny(w, r, req, &d, resourceMetadataURL)
	return false
}

// deny answers a request that d denies.
func (a *Authorizer) deny(w http.ResponseWriter, r *http.Request, req *rpcRequest, d *Decision, resourceMetadataURL string) {
	if d.Reason == reasonUnknownMethod {
		// No policy was asked (revision.go).
		writeRPCError(w, unknownMethodStatus(r.Header), req.id, CodeMethodNotFound, msgMethodNotFound)
		return
	}
	if len(d.Scopes) > 0 {
		w.Header().Set("WWW-Authenticate", authn.Challenge{
			Error:            "insufficient_scope",
			ErrorDescription: "The request requires higher privileges than provided by the access token.",
			Scopes:           d.Scopes,
			ResourceMetadata: resourceMetadataURL,
		}.String())
	}
	writeRPCError(w, http.StatusForbidden, req.id, CodeForbidden, msgForbidden)
}

// refuse logs a refusal for reason and answers it with a JSON-RPC error.
func (a *Authorizer) refuse(w http.ResponseWriter, r *http.Request, start time.Time, sub, method, reason string, status int, id []byte, code int, msg string) {
	a.log(r.Context(), start, sub, method, Decision{Reason: reason})
	writeRPCError(w, status, id, code, msg)
}

// writeRPCError writes a JSON-RPC error response. id is the raw request id
// literal (nil for null).
func writeRPCError(w http.ResponseWriter, status int, id []byte, code int, msg string) {
	if id == nil {
		id = []byte("null")
	}
	b := make([]byte, 0, 96+len(id)+len(msg))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":{"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"message":`...)
	b = strconv.AppendQuote(b, msg)
	b = append(b, "}}\n"...)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// readBody reads at most limit+1 bytes of the request body and closes it,
// sizing the buffer from Content-Length when it is declared and in range.
// A body of at most smallBody bytes is read into the array of a new
// smallReplay of the smallest of a few sizes that holds it, whose
// replayBody it also returns (one allocation for both); otherwise rb is nil.
func readBody(r *http.Request, limit int64) (body []byte, rb *replayBody, err error) {
	defer r.Body.Close()
	if n := r.ContentLength; n >= 0 && n <= limit {
		var buf []byte
		if n <= smallBody {
			buf, rb = newSmallReplay(int(n))
		} else {
			buf = make([]byte, n, n+1)
		}
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, nil, err
		}
		// A body longer than declared is an error of its own in net/http;
		// read one more byte (into the spare capacity, so that nothing
		// else is allocated) so a lying client cannot pass the cap.
		if m, _ := r.Body.Read(buf[n : n+1]); m > 0 {
			rest, err := io.ReadAll(io.LimitReader(r.Body, limit))
			return append(buf[:n+1], rest...), nil, err
		}
		return buf, rb, nil
	}
	body, err = io.ReadAll(io.LimitReader(r.Body, limit+1))
	return body, nil, err
}

// replayBody hands the handler the bytes that were authorized.
type replayBody struct{ bytes.Reader }

// Close implements io.Closer.
func (*replayBody) Close() error { return nil }

// smallBody is the largest body read into a smallReplay: a tools/call with
// its _meta is some 300 to 500 bytes.
const smallBody = 512

// smallReplay is a replayBody with the array A its body is read into
// (plus the byte readBody probes past Content-Length).
type smallReplay[A any] struct {
	rb  replayBody
	buf A
}

// newSmallReplay returns a buffer of n bytes (n <= smallBody, with one
// byte of spare capacity) and a replayBody, in one allocation of the
// smallest of four sizes that fits: each array makes the object fill an
// allocation size class (256, 384, 512 and 576 bytes with the replayBody's
// 40), so a small body does not cost the largest (less for the garbage
// collector, which runs once per few MB allocated).
func newSmallReplay(n int) ([]byte, *replayBody) {
	switch {
	case n < 216:
		sr := new(smallReplay[[216]byte])
		return sr.buf[: n : n+1], &sr.rb
	case n < 344:
		sr := new(smallReplay[[344]byte])
		return sr.buf[: n : n+1], &sr.rb
	case n < 472:
		sr := new(smallReplay[[472]byte])
		return sr.buf[: n : n+1], &sr.rb
	}
	sr := new(smallReplay[[smallBody + 1]byte])
	return sr.buf[: n : n+1], &sr.rb
}
