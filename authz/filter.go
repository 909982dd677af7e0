package authz

import (
	"bytes"
	"errors"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file filters list responses: the handler's response is buffered,
// each list result (JSON or event stream) rewritten without the items the
// caller may not use and marked private, or refused when it cannot be.

var errFilter = errors.New("authz: list response cannot be filtered")

var resultMembers = []string{"result"}

// serveFiltered runs next with a buffering writer and writes its response
// with the list items the caller may not use removed. A 2xx response that
// cannot be filtered (unknown content type, a Content-Encoding, malformed or
// ambiguous JSON, over Config.MaxResponseBytes) is replaced by a JSON-RPC
// internal error: the list
// is never passed on unfiltered.
func (a *Authorizer) serveFiltered(w http.ResponseWriter, r *http.Request, next http.Handler, ps *policySet, sub *subject, mp *mcpMethod) {
	m := *mp // a copy: *mp is in the request's scratch
	lb := listBufferPool.Get().(*listBuffers)
	defer lb.release() // after the response is written: a Writer keeps nothing
	bw := &bufferWriter{header: http.Header{}, max: a.cfg.MaxResponseBytes, buf: &lb.resp}
	next.ServeHTTP(bw, r)
	status := bw.status
	if status == 0 {
		status = http.StatusOK
	}
	out := bw.buf.Bytes()
	// A list result is filtered whatever the status it comes with (a
	// tools/list result sent with HTTP 500 is still a list); 1xx statuses
	// other than 101 are not final (see bufferWriter.WriteHeader).
	if len(out) > 0 || bw.overflow {
		start := a.filterStart() // zero, without reading the clock, when unobserved
		f := &lb.filter
		*f = listFilter{a: a, ps: ps, sub: sub, m: m, msgBuf: lb.msg[:0], sseBuf: lb.sse[:0], keep: f.keep[:0]}
		var err error
		if bw.overflow || encoded(bw.header) {
			err = errFilter
		} else {
			out, err = f.filterBody(bw.header.Get("Content-Type"), out)
		}
		lb.msg, lb.sse = f.msgBuf, f.sseBuf // grown, for the next response
		if err != nil {
			a.log(r.Context(), start, sub.id, listMethod(m), Decision{Reason: "unfilterable list response"})
			if status < 400 {
				status = http.StatusInternalServerError
			}
			writeRPCError(w, status, nil, CodeInternalError, msgInternal)
			return
		}
		if f.lists > 0 {
			// The result is this caller's: no shared cache may keep it.
			bw.header.Set("Cache-Control", privateCacheControl(bw.header.Values("Cache-Control")))
			a.logFilter(r, start, sub, m, f.kept, f.removed)
		}
	}
	h := w.Header()
	for k, v := range bw.header {
		h[k] = v
	}
	if h.Get("Content-Length") != "" {
		h.Set("Content-Length", strconv.Itoa(len(out)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// privateCacheControl returns the handler's Cache-Control directives
// without those that allow or tune shared caching (public, s-maxage,
// proxy-revalidate), led by private (RFC 9111 §5.2.2.7).
func privateCacheControl(values []string) string {
	out := "private"
	for _, v := range values {
		for _, d := range strings.Split(v, ",") {
			d = strings.TrimSpace(d)
			name, _, _ := strings.Cut(d, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "", "public", "private", "s-maxage", "proxy-revalidate":
				continue
			}
			out += ", " + d
		}
	}
	return out
}

// encoded reports whether a response has a content coding other than
// identity. Such a body cannot be read here, and an event-stream parser
// would find no events in it and pass it on whole for the client to decode.
func encoded(h http.Header) bool {
	for _, v := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return true
			}
		}
	}
	return false
}

func (a *Authorizer) logFilter(r *http.Request, start time.Time, sub *subject, m mcpMethod, kept, removed int) {
	a.observeFilter(r.Context(), start, m, kept, removed) // Config.Observer (observe.go)
	if a.cfg.Logger == nil || kept+removed == 0 {
		return
	}
	a.cfg.Logger.InfoContext(r.Context(), "authz list filtered",
		"principal", sub.id, "list", m.listKey, "kept", kept, "removed", removed)
}

// listBuffers is the memory one filtered list response borrows from
// listBufferPool: the handler's response as buffered and the rewritten
// message and event stream. It goes back once the response is written
// (io.Writer implementations must not keep what they are given); a
// buffer grown past maxPooledListBuffer is left to the collector.
type listBuffers struct {
	resp     bytes.Buffer
	msg, sse []byte
	filter   listFilter
}

const maxPooledListBuffer = 1 << 20

var listBufferPool = sync.Pool{New: func() any { return new(listBuffers) }}

func (lb *listBuffers) release() {
	if lb.resp.Cap() > maxPooledListBuffer || cap(lb.msg) > maxPooledListBuffer || cap(lb.sse) > maxPooledListBuffer || cap(lb.filter.keep) > maxPooledListBuffer {
		return
	}
	lb.resp.Reset()
	lb.msg, lb.sse = lb.msg[:0], lb.sse[:0]
	lb.filter = listFilter{keep: lb.filter.keep[:0]} // no references to this response
	listBufferPool.Put(lb)
}

// bufferWriter collects a handler's response for filtering.
type bufferWriter struct {
	header   http.Header
	status   int
	buf      *bytes.Buffer
	max      int64
	overflow bool
}

func (b *bufferWriter) Header() http.Header { return b.header }

// WriteHeader records the first final status. As in net/http, 1xx statuses
// other than 101 are informational and precede the final status; they are
// not forwarded.
func (b *bufferWriter) WriteHeader(status int) {
	if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
		return
	}
	if b.status == 0 {
		b.status = status
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.overflow || int64(b.buf.Len()+len(p)) > b.max {
		b.overflow = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Flush is a no-op: the response is sent once complete and filtered.
func (b *bufferWriter) Flush() {}

// listFilter removes unauthorized items from one list response.
type listFilter struct {
	a             *Authorizer
	ps            *policySet
	sub           *subject
	m             mcpMethod
	lists         int // list results seen
	kept, removed int
	sc            scratch // the memory each item's evaluation reuses
	// msgBuf and sseBuf are where filterMessage and filterSSE write (a
	// message's rewrite is consumed before the next message is filtered);
	// keep is filterMessage's verdict per item.
	msgBuf, sseBuf []byte
	keep           []bool
}

func (f *listFilter) filterBody(contentType string, body []byte) ([]byte, error) {
	mt := contentType
	if strings.ContainsAny(contentType, "; \t") || strings.ToLower(contentType) != contentType {
		// Parameters, spaces or capitals: the full parse (which also
		// refuses malformed parameters).
		var err error
		if mt, _, err = mime.ParseMediaType(contentType); err != nil {
			return nil, errFilter
		}
	}
	switch mt {
	case "application/json":
		return f.filterMessage(body)
	case "text/event-stream":
		return f.filterSSE(body)
	}
	return nil, errFilter
}

// filterMessage filters one JSON-RPC response message. Anything but the
// removed array elements is copied byte for byte.
func (f *listFilter) filterMessage(msg []byte) ([]byte, error) {
	p := responseParsers.Get().(*jsonread.Parser)
	defer putResponseParser(p)
	memo := &f.ps.lists
	sh, delta, found := memo.find(msg, f.m.listKey, f.a.annotations.version.Load(), p)
	if !found {
		var local listShape
		sh = &local
		out, done, err := f.parseShape(p, msg, sh)
		if done {
			return out, err
		}
		if !sh.unshared && memo.admit(sh) {
			if stored := memo.store(sh); stored != nil {
				sh = stored // its verdicts are remembered below
			}
		}
	}
	f.lists++
	keep, n := f.verdicts(sh)
	f.kept += n
	f.removed += len(sh.items) - n
	return f.rewrite(msg, sh, delta, keep, n), nil
}

// parseShape parses msg and reads its list into sh (pointing into msg and
// p's memory), recording tool annotations. done is true when msg is not to
// be filtered: then out is msg (an error response, a message that is not
// the result, a result without the list) or err is errFilter.
func (f *listFilter) parseShape(p *jsonread.Parser, msg []byte, sh *listShape) (out []byte, done bool, err error) {
	// One pass over the bytes: every value is checked (syntax, UTF-8,
	// duplicate and case-variant names), but only the message, result, the
	// list and each item's members are kept; deeper values (annotations,
	// the insides of input schemas) are known by their spans. The tree
	// lives in a recycled parser's memory until the message is rewritten.
	// A case variant of "result" or of the list member would be the list to
	// a case-insensitive client decoder (encoding/json) but not to Get.
	root, err := p.Parse(msg, jsonread.Options{KeepDepth: 4})
	if err != nil || root.Kind != jsonread.Object || root.CaseVariant(resultMembers) {
		return nil, true, errFilter
	}
	result, ok := root.Get("result")
	if !ok || result.Kind != jsonread.Object {
		return msg, true, nil // an error response, or a message that is not the result
	}
	// A case variant of the list or of cacheScope would be read as them by
	// a case-insensitive client decoder, not by Get.
	if result.CaseVariant(f.m.resultKeys) {
		return nil, true, errFilter
	}
	list, ok := result.Get(f.m.listKey)
	if !ok {
		return msg, true, nil
	}
	if list.Kind != jsonread.Array {
		return nil, true, errFilter
	}
	// The shape may be remembered only if the annotations, after this
	// message's hints are recorded, are exactly what it left them (no
	// other response changed one meanwhile): a remembered shape is used
	// without recording again.
	ann := f.a.annotations.version.Load()
	changes := uint64(0)
	if f.m.listKey == "tools" {
		for i := range list.Kids {
			if f.a.annotations.record(msg, &list.Kids[i].Val) {
				changes++
			}
		}
	}
	*sh = listShape{
		msg: msg, listKey: f.m.listKey, idStart: -1, idEnd: -1,
		resultStart: int(result.Start), listStart: int(list.Start), listEnd: int(list.End),
		items: make([]shapeItem, 0, len(list.Kids)), ann: f.a.annotations.version.Load(),
	}
	sh.unshared = sh.ann-ann != changes
	if id, ok := root.Get("id"); ok && (id.Kind == jsonread.String || id.Kind == jsonread.Number || id.Kind == jsonread.Null) {
		sh.idStart, sh.idEnd = int(id.Start), int(id.End)
	}
	for i := range list.Kids {
		item := &list.Kids[i].Val
		it := shapeItem{start: int(item.Start), end: int(item.End)}
		if v, ok := item.Get(f.m.itemKey); ok && v.Kind == jsonread.String {
			it.name = v.Text
		}
		sh.items = append(sh.items, it)
	}
	scope, hasScope := result.Get("cacheScope")
	sh.hasScope = hasScope
	if hasScope {
		sh.scopeOK = scope.Kind == jsonread.String && scope.Text == "private"
		sh.scopeStart, sh.scopeEnd = int(scope.Start), int(scope.End)
	}
	return nil, false, nil
}

// verdicts returns, per item of sh, whether the caller may see it, and
// how many it may: remembered per caller on a remembered shape (see
// listMemo), decided otherwise.
func (f *listFilter) verdicts(sh *listShape) (keep []bool, n int) {
	// Decisions for a subject without a token are never cached (see
	// decideOp): it is built for one request.
	memo := sh.remembered && f.sub.token != ""
	k := verdictKey{sub: f.sub, ann: f.a.annotations.version.Load()}
	if memo {
		if keep, ok := sh.verdict(k); ok {
			for _, v := range keep {
				if v {
					n++
				}
			}
			return keep, n
		}
	}
	keep = slices.Grow(f.keep[:0], len(sh.items))[:len(sh.items)]
	f.keep = keep
	for i := range sh.items {
		keep[i] = f.allowed(sh.items[i].name)
		if keep[i] {
			n++
		}
	}
	if memo {
		sh.remember(k, keep)
	}
	return keep, n
}

// rewrite returns msg, whose shape is sh but for an id delta bytes longer,
// without the items keep refuses (n are kept) and with cacheScope
// "private" (MCP 2026-07-28 CacheableResult) whatever the handler said,
// added when absent, in one pass.
func (f *listFilter) rewrite(msg []byte, sh *listShape, delta int, keep []bool, n int) []byte {
	const private = `"private"`
	if n == len(sh.items) && sh.scopeOK {
		return msg
	}
	at := func(pos int) int { // a position of sh in msg
		if sh.idStart >= 0 && pos >= sh.idEnd {
			return pos + delta
		}
		return pos
	}
	out := slices.Grow(f.msgBuf[:0], len(msg)+len(`"cacheScope":"private",`))
	defer func() { f.msgBuf = out[:0] }()
	pos := 0
	if !sh.hasScope {
		a := at(sh.resultStart) + 1 // just inside the result's '{'
		out = append(out, msg[:a]...)
		out = append(out, `"cacheScope":`+private+`,`...)
		pos = a
	}
	writeList := func() {
		if n == len(sh.items) {
			out = append(out, msg[pos:at(sh.listEnd)]...)
			pos = at(sh.listEnd)
			return
		}
		out = append(out, msg[pos:at(sh.listStart)]...)
		out = append(out, '[')
		first := true
		for i, it := range sh.items {
			if !keep[i] {
				continue
			}
			if !first {
				out = append(out, ',')
			}
			first = false
			out = append(out, msg[at(it.start):at(it.end)]...)
		}
		out = append(out, ']')
		pos = at(sh.listEnd)
	}
	writeScope := func() {
		out = append(out, msg[pos:at(sh.scopeStart)]...)
		out = append(out, private...)
		pos = at(sh.scopeEnd)
	}
	switch {
	case !sh.hasScope || sh.scopeOK:
		writeList()
	case sh.scopeStart < sh.listStart:
		writeScope()
		writeList()
	default:
		writeList()
		writeScope()
	}
	return append(out, msg[pos:]...)
}

// responseParsers recycles the parsers of list responses.
var responseParsers = sync.Pool{New: func() any { return new(jsonread.Parser) }}

// putResponseParser recycles p, without its references to the response.
func putResponseParser(p *jsonread.Parser) {
	p.Release()
	responseParsers.Put(p)
}

// allowed decides one list item as the operation it lists: call_tool on the
// tool, get_prompt on the prompt, read_resource on the resource URI (or the
// URI template). Items without a name are removed. An item denied only for a
// missing scope (Config.ToolScopes, or determining forbids that all carry
// @scope) stays: calling it gets the insufficient_scope challenge that lets
// the client step up, and a client that only calls what tools/list shows
// (the MCP Inspector does) could never reach that challenge if the list hid
// it. So an item is listed exactly when using it gets either a result or a
// step-up challenge.
func (f *listFilter) allowed(name string) bool {
	if name == "" {
		return false
	}
	kind := kindResource
	switch f.m.listKey {
	case "tools":
		kind = kindTool
	case "prompts":
		kind = kindPrompt
	}
	op := f.a.namedOp(kind, name)
	d := f.a.decideOp(f.ps, f.sub, &op, &f.sc)
	return d.Allowed || len(d.Scopes) > 0
}

// filterSSE filters every event of a text/event-stream body whose data is a
// JSON-RPC message carrying the list. Events it does not change are copied
// byte for byte, less their id fields; a changed event keeps its other fields
// in place and carries the new data as data: lines.
//
// Event ids are removed because the response is complete when it is sent,
// so nothing needs resuming, while a 2025-11-25 server that stores its
// events would replay the unfiltered list to a GET carrying the id as
// Last-Event-ID (a GET the middleware cannot filter).
func (f *listFilter) filterSSE(body []byte) ([]byte, error) {
	out := slices.Grow(f.sseBuf[:0], len(body))
	defer func() { f.sseBuf = out[:0] }()
	// SSE parsers strip one leading byte order mark (WHATWG HTML §9.2.5).
	if bom := "\ufeff"; bytes.HasPrefix(body, []byte(bom)) {
		out = append(out, bom...)
		body = body[len(bom):]
	}
	for len(body) > 0 {
		ev, rest := nextEvent(body)
		body = rest
		nev, err := f.filterEvent(ev)
		if err != nil {
			return nil, err
		}
		out = append(out, nev...)
	}
	return out, nil
}

// nextEvent splits off one event: lines up to and including the first empty
// line (or the rest of the stream).
func nextEvent(b []byte) (ev, rest []byte) {
	i := 0
	for i < len(b) {
		line, n := nextLine(b[i:])
		i += n
		if len(line) == 0 {
			return b[:i], b[i:]
		}
	}
	return b, nil
}

// nextLine returns the next line without its terminator (CRLF, LF or CR) and
// the number of bytes consumed.
func nextLine(b []byte) (line []byte, n int) {
	for i, c := range b {
		switch c {
		case '\n':
			return b[:i], i + 1
		case '\r':
			if i+1 < len(b) && b[i+1] == '\n' {
				return b[:i], i + 2
			}
			return b[:i], i + 1
		}
	}
	return b, len(b)
}

func (f *listFilter) filterEvent(ev []byte) ([]byte, error) {
	var data []byte
	hasData, hasID := false, false
	for i := 0; i < len(ev); {
		line, n := nextLine(ev[i:])
		i += n
		if v, ok := sseField(line, "data"); ok {
			if hasData {
				data = append(data, '\n')
			}
			hasData = true
			data = append(data, v...)
		} else if _, ok := sseField(line, "id"); ok {
			hasID = true
		}
	}
	if hasID {
		ev = withoutField(ev, "id")
	}
	if len(data) == 0 {
		// No data field, or one empty data line (a 2025-11-25 priming
		// event): SSE dispatches no message.
		return ev, nil
	}
	nd, err := f.filterMessage(data)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(nd, data) {
		return ev, nil
	}
	var out bytes.Buffer
	wrote := false
	for i := 0; i < len(ev); {
		line, n := nextLine(ev[i:])
		raw := ev[i : i+n]
		i += n
		if _, ok := sseField(line, "data"); ok {
			if !wrote {
				for _, dl := range bytes.Split(nd, []byte("\n")) {
					out.WriteString("data: ")
					out.Write(bytes.TrimSuffix(dl, []byte("\r")))
					out.WriteByte('\n')
				}
				wrote = true
			}
			continue
		}
		out.Write(raw)
	}
	return out.Bytes(), nil
}

// withoutField returns ev without the lines that are the named field.
func withoutField(ev []byte, name string) []byte {
	out := make([]byte, 0, len(ev))
	for i := 0; i < len(ev); {
		line, n := nextLine(ev[i:])
		if _, ok := sseField(line, name); !ok {
			out = append(out, ev[i:i+n]...)
		}
		i += n
	}
	return out
}

// sseField returns the value of line if it is the named field (WHATWG HTML
// §9.2.6: "name:value" with one optional space after the colon, or "name"
// alone).
func sseField(line []byte, name string) ([]byte, bool) {
	if !bytes.HasPrefix(line, []byte(name)) {
		return nil, false
	}
	rest := line[len(name):]
	if len(rest) == 0 {
		return rest, true
	}
	if rest[0] != ':' {
		return nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}
