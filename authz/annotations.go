package authz

import (
	"strings"
	"sync"
	"sync/atomic"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file holds tool annotations: the behaviour hints each tool's
// tools/list entry gives (learnt by the list filter, read by the request
// path as resource attributes of Tool entities).

// maxAnnotatedTools bounds the tool annotation cache.
const maxAnnotatedTools = 10000

// toolAnnotations remembers the behaviour hints (readOnlyHint,
// destructiveHint, idempotentHint, openWorldHint) of each tool as the latest
// tools/list response gave them, as ToolHive does, so that policies can say
// "engineers may call any read-only tool". Safe for concurrent use.
type toolAnnotations struct {
	mu sync.RWMutex
	m  map[string]toolHints
	// version counts changes of any tool's hints: cached decisions (see
	// decisionCache) carry the version they were made under.
	version atomic.Uint64
}

// toolHints is one tool's hints: bits as hintBits computes them, and the
// same as the Cedar attributes a Tool entity gets (read-only once stored).
type toolHints struct {
	bits  uint8
	attrs cedar.RecordMap
}

var annotationHints = [...]string{"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}

// hintBits packs the boolean hints of an annotations object: bit i is set
// when hint i is present, bit 4+i when it is true.
func hintBits(msg []byte, item *jsonread.Value) uint8 {
	ann, ok := item.Get("annotations")
	if !ok || ann.Kind != jsonread.Object {
		return 0
	}
	if ann.Kids == nil && ann.End-ann.Start > 2 {
		// Not kept by the list's parse (which checked it): read it now.
		v, err := jsonread.ParseWith(msg[ann.Start:ann.End], jsonread.Options{KeepDepth: 1})
		if err != nil {
			return 0
		}
		ann = &v
	}
	var bits uint8
	for i, h := range annotationHints {
		if v, ok := ann.Get(h); ok && (v.Kind == jsonread.True || v.Kind == jsonread.False) {
			bits |= 1 << i
			if v.Kind == jsonread.True {
				bits |= 1 << (4 + i)
			}
		}
	}
	return bits
}

// record stores the hints of one tools/list item of the response msg (or
// forgets them when the item has none any more) and reports whether that
// changed them (and so the version, by one). Nothing is allocated when they
// did not change.
func (t *toolAnnotations) record(msg []byte, item *jsonread.Value) (changed bool) {
	name, ok := item.Get("name")
	if !ok || name.Kind != jsonread.String || name.Text == "" {
		return false
	}
	bits := hintBits(msg, item)
	t.mu.RLock()
	old, known := t.m[name.Text]
	t.mu.RUnlock()
	if old.bits == bits && (known || bits == 0) {
		return false
	}
	var attrs cedar.RecordMap
	if bits != 0 {
		attrs = make(cedar.RecordMap, 4)
		for i, h := range annotationHints {
			if bits&(1<<i) != 0 {
				attrs[cedar.String(h)] = cedar.Boolean(bits&(1<<(4+i)) != 0)
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	defer t.version.Add(1)
	if bits == 0 {
		delete(t.m, name.Text)
		return true
	}
	if t.m == nil {
		t.m = map[string]toolHints{}
	}
	if _, known := t.m[name.Text]; known || len(t.m) < maxAnnotatedTools {
		// Only a stored key is copied: name.Text points into the response
		// buffer.
		t.m[strings.Clone(name.Text)] = toolHints{bits: bits, attrs: attrs}
	}
	return true
}

// get returns the hints recorded for tool, or nil.
func (t *toolAnnotations) get(tool string) cedar.RecordMap {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[tool].attrs
}
