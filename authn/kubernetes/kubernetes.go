// Package kubernetes configures an [authn.Verifier] for Kubernetes projected
// service-account tokens, so workloads in a cluster can call an MCP server
// with the token the kubelet mounts into their pods.
//
// A projected service-account token (Kubernetes "TokenRequest" API,
// serviceAccountToken volume projection) is an RS256 or ES256 JWT issued by
// the cluster's API server: iss is the cluster's service-account issuer
// (kube-apiserver --service-account-issuer), aud is the audience the pod
// asked for in its volume projection — set it to this MCP server's resource
// URI (RFC 8707) — sub is "system:serviceaccount:<namespace>:<name>", and a
// private "kubernetes.io" claim names the namespace, service account, pod and
// node. The API server publishes its keys as an OpenID Connect discovery
// document and a JWKS (/.well-known/openid-configuration,
// /openid/v1/jwks; the ServiceAccountIssuerDiscovery feature), usually
// behind authentication and always behind the cluster's own CA.
//
// [Config] builds an [authn.Config] that fetches those keys from the API
// server with the pod's own service-account token (re-read from its file as
// the kubelet rotates it, via [credentials.File]) and trusts only the
// cluster CA bundle. The tokens are then verified like any other issuer's:
// signature, exact iss, aud containing this server's resource, exp. Nothing
// else in mcpauth is specific to Kubernetes.
//
//	cfg, err := kubernetes.Config(kubernetes.Options{
//		Issuer:   "https://kubernetes.default.svc.cluster.local",
//		Audience: []string{"https://mcp.example.com/mcp"},
//	})
//	if err != nil { … }
//	v, err := authn.NewVerifier(cfg)
//
// In the pod calling the server, project a token with that audience:
//
//	volumes:
//	- name: mcp-token
//	  projected:
//	    sources:
//	    - serviceAccountToken:
//	        audience: https://mcp.example.com/mcp
//	        expirationSeconds: 3600
//	        path: token
//
// # Claims in policies
//
// The kubernetes.io claim is an object; authz exposes it, like every claim,
// as the record attribute claim_kubernetes.io of the principal and of the
// context, so a Cedar policy reads, for instance:
//
//	permit (principal, action == Action::"call_tool", resource)
//	when { context["claim_kubernetes.io"].namespace == "team-a" &&
//	       context["claim_kubernetes.io"].serviceaccount.name == "agent" };
//
// Go code reads the same values with [IdentityFrom].
//
// # Not through the embedded authorization server
//
// Service-account tokens are verified directly: a workload has no browser
// and no authorization-code flow, so it cannot log in through the upstream
// package's embedded authorization server. Trust the cluster issuer beside
// the embedded server with an [authn.MultiVerifier] when a server takes both
// users and workloads.
package kubernetes

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/authn"
	"github.com/mcpauth-go/mcpauth/credentials"
)

// The in-cluster paths and address every pod has (Kubernetes "Accessing the
// Kubernetes API from a Pod").
const (
	// DefaultAPIServer is the API server's address inside a cluster.
	DefaultAPIServer = "https://kubernetes.default.svc"
	// DefaultTokenFile is the pod's own service-account token, rotated by
	// the kubelet.
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	// DefaultCAFile is the cluster CA bundle that signs the API server's
	// serving certificate.
	DefaultCAFile = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
	// JWKSPath is where the API server publishes its service-account keys.
	JWKSPath = "/openid/v1/jwks"
)

// Options describes the cluster. Issuer and Audience are required; every
// other field's zero value means the in-cluster default.
type Options struct {
	// Issuer is the cluster's service-account issuer, exactly as tokens carry
	// it in iss (kube-apiserver --service-account-issuer, often
	// "https://kubernetes.default.svc.cluster.local"; on managed clusters
	// an https URL of the provider's). Required.
	Issuer string

	// Audience lists this MCP server's canonical resource URIs; a token's aud
	// must contain one, so the pod must request exactly this audience in
	// its serviceAccountToken projection. Required. Never use the API
	// server's own audience: a token for the API server is not for you.
	Audience []string

	// APIServer is the API server's base URL, from which the JWKS is fetched
	// at APIServer + JWKSPath. If empty, DefaultAPIServer. Ignored when
	// Discover is set.
	APIServer string

	// Discover fetches the issuer's OpenID Connect discovery document
	// (Issuer + "/.well-known/openid-configuration") and the jwks_uri it
	// names, instead of APIServer's JWKS. Use it when the issuer is served
	// outside the cluster (managed clusters publish it on a public https
	// URL); the CA and token below still apply to it.
	Discover bool

	// CAFile is a PEM bundle of the CAs trusted for the key fetches, replacing
	// the system roots. If empty, DefaultCAFile; "-" keeps the system roots
	// (for a Discover issuer with a public certificate). Read once, by
	// Config: a missing or empty file is an error then.
	CAFile string

	// TokenFile is the bearer token sent on the key fetches, re-read when the
	// kubelet rotates it. If empty, DefaultTokenFile — or none when Discover
	// is set, since an issuer served outside the cluster needs no credential
	// and must never receive the pod's API token; "-" sends none (for
	// clusters that grant anonymous access to the discovery endpoints).
	// Config checks that the file is readable.
	TokenFile string

	// Verifier holds the remaining authn settings (leeway, caches, logger,
	// clock…); its Issuer, Audience, JWKSURL and HTTPClient are set by
	// Config and must be empty. Its zero value is authn's defaults.
	Verifier authn.Config
}

