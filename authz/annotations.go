package authz

import (
	"strings"
	"sync"

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
	m  map[string]cedar.RecordMap // read-only once stored
}

var annotationHints = []string{"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"}

// record stores the hints of one tools/list item (or forgets them when the
// item has none any more).
func (t *toolAnnotations) record(item *jsonread.Value) {
	name, ok := item.Get("name")
	if !ok || name.Kind != jsonread.String || name.Text == "" {
		return
	}
	var hints cedar.RecordMap
	if ann, ok := item.Get("annotations"); ok && ann.Kind == jsonread.Object {
		for _, h := range annotationHints {
			if v, ok := ann.Get(h); ok && (v.Kind == jsonread.True || v.Kind == jsonread.False) {
				if hints == nil {
					hints = cedar.RecordMap{}
				}
				hints[cedar.String(h)] = cedar.Boolean(v.Kind == jsonread.True)
			}
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if hints == nil {
		delete(t.m, name.Text)
		return
	}
	if t.m == nil {
		t.m = map[string]cedar.RecordMap{}
	}
	if _, known := t.m[name.Text]; known || len(t.m) < maxAnnotatedTools {
		// Only a stored key is copied: name.Text points into the response
		// buffer.
		t.m[strings.Clone(name.Text)] = hints
	}
}

// get returns the hints recorded for tool, or nil.
func (t *toolAnnotations) get(tool string) cedar.RecordMap {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.m[tool]
}
