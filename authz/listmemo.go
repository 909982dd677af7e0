package authz

import (
	"bytes"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file remembers list responses already parsed. A server answers
// tools/list with the same bytes every time, but for the JSON-RPC id, and
// parsing those bytes again is most of what filtering costs (a 7 KB list
// of 50 tools: some 15 µs of 25). So the list filter keeps the shape of
// the last few list messages (where the list and its items are, each
// item's name) and, for each caller, which items it may use; a message
// equal to a remembered one except for its id is filtered from these
// without a parse.
//
// Equal except for the id is exact: the bytes before and after the id are
// those of a message that passed the full parse (syntax, UTF-8, duplicate
// and case-variant names, the list's shape), with a scalar at the id, and
// the new id is parsed and must be one scalar again (a string, number or
// null). So the new message has the same members, at the same depths, and
// the full parse would accept it and find the same list and items: only
// the id differs, and the filter copies it unread.

// listMemoSlots is the number of list messages remembered per policy set:
// a server's tools, prompts, resources and resource templates lists.
const listMemoSlots = 4

// maxMemoMessage is the largest list message remembered, so that a memo
// holds at most listMemoSlots of these plus, per caller, a byte per item
// (bounded by maxMemoVerdictBytes).
const maxMemoMessage = 256 << 10

// maxMemoVerdicts bounds the callers whose verdicts one remembered message
// keeps; when full they are forgotten and it starts again.
const maxMemoVerdicts = 256

// maxMemoVerdictBytes bounds the verdicts one remembered message keeps (a
// byte per item per caller), as maxMemoVerdicts does their count: a list
// of many small items (some 87,000 fit in maxMemoMessage) keeps those of
// fewer callers, so that a memo's verdicts stay within listMemoSlots MiB
// rather than some 90 MB.
const maxMemoVerdictBytes = 1 << 20

// listMemo holds the shapes of the last list messages filtered under one
// policy set (it lives in the policySet, so Reload starts an empty one).
// Safe for concurrent use.
type listMemo struct {
	slots [listMemoSlots]atomic.Pointer[listShape]
	next  atomic.Uint32 // the slot the next store replaces
	// seen admits a message only on its second sighting (see admit), so
	// that a server whose lists differ every time (per caller, or with a
	// timestamp) does not pay for copies no one reads.
	seen     [2 * listMemoSlots]atomic.Uint64
	seedOnce sync.Once
	seed     maphash.Seed
}

// admit reports whether sh, a shape just parsed, should be stored: when a
// message equal to its message but for the id was seen since its hash was
// last overwritten in seen.
func (m *listMemo) admit(sh *listShape) bool {
	if len(sh.msg) > maxMemoMessage {
		return false
	}
	m.seedOnce.Do(func() { m.seed = maphash.MakeSeed() })
	var h maphash.Hash
	h.SetSeed(m.seed)
	if sh.idStart < 0 {
		h.Write(sh.msg)
	} else {
		h.Write(sh.msg[:sh.idStart])
		h.WriteByte(0) // the id's place
		h.Write(sh.msg[sh.idEnd:])
	}
	h.WriteString(sh.listKey)
	sum := h.Sum64() | 1 // never 0, the empty slot
	slot := &m.seen[sum%uint64(len(m.seen))]
	if slot.Load() == sum {
		return true
	}
	slot.Store(sum)
	return false
}

// listShape is what filtering reads of one list message. Positions are
// byte offsets in msg. A shape in a listMemo is immutable but for its
// verdicts; one built for a single message (not remembered) points into
// that message.
type listShape struct {
	msg     []byte
	listKey string // the method's list member ("tools", …)
	// idStart and idEnd delimit the root's "id" value; -1 when absent.
	idStart, idEnd int
	// resultStart is the result object's '{'; listStart and listEnd
	// delimit the list array.
	resultStart, listStart, listEnd int
	items                           []shapeItem
	// hasScope is whether the result has cacheScope, scopeOK whether it is
	// "private"; scopeStart and scopeEnd delimit its value.
	hasScope, scopeOK    bool
	scopeStart, scopeEnd int
	// ann is the tool annotations version once this message's hints were
	// recorded (tools lists): the shape is used only while it holds, so
	// skipping the recording changes nothing.
	ann uint64
	// unshared is set on a shape that must not be remembered: another
	// response changed tool annotations while this one's were recorded.
	unshared bool
	// remembered is set on the shapes in a listMemo: only they keep
	// verdicts.
	remembered bool

	mu       sync.Mutex
	verdicts map[verdictKey][]bool // per caller: keep, per item
}

// shapeItem is one list item: its span, and its name ("" for an item
// without a usable one, which is removed).
type shapeItem struct {
	start, end int
	name       string
}

// verdictKey names one caller's verdicts on a remembered message's items,
// under the tool annotations of one version (the policy set is the
// memo's). As in decisionKey, the *subject keeps its subject alive, so its
// address names it alone.
type verdictKey struct {
	sub *subject
	ann uint64
}

// find returns the remembered shape of msg, a message of the list listKey,
// and how much longer msg's id is than the shape's (positions from the
// shape's idEnd on move by that much). p parses the id.
func (m *listMemo) find(msg []byte, listKey string, ann uint64, p *jsonread.Parser) (sh *listShape, delta int, ok bool) {
	for i := range m.slots {
		sh := m.slots[i].Load()
		if sh == nil || sh.listKey != listKey || sh.ann != ann {
			continue
		}
		if sh.idStart < 0 {
			if bytes.Equal(msg, sh.msg) {
				return sh, 0, true
			}
			continue
		}
		pre, suf := sh.msg[:sh.idStart], sh.msg[sh.idEnd:]
		if len(msg) <= len(pre)+len(suf) || !bytes.HasPrefix(msg, pre) || !bytes.HasSuffix(msg, suf) {
			continue
		}
		id := msg[len(pre) : len(msg)-len(suf)]
		v, err := p.Parse(id, jsonread.Options{KeepDepth: 1})
		if err != nil || (v.Kind != jsonread.String && v.Kind != jsonread.Number && v.Kind != jsonread.Null) {
			continue
		}
		return sh, len(id) - (sh.idEnd - sh.idStart), true
	}
	return nil, 0, false
}

// store remembers a copy of sh (built for sh.msg) and returns it, unless
// the message is too large (then nil).
func (m *listMemo) store(sh *listShape) *listShape {
	if len(sh.msg) > maxMemoMessage {
		return nil
	}
	c := &listShape{
		msg: bytes.Clone(sh.msg), listKey: sh.listKey, idStart: sh.idStart, idEnd: sh.idEnd,
		resultStart: sh.resultStart, listStart: sh.listStart, listEnd: sh.listEnd,
		items: make([]shapeItem, len(sh.items)), hasScope: sh.hasScope, scopeOK: sh.scopeOK,
		scopeStart: sh.scopeStart, scopeEnd: sh.scopeEnd, ann: sh.ann, remembered: true,
	}
	// The names point into the message or the parse: one copy for all.
	var b strings.Builder
	for _, it := range sh.items {
		b.WriteString(it.name)
	}
	names := b.String()
	for i, it := range sh.items {
		c.items[i] = shapeItem{start: it.start, end: it.end, name: names[:len(it.name)]}
		names = names[len(it.name):]
	}
	m.slots[m.next.Add(1)%listMemoSlots].Store(c)
	return c
}

// verdict returns the caller's remembered verdicts on sh's items.
func (sh *listShape) verdict(k verdictKey) ([]bool, bool) {
	sh.mu.Lock()
	keep, ok := sh.verdicts[k]
	sh.mu.Unlock()
	return keep, ok
}

// remember keeps a copy of the caller's verdicts on sh's items.
func (sh *listShape) remember(k verdictKey, keep []bool) {
	if len(keep) > maxMemoVerdictBytes {
		return
	}
	keep = append([]bool(nil), keep...)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.verdicts == nil || len(sh.verdicts) >= maxMemoVerdicts || (len(sh.verdicts)+1)*len(keep) > maxMemoVerdictBytes {
		sh.verdicts = make(map[verdictKey][]bool)
	}
	sh.verdicts[k] = keep
}