// Config returns the authn.Config that verifies the cluster's projected
// service-account tokens for opts.Audience. It reads the CA bundle and
// checks that the token file is readable, so a pod without them fails at
// start, not at the first request; it does not contact the API server.
// Errors are prefixed "kubernetes: " and name the file or field at fault.
func Config(opts Options) (authn.Config, error) {
	if opts.Issuer == "" {
		return authn.Config{}, errors.New("kubernetes: Options.Issuer is required (the cluster's --service-account-issuer)")
	}
	if len(opts.Audience) == 0 {
		return authn.Config{}, errors.New("kubernetes: Options.Audience is required (this server's resource URI, as projected into the pod's token)")
	}
	cfg := opts.Verifier
	if cfg.Issuer != "" || cfg.Audience != nil || cfg.JWKSURL != "" || cfg.HTTPClient != nil {
		return authn.Config{}, errors.New("kubernetes: Options.Verifier must leave Issuer, Audience, JWKSURL and HTTPClient empty (Config sets them)")
	}
	cfg.Issuer = opts.Issuer
	cfg.Audience = append([]string(nil), opts.Audience...)

	hosts := []string{}
	if opts.Discover {
		u, err := url.Parse(opts.Issuer)
		if err != nil || u.Host == "" {
			return authn.Config{}, fmt.Errorf("kubernetes: Options.Issuer %q is not an absolute URL", opts.Issuer)
		}
		hosts = append(hosts, u.Host)
	} else {
		api := strings.TrimSuffix(cmp.Or(opts.APIServer, DefaultAPIServer), "/")
		u, err := url.Parse(api)
		if err != nil || u.Host == "" || u.Scheme != "https" {
			return authn.Config{}, fmt.Errorf("kubernetes: Options.APIServer %q must be an absolute https URL", api)
		}
		hosts = append(hosts, u.Host)
		cfg.JWKSURL = api + JWKSPath
	}

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	switch caFile := cmp.Or(opts.CAFile, DefaultCAFile); caFile {
	case "-":
	default:
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return authn.Config{}, fmt.Errorf("kubernetes: reading the cluster CA bundle: %w (set Options.CAFile, or \"-\" for the system roots)", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return authn.Config{}, fmt.Errorf("kubernetes: CA bundle %s holds no PEM certificate", caFile)
		}
		tlsConfig.RootCAs = pool
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsConfig

	var rt http.RoundTripper = base
	tokenFile := opts.TokenFile
	if tokenFile == "" && !opts.Discover {
		tokenFile = DefaultTokenFile
	}
	if tokenFile != "" && tokenFile != "-" {
		if _, err := os.Stat(tokenFile); err != nil {
			return authn.Config{}, fmt.Errorf("kubernetes: service-account token file: %w (set Options.TokenFile, or \"-\" to send none)", err)
		}
		t, err := credentials.NewTransport(credentials.Config{
			Secret: credentials.File(tokenFile),
			// The pod's token goes to the key endpoints' host only: a fetch
			// anywhere else (a jwks_uri on another host) is refused.
			Hosts: hosts,
		}, base)
		if err != nil {
			return authn.Config{}, fmt.Errorf("kubernetes: %w", err)
		}
		rt = t
	}
	timeout := cfg.FetchTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	cfg.HTTPClient = &http.Client{
		Transport: rt,
		Timeout:   timeout,
		// Key fetches never follow a redirect: it could lead the pod's token
		// or the key lookup to another host.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return cfg, nil
}

// Identity is the workload a service-account token names.
type Identity struct {
	Namespace         string
	ServiceAccount    string
	ServiceAccountUID string
	Pod, PodUID       string // empty for a token not bound to a pod
	Node              string // empty unless the cluster binds tokens to nodes
}

// IdentityFrom reads the kubernetes.io claim of a verified token. It returns
// false when the claim is missing or malformed, or when sub is not
// "system:serviceaccount:<namespace>:<name>" for the same namespace and
// name, so a token of another issuer that merely carries a look-alike claim
// is not taken for a workload.
func IdentityFrom(info *authn.TokenInfo) (Identity, bool) {
	if info == nil {
		return Identity{}, false
	}
	k, _ := info.Claims["kubernetes.io"].(map[string]any)
	if k == nil {
		return Identity{}, false
	}
	id := Identity{Namespace: str(k["namespace"])}
	id.ServiceAccount, id.ServiceAccountUID = nameUID(k["serviceaccount"])
	id.Pod, id.PodUID = nameUID(k["pod"])
	id.Node, _ = nameUID(k["node"])
	if id.Namespace == "" || id.ServiceAccount == "" ||
		info.Subject != "system:serviceaccount:"+id.Namespace+":"+id.ServiceAccount {
		return Identity{}, false
	}
	return id, true
}

func nameUID(v any) (name, uid string) {
	m, _ := v.(map[string]any)
	return str(m["name"]), str(m["uid"])
}

func str(v any) string {
	s, _ := v.(string)
	return s
}
