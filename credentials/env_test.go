package credentials

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestEnvPairs(t *testing.T) {
	t.Parallel()
	pairs, err := EnvPairs(context.Background(), map[string]Source{
		"Z_KEY":   Literal("z"),
		"A_TOKEN": Literal(canary),
		"M_PASS":  Literal("with=equals and spaces"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A_TOKEN=" + canary, "M_PASS=with=equals and spaces", "Z_KEY=z"}
	if !slices.Equal(pairs, want) {
		t.Errorf("pairs = %q, want %q", pairs, want)
	}
	if pairs, err := EnvPairs(context.Background(), nil); err != nil || len(pairs) != 0 {
		t.Errorf("nil map: %q, %v", pairs, err)
	}
}

func TestEnvPairsErrors(t *testing.T) {
	t.Parallel()
	srcErr := errors.New("store down")
	for _, tc := range []struct {
		name string
		env  map[string]Source
		key  string // the error must name it
		is   error
	}{
		{"empty name", map[string]Source{"": Literal(canary)}, "", nil},
		{"name with =", map[string]Source{"A=B": Literal(canary)}, "A=B", nil},
		{"name with NUL", map[string]Source{"A\x00B": Literal(canary)}, `A\x00B`, nil},
		{"value with NUL", map[string]Source{"KEY": Literal(canary + "\x00more")}, "KEY", nil},
		{"empty value", map[string]Source{"KEY": SourceFunc(func(context.Context) (Secret, error) { return Secret{}, nil })}, "KEY", ErrEmptySecret},
		{"nil source", map[string]Source{"KEY": nil}, "KEY", nil},
		{"source error", map[string]Source{"GOOD": Literal(canary), "KEY": SourceFunc(func(context.Context) (Secret, error) { return Secret{}, srcErr })}, "KEY", srcErr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pairs, err := EnvPairs(context.Background(), tc.env)
			if err == nil || pairs != nil {
				t.Fatalf("EnvPairs = %q, %v; want an error and no pairs", pairs, err)
			}
			if !strings.Contains(err.Error(), tc.key) {
				t.Errorf("error %q does not name the key %q", err, tc.key)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not match %v", err, tc.is)
			}
			assertNoCanary(t, "error", err.Error())
			assertNoCanary(t, "error", fmt.Sprintf("%+v", err))
		})
	}
}

// TestHelperProcess is not a real test: it is the child process started by
// TestAppendEnvChildProcess, and prints the variables it was asked about.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("MCPAUTH_CREDENTIALS_HELPER") != "1" {
		t.Skip("helper process for TestAppendEnvChildProcess")
	}
	for _, k := range strings.Split(os.Getenv("MCPAUTH_CREDENTIALS_PRINT"), ",") {
		fmt.Printf("%s=%s\n", k, os.Getenv(k))
	}
	os.Exit(0)
}

func TestAppendEnvChildProcess(t *testing.T) {
	// Not parallel: uses t.Setenv to prove inherited variables survive and
	// can be overridden.
	t.Setenv("MCPAUTH_CREDENTIALS_INHERITED", "parent-value")
	t.Setenv("MCPAUTH_CREDENTIALS_OVERRIDDEN", "parent-value")

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	if err := AppendEnv(context.Background(), cmd, map[string]Source{
		"MCPAUTH_CREDENTIALS_HELPER":     Literal("1"),
		"MCPAUTH_CREDENTIALS_PRINT":      Literal("MCPAUTH_CREDENTIALS_INHERITED,MCPAUTH_CREDENTIALS_OVERRIDDEN,API_TOKEN"),
		"MCPAUTH_CREDENTIALS_OVERRIDDEN": Literal("child-value"),
		"API_TOKEN":                      Literal(canary),
	}); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	got := string(out)
	for _, want := range []string{
		"MCPAUTH_CREDENTIALS_INHERITED=parent-value\n",
		"MCPAUTH_CREDENTIALS_OVERRIDDEN=child-value\n",
		"API_TOKEN=" + canary + "\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("child output lacks %q", want)
		}
	}
}

func TestAppendEnvKeepsExplicitEnvAndFailsCleanly(t *testing.T) {
	t.Parallel()
	cmd := exec.Command("true")
	cmd.Env = []string{"ONLY=this"}
	if err := AppendEnv(context.Background(), cmd, map[string]Source{"K": Literal("v")}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ONLY=this", "K=v"}; !slices.Equal(cmd.Env, want) {
		t.Errorf("Env = %q, want %q", cmd.Env, want)
	}

	cmd = exec.Command("true")
	if err := AppendEnv(context.Background(), cmd, map[string]Source{"K": Literal("")}); err == nil {
		t.Fatal("want an error")
	}
	if cmd.Env != nil {
		t.Errorf("cmd.Env changed on error: %q", cmd.Env)
	}
}
