package credentials

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/mcpauth-go/mcpauth/internal/outbound"
)

// EnvPairs resolves each source in env and returns "KEY=value" strings,
// sorted by key, for the environment of a child process — typically an MCP
// server started over stdio, which reads its backend credentials from
// environment variables:
//
//	pairs, err := credentials.EnvPairs(ctx, map[string]credentials.Source{
//		"GITHUB_TOKEN": credentials.File("/run/secrets/github"),
//	})
//	cmd.Env = append(cmd.Environ(), pairs...)
//
// The returned slice is the one place where the secret values appear in
// plain text: hand it to exec.Cmd.Env and do not log, print or keep it.
//
// Keys must be non-empty and contain neither '=' nor NUL; values must not
// contain NUL (execve could not pass them). An invalid key, an empty value,
// or a failing source is an error naming the key, never a value; on error
// no pairs are returned.
func EnvPairs(ctx context.Context, env map[string]Source) ([]string, error) {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		if err := validEnvName(k); err != nil {
			return nil, err
		}
		src := env[k]
		if src == nil {
			return nil, fmt.Errorf("credentials: environment variable %q has a nil source", k)
		}
		s, err := src.Secret(ctx)
		if err != nil {
			return nil, outbound.Wrap("credentials", fmt.Sprintf("environment variable %q", k), err)
		}
		v := s.Reveal()
		if v == "" {
			return nil, fmt.Errorf("%w: environment variable %q", ErrEmptySecret, k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return nil, fmt.Errorf("credentials: value for environment variable %q contains a NUL byte", k)
		}
		pairs = append(pairs, k+"="+v)
	}
	return pairs, nil
}

// AppendEnv resolves env with [EnvPairs] and appends the pairs to cmd's
// environment. If cmd.Env is nil, it first sets it to cmd.Environ(), so the
// child still inherits this process's environment, as it would have with a
// nil Env. exec.Cmd keeps the last value of a duplicated key, so the pairs
// override inherited variables of the same name. On error cmd is unchanged.
func AppendEnv(ctx context.Context, cmd *exec.Cmd, env map[string]Source) error {
	pairs, err := EnvPairs(ctx, env)
	if err != nil {
		return err
	}
	base := cmd.Env
	if base == nil {
		base = cmd.Environ()
	}
	cmd.Env = append(slices.Clip(base), pairs...)
	return nil
}

func validEnvName(name string) error {
	switch {
	case name == "":
		return errors.New("credentials: empty environment variable name")
	case strings.ContainsAny(name, "=\x00"):
		return fmt.Errorf("credentials: invalid environment variable name %q (contains '=' or NUL)", name)
	}
	return nil
}
