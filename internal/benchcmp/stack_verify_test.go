package benchcmp

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestStackCases checks that every row of BenchmarkStack does what it
// claims, so the benchmark compares working stacks: each answers its
// request, B and C refuse a request without a token, C refuses a tool the
// caller may not call, and D returns exactly the tools the caller may use.
func TestStackCases(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	serve := func(h http.Handler, c *stackCase, token, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, stackResource, strings.NewReader(body))
		c.header(req.Header, token)
		if token == "" {
			req.Header.Del("Authorization")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for _, c := range stackCases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(c.handler(s), &c, s.token, c.body)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			var resp struct {
				Result struct {
					Tools   []struct{ Name string } `json:"tools"`
					Content []struct{ Text string } `json:"content"`
				} `json:"result"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.Fatalf("%v: %s", err, w.Body)
			}
			var names []string
			for _, tool := range resp.Result.Tools {
				names = append(names, tool.Name)
			}
			switch c.name {
			case "list-bare":
				if len(names) != listTools {
					t.Errorf("bare list has %d tools, want %d", len(names), listTools)
				}
			case "D-list-filtered":
				want := []string{"tool5", "tool15", "tool25", "tool35", "tool45"}
				if !slices.Equal(names, want) {
					t.Errorf("filtered list = %v, want %v", names, want)
				}
			default:
				if len(resp.Result.Content) != 1 || resp.Result.Content[0].Text != "ran tool5" {
					t.Errorf("tools/call result = %s", w.Body)
				}
			}
			if c.protected {
				if w := serve(c.handler(s), &c, "", c.body); w.Code != http.StatusUnauthorized {
					t.Errorf("without a token: status %d, want 401", w.Code)
				}
			}
		})
	}
	t.Run("C-authz denies", func(t *testing.T) {
		c := stackCases[2]
		c.toolArg = "tool6"
		body := strings.Replace(callBody, `"name":"tool5"`, `"name":"tool6"`, 1)
		if w := serve(s.authz, &c, s.token, body); w.Code != http.StatusForbidden {
			t.Errorf("tool6 (group g6): status %d, want 403", w.Code)
		}
		if w := serve(s.protect, &c, s.token, body); w.Code != http.StatusOK {
			t.Errorf("tool6 without authz: status %d, want 200", w.Code)
		}
	})
	if !bytes.Contains(listResult, []byte(`"tool49"`)) {
		t.Error("listResult lacks tool49")
	}
}
