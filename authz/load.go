package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/mcpauth-go/mcpauth/internal/jsonread"
)

// This file loads what Config names: the static entities document and the
// policy text, with errors in the terms of this package (which policy,
// which entity, line and column) rather than those of the decoders behind
// them, and it refuses names the MCP mapping never produces.

// loadEntities decodes Config.Entities after checking its shape, so that a
// malformed document is reported as "entity 2: "parents" must be an array
// of {"type","id"} objects" rather than as a Go decoding error.
func (a *Authorizer) loadEntities(doc []byte) error {
	root, err := jsonread.Parse(doc)
	if err != nil {
		var v any
		if jerr := json.Unmarshal(doc, &v); jerr != nil {
			return fmt.Errorf("authz: Config.Entities: malformed JSON: %w", jsonErrorPosition(doc, jerr))
		}
		return fmt.Errorf("authz: Config.Entities: %w", err)
	}
	if root.Kind != jsonread.Array {
		return errors.New(`authz: Config.Entities: must be a JSON array of entities {"uid":{"type":…,"id":…},"parents":[…],"attrs":{…}}`)
	}
	for i := range root.Kids {
		if err := checkEntity(&root.Kids[i].Val); err != nil {
			line, col := position(doc, int(root.Kids[i].Val.Start))
			return fmt.Errorf("authz: Config.Entities: entity %d (line %d, column %d): %s", i, line, col, err)
		}
	}
	if err := a.entities.UnmarshalJSON(doc); err != nil {
		return fmt.Errorf("authz: Config.Entities: %w", jsonErrorPosition(doc, err))
	}
	for uid := range a.entities {
		if err := a.checkName(uid, false); err != nil {
			return fmt.Errorf("authz: Config.Entities: %s", err)
		}
	}
	return nil
}

// checkEntity checks one member of the entities array.
func checkEntity(e *jsonread.Value) error {
	if e.Kind != jsonread.Object {
		return errors.New(`must be an object {"uid","parents","attrs"}`)
	}
	for i := range e.Kids {
		m := &e.Kids[i]
		switch m.Key {
		case "uid":
			if !isUIDValue(&m.Val) {
				return errors.New(`"uid" must be {"type":"…","id":"…"}`)
			}
		case "parents":
			if m.Val.Kind != jsonread.Array {
				return errors.New(`"parents" must be an array of {"type":"…","id":"…"}`)
			}
			for j := range m.Val.Kids {
				if !isUIDValue(&m.Val.Kids[j].Val) {
					return fmt.Errorf(`parent %d must be {"type":"…","id":"…"}`, j)
				}
			}
		case "attrs", "tags":
			if m.Val.Kind != jsonread.Object {
				return fmt.Errorf("%q must be an object", m.Key)
			}
		default:
			return fmt.Errorf(`unknown member %q (an entity has "uid", "parents", "attrs" and "tags")`, clip(m.Key))
		}
	}
	if _, ok := e.Get("uid"); !ok {
		return errors.New(`"uid" is missing`)
	}
	return nil
}

// isUIDValue reports whether v is an entity reference in Cedar's JSON
// forms: {"type":"T","id":"i"} or {"__entity":{"type":"T","id":"i"}}.
func isUIDValue(v *jsonread.Value) bool {
	if e, ok := v.Get("__entity"); ok && len(v.Kids) == 1 {
		v = e
	}
	if v.Kind != jsonread.Object || len(v.Kids) != 2 {
		return false
	}
	t, ok1 := v.Get("type")
	id, ok2 := v.Get("id")
	return ok1 && ok2 && t.Kind == jsonread.String && t.Text != "" && id.Kind == jsonread.String
}

// checkName refuses an entity a request can never meet: an action the MCP
// mapping does not issue (unless Config.Entities makes it an action group),
// an entity type it never produces and Config.Entities does not define,
// and, with several Config.Issuers, a Client whose id does not start with
// a listed issuer. inPolicy tells where the name was found.
func (a *Authorizer) checkName(uid cedar.EntityUID, inPolicy bool) error {
	switch uid.Type {
	case EntityTypeAction:
		if slices.Contains(knownActions, uid) {
			return nil
		}
		if inPolicy && a.knownEntity(uid) {
			return nil // an action group of the static entities
		}
		if !inPolicy && a.isActionGroup(uid) {
			return nil
		}
		return fmt.Errorf("%s is not an action the MCP mapping issues (call_tool, get_prompt, read_resource, list_tools, list_prompts, list_resources) nor an action group of Config.Entities", uid)
	case EntityTypeClient:
		if len(a.issuers) > 1 {
			iss, _, ok := strings.Cut(string(uid.ID), issuerSeparator)
			if !ok || !slices.Contains(a.issuers, iss) {
				return fmt.Errorf("%s names no caller: with several Config.Issuers a principal id is \"<issuer>#<sub>\" with a listed issuer", uid)
			}
		}
		return nil
	case EntityTypeTool, EntityTypePrompt, EntityTypeResource, EntityTypeFeatureType, a.groupType:
		return nil
	}
	if inPolicy && a.knownType(uid.Type) {
		return nil
	}
	if !inPolicy {
		return nil // the document defines its own types
	}
	return fmt.Errorf("entity type %s is never produced by the MCP mapping (Client, %s, Tool, Prompt, Resource, FeatureType, Action) nor used in Config.Entities", strconv.Quote(string(uid.Type)), a.groupType)
}

// knownEntity reports whether uid is an entity or a parent in Config.Entities.
func (a *Authorizer) knownEntity(uid cedar.EntityUID) bool {
	a.indexEntityNames()
	return a.entityNames.uids[uid]
}

