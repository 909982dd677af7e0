package benchcmp

import "testing"

// verifyFunc fully verifies one compact JWS access token: signature with
// the IdP's key, alg allow-list, exact iss, aud containing [audience], and
// a required, unexpired exp. It returns nil only for a valid token.
type verifyFunc func(token string) error

// peer is one verifier under comparison.
type peer struct {
	name string
	// warm makes the benchmark repeat a single token instead of cycling
	// through the pool.
	warm bool
	// setup builds the verifier once, outside the timed loop.
	setup func(tb testing.TB, f *fixture) verifyFunc
}

// peers lists every verifier in the order they are reported. raw is the
// baseline and is benchmarked separately (it does not check claims).
var peers = []peer{
	{name: "mcpauth", setup: setupMcpauthCold},
	{name: "mcpauth-warm", warm: true, setup: setupMcpauthWarm},
	{name: "golang-jwt", setup: setupGolangJWT},
	{name: "go-jose", setup: setupGoJose},
	{name: "go-oidc", setup: setupGoOIDC},
	{name: "jwx", setup: setupJWX},
	{name: "auth0", setup: setupAuth0},
}
