package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// conformanceReport is the outcome of one suite run, from its -o directory.
type conformanceReport struct {
	passed, failed int            // checks, all scenarios
	scenarios      map[string]int // scenario -> failed checks
	succeeded      map[string]int // scenario -> successful checks
}

var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// readConformance reads every checks.json under dir.
func readConformance(t *testing.T, dir string) *conformanceReport {
	t.Helper()
	r := &conformanceReport{scenarios: map[string]int{}, succeeded: map[string]int{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		m := scenarioDir.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "checks.json"))
		if err != nil {
			t.Fatal(err)
		}
		var checks []struct{ Status string }
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		r.scenarios[m[1]] += 0
		for _, c := range checks {
			switch c.Status {
			case "SUCCESS":
				r.passed++
				r.succeeded[m[1]]++
			case "FAILURE":
				r.failed++
				r.scenarios[m[1]]++
			}
		}
	}
	return r
}

func (r *conformanceReport) String() string {
	names := make([]string, 0, len(r.scenarios))
	for n := range r.scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%d scenarios, %d checks passed, %d failed\n", len(names), r.passed, r.failed)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-48s %3d passed %3d failed\n", n, r.succeeded[n], r.scenarios[n])
	}
	return b.String()
}

// runConformance runs the MCP conformance suite's server command against
// resource, as an authenticated client holding token (conformance-auth.mjs
// adds it to every request to the server's origin), with args. It returns
// the suite's stdout, its per-check results and its exit error.
func runConformance(t *testing.T, resource, token string, args ...string) (string, *conformanceReport, error) {
	t.Helper()
	origin := resource[:strings.Index(resource[len("http://"):], "/")+len("http://")]
	t.Setenv("MCPAUTH_CONFORMANCE_ORIGIN", origin)
	t.Setenv("MCPAUTH_CONFORMANCE_TOKEN", token)
	dir := t.TempDir()
	out, err := runNodeStdin(t, 4*time.Minute, nil, "--import", append([]string{"./conformance-auth.mjs",
		"node_modules/@modelcontextprotocol/conformance/dist/index.js", "server", "--url", resource, "-o", dir}, args...)...)
	return string(out), readConformance(t, dir), err
}

// TestConformance runs every server scenario of the official MCP
// conformance suite against examples/gosdk (authn + Cedar authz + list
// filtering) trusting oidc-provider, as a client holding a token for it,
// twice: in the SDK's stateless mode at the 2026-07-28 stateless core, and
// in its default stateful mode (sessions bound to the user) at 2025-11-25.
// Each run must pass against its committed baseline
// (testdata/conformance-baseline-gosdk-*.yml, each entry explained there;
// the suite also fails on a baseline entry that passes), and the scenarios
// on which mcpauth sits in the request path must pass with no failed
// check: DNS-rebinding protection (Origin/Host), the Mcp-Method/Mcp-Name
// header rules and the caching hints of filtered lists (2026-07-28), the
// session lifecycle (2025-11-25), the lists themselves.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		flags    []string // examples/gosdk flags
		args     []string // conformance flags
		baseline string
		clean    []string // scenarios that must pass with no failed check
	}{
		{"stateless", []string{"-stateless"}, []string{"--suite", "all"}, "conformance-baseline-gosdk-stateless.yml",
			[]string{"dns-rebinding-protection", "http-header-validation", "caching", "tools-list", "resources-list", "prompts-list"}},
		{"stateful", nil, []string{"--suite", "all", "--spec-version", "2025-11-25"}, "conformance-baseline-gosdk-stateful.yml",
			[]string{"dns-rebinding-protection", "server-initialize", "server-session-lifecycle", "ping", "tools-list",
				"resources-list", "prompts-list", "server-sse-multiple-streams"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startGoSDK(t, tc.flags...)
			tok := s.idp.clientCredentials(t, ccClient, ccSecret, s.resource, serverScopes)
			baseline, err := filepath.Abs(filepath.Join("testdata", tc.baseline))
			if err != nil {
				t.Fatal(err)
			}
			out, report, err := runConformance(t, s.resource, tok, append(tc.args, "--expected-failures", baseline)...)
			t.Logf("conformance server %s: %s", strings.Join(tc.args, " "), report)
			if err != nil {
				t.Errorf("conformance run failed (%v):\n%s", err, tail(out, 60))
			}
			for _, sc := range tc.clean {
				if report.succeeded[sc] == 0 || report.scenarios[sc] != 0 {
					t.Errorf("scenario %s: %d checks passed, %d failed; want all passed", sc, report.succeeded[sc], report.scenarios[sc])
				}
			}
			if tc.name != "stateless" {
				return
			}
			// Without the token the same suite gets nowhere: the server
			// enforces authentication, and the token is what let the run
			// above through.
			_, anon, err := runConformance(t, s.resource, "", "--scenario", "tools-list")
			if err == nil || anon.scenarios["tools-list"] == 0 {
				t.Errorf("tools-list without a token: %v, %d checks failed; want a failed run", err, anon.scenarios["tools-list"])
			}
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