// isActionGroup reports whether an Action entity of Config.Entities that is
// not an issued action is a parent of another action.
func (a *Authorizer) isActionGroup(uid cedar.EntityUID) bool {
	a.indexEntityNames()
	return a.entityNames.actionGroups[uid]
}

// knownType reports whether an entity or parent of Config.Entities has type t.
func (a *Authorizer) knownType(t cedar.EntityType) bool {
	a.indexEntityNames()
	return a.entityNames.types[t]
}

// entityNames indexes the names Config.Entities uses, for checkName. The
// static entities never change after New, so it is built once.
type entityNames struct {
	built        bool
	uids         map[cedar.EntityUID]bool  // entities and their parents
	types        map[cedar.EntityType]bool // their types
	actionGroups map[cedar.EntityUID]bool  // parents of Action entities
}

func (a *Authorizer) indexEntityNames() {
	n := &a.entityNames
	if n.built {
		return
	}
	n.built = true
	n.uids, n.types, n.actionGroups = map[cedar.EntityUID]bool{}, map[cedar.EntityType]bool{}, map[cedar.EntityUID]bool{}
	for uid, e := range a.entities {
		n.uids[uid], n.types[uid.Type] = true, true
		for p := range e.Parents.All() {
			n.uids[p], n.types[p.Type] = true, true
			if uid.Type == EntityTypeAction {
				n.actionGroups[p] = true
			}
		}
	}
}

// policyNames walks a policy's JSON form (cedar-go's MarshalJSON) and
// returns every entity it names (scope and conditions) and every type an
// `is` tests.
func policyNames(doc any) (uids []cedar.EntityUID, types []cedar.EntityType) {
	var walk func(n any)
	walk = func(n any) {
		switch x := n.(type) {
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			if len(x) == 2 {
				t, ok1 := x["type"].(string)
				id, ok2 := x["id"].(string)
				if ok1 && ok2 {
					uids = append(uids, cedar.NewEntityUID(cedar.EntityType(t), cedar.String(id)))
					return
				}
			}
			if t, ok := x["entity_type"].(string); ok {
				types = append(types, cedar.EntityType(t))
			}
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(doc)
	return uids, types
}

// checkPolicyNames applies checkName to every entity and type a policy names.
func (a *Authorizer) checkPolicyNames(doc any) error {
	uids, types := policyNames(doc)
	for _, uid := range uids {
		if err := a.checkName(uid, true); err != nil {
			return err
		}
	}
	for _, t := range types {
		if err := a.checkName(cedar.NewEntityUID(t, ""), true); err != nil && t != EntityTypeAction {
			return err
		}
	}
	return nil
}

// parsePosition finds "line:column" in a cedar-go parse error
// ("parse error at <input>:2:21 \";\": invalid primary").
var parsePosition = regexp.MustCompile(`at [^ ]*?:(\d+):(\d+) ("(?:[^"\\]|\\.)*")?:? ?(.*)$`)

// parseError rewrites a cedar-go parse error of text in plain words: which
// policy (its index in the text, counting from 0, as policy ids do), the
// line and column, and the parser's complaint.
func parseError(text string, err error) error {
	m := parsePosition.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Errorf("authz: policies: %w", err)
	}
	line, _ := strconv.Atoi(m[1])
	col, _ := strconv.Atoi(m[2])
	idx := policyIndexAt(text, offsetOf(text, line, col))
	near := ""
	if m[3] != "" {
		near = " near " + m[3]
	}
	return fmt.Errorf("authz: policies: policy %d (policy%d unless it has an @id), line %d, column %d: %w: %s%s",
		idx, idx, line, col, errPolicySyntax, m[4], near)
}

// errPolicySyntax is wrapped by policy parse errors.
var errPolicySyntax = errors.New("syntax error")

// offsetOf returns the byte offset of a 1-based line and column.
func offsetOf(text string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(text[off:], '\n')
		if i < 0 {
			return len(text)
		}
		off += i + 1
	}
	return min(off+col-1, len(text))
}

// policyIndexAt returns how many policies end (with ';' outside strings
// and comments) before off: the index of the policy that holds off.
func policyIndexAt(text string, off int) int {
	n := 0
	for i := 0; i < off && i < len(text); i++ {
		switch text[i] {
		case '"':
			for i++; i < len(text) && text[i] != '"'; i++ {
				if text[i] == '\\' {
					i++
				}
			}
		case '/':
			if i+1 < len(text) && text[i+1] == '/' {
				for i < len(text) && text[i] != '\n' {
					i++
				}
			}
		case ';':
			n++
		}
	}
	return n
}

// position returns the 1-based line and column of byte offset off.
func position(doc []byte, off int) (line, col int) {
	line, col = 1, 1
	for _, c := range doc[:min(off, len(doc))] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// jsonErrorPosition prefixes a JSON decoding error with the line and column
// of the byte offset it reports (the ByteOffset field of the JSON errors
// cedar-go returns, or encoding/json's Offset), when it reports one.
func jsonErrorPosition(doc []byte, err error) error {
	off := int64(-1)
	for e := err; e != nil && off < 0; e = errors.Unwrap(e) {
		v := reflect.ValueOf(e)
		for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			continue
		}
		for _, name := range []string{"ByteOffset", "Offset"} {
			if f := v.FieldByName(name); f.IsValid() && f.CanInt() && f.Int() > 0 {
				off = f.Int()
				break
			}
		}
	}
	if off < 0 || off > int64(len(doc)) {
		return err
	}
	line, col := position(doc, int(off))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}
