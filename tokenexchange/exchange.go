package tokenexchange

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauth-go/mcpauth/internal/discovery"
	"github.com/mcpauth-go/mcpauth/internal/netutil"
)

// request is one token exchange, as sent on the wire.
type request struct {
	subjectToken, subjectTokenType string
	actorToken, actorTokenType     string
}

// tokenResponse is the RFC 8693 §2.2.1 success response.
type tokenResponse struct {
	AccessToken     string    `json:"access_token"`
	IssuedTokenType string    `json:"issued_token_type"`
	TokenType       string    `json:"token_type"`
	ExpiresIn       expiresIn `json:"expires_in"`
	Scope           string    `json:"scope"`
	RefreshToken    string    `json:"refresh_token"`
}

// expiresIn accepts a JSON number or a numeric string (some servers quote it).
type expiresIn struct {
	set     bool
	seconds int64
}

func (e *expiresIn) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	s := strings.Trim(string(b), `"`)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0) || f > 1<<40 { // !(f >= 0) also refuses NaN
		return errors.New("expires_in is not a non-negative number")
	}
	// Past maxExpiresIn seconds, time.Duration would overflow into an expiry
	// in the past or at a random time; such a token never expires in practice.
	e.set, e.seconds = true, int64(min(f, maxExpiresIn))
	return nil
}

// maxExpiresIn is the largest expires_in (in seconds) a time.Duration holds:
// about 292 years.
const maxExpiresIn = float64(math.MaxInt64 / int64(time.Second))

// errorResponse is the RFC 6749 §5.2 error response.
type errorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	URI         string `json:"error_uri"`
}

// exchange performs one STS call. It never returns an error that contains a
// token or the client secret.
func (t *Transport) exchange(ctx context.Context, r request) (*Token, error) {
	tokenURL, err := t.tokenURL(ctx)
	if err != nil {
		return nil, err
	}
	form := url.Values{}
	form.Set("grant_type", GrantType)
	form.Set("subject_token", r.subjectToken)
	form.Set("subject_token_type", r.subjectTokenType)
	form.Set("requested_token_type", t.requestedTokenType)
	if t.cfg.Audience != "" {
		form.Set("audience", t.cfg.Audience)
	}
	for _, res := range t.resources {
		form.Add("resource", res)
	}
	if len(t.scopes) > 0 {
		form.Set("scope", strings.Join(t.scopes, " "))
	}
	if r.actorToken != "" {
		form.Set("actor_token", r.actorToken)
		form.Set("actor_token_type", r.actorTokenType)
	}
	var basicUser, basicPass, assertion string
	switch t.authMethod {
	case ClientSecretBasic:
		// RFC 6749 §2.3.1: form-encode both before Basic encoding.
		basicUser, basicPass = url.QueryEscape(t.cfg.ClientID), url.QueryEscape(t.cfg.ClientSecret)
	case ClientSecretPost:
		form.Set("client_id", t.cfg.ClientID)
		form.Set("client_secret", t.cfg.ClientSecret)
	case None:
		if t.cfg.ClientID != "" {
			form.Set("client_id", t.cfg.ClientID)
		}
	case PrivateKeyJWT:
		aud := t.cfg.AssertionAudience
		if aud == "" {
			aud = tokenURL
		}
		assertion, err = t.clientAssertion(aud)
		if err != nil {
			return nil, err
		}
		form.Set("client_id", t.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("tokenexchange: building token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if basicUser != "" {
		req.SetBasicAuth(basicUser, basicPass)
	}
	// expires_in counts from issuance, which precedes the answer's arrival.
	sent := t.now()
	resp, err := t.client.Do(req)
	if err != nil {
		// *url.Error names the method, URL and cause; none carries a token.
		return nil, fmt.Errorf("tokenexchange: token request: %w: %w", ErrRetryable, err)
	}
	defer resp.Body.Close()
	body, err := discovery.ReadLimited(resp.Body, MaxResponseSize)
	if err != nil {
		return nil, fmt.Errorf("tokenexchange: reading token response: %w: %w", ErrRetryable, err)
	}
	// The STS may quote what it received: raw, form-encoded, as the Basic
	// credentials or the client assertion.
	secrets := []string{r.subjectToken, r.actorToken, t.cfg.ClientSecret, url.QueryEscape(t.cfg.ClientSecret), assertion}
	if basicUser != "" {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(basicUser+":"+basicPass)))
	}
	if resp.StatusCode != http.StatusOK {
		e := &Error{StatusCode: resp.StatusCode}
		var er errorResponse
		if json.Unmarshal(body, &er) == nil {
			e.Code = sanitize(er.Error, secrets...)
			e.Description = sanitize(er.Description, secrets...)
			e.URI = sanitize(er.URI, secrets...)
		}
		return nil, e
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		// The JSON error text is dropped: it may quote the body.
		return nil, fmt.Errorf("tokenexchange: token response is not valid JSON: %w", ErrRetryable)
	}
	if tr.AccessToken == "" {
		return nil, fmt.Errorf("tokenexchange: token response has no access_token: %w", ErrRetryable)
	}
	// An STS that hands back the subject (or actor) token, as a no-op
	// exchange would, must not make this transport forward it.
	if tr.AccessToken == r.subjectToken || tr.AccessToken == r.actorToken {
		return nil, fmt.Errorf("tokenexchange: token endpoint issued the subject or actor token itself: %w", ErrPassthrough)
	}
	secrets = append(secrets, tr.AccessToken, tr.RefreshToken)
	if tr.IssuedTokenType != t.requestedTokenType {
		return nil, fmt.Errorf("tokenexchange: issued_token_type %q, requested %q",
			sanitize(tr.IssuedTokenType, secrets...), t.requestedTokenType)
	}
	// RFC 8693 §2.2.1: token_type is Bearer for a bearer access token, N_A
	// when the issued token is not an access token.
	switch {
	case strings.EqualFold(tr.TokenType, "Bearer"):
		tr.TokenType = "Bearer"
	case tr.TokenType == "N_A" && t.requestedTokenType != TokenTypeAccessToken:
	default:
		return nil, fmt.Errorf("tokenexchange: unsupported token_type %q", sanitize(tr.TokenType, secrets...))
	}
	tok := &Token{
		AccessToken:     tr.AccessToken,
		IssuedTokenType: tr.IssuedTokenType,
		TokenType:       tr.TokenType,
		RefreshToken:    tr.RefreshToken,
	}
	if tr.ExpiresIn.set {
		tok.Expiry = sent.Add(time.Duration(tr.ExpiresIn.seconds) * time.Second)
	}
	if tr.Scope != "" {
		tok.Scopes = strings.Fields(tr.Scope)
	}
	return tok, nil
}

// tokenURL returns the configured or discovered token endpoint. Discovery is
// retried on the next exchange after a failure.
func (t *Transport) tokenURL(ctx context.Context) (string, error) {
	if t.cfg.TokenURL != "" {
		return t.cfg.TokenURL, nil
	}
	t.discMu.Lock()
	defer t.discMu.Unlock()
	if t.discovered != "" {
		return t.discovered, nil
	}
	md, err := discovery.Fetch(ctx, t.client, t.cfg.Issuer)
	if err != nil {
		return "", fmt.Errorf("tokenexchange: discovering token endpoint: %w: %w", ErrRetryable, err)
	}
	if md.TokenEndpoint == "" {
		return "", fmt.Errorf("tokenexchange: issuer metadata has no token_endpoint")
	}
	if err := checkEndpoint(md.TokenEndpoint, t.cfg.InsecureAllowHTTP); err != nil {
		return "", err
	}
	t.discovered = md.TokenEndpoint
	return t.discovered, nil
}

// checkEndpoint requires an absolute https URL, or http on loopback.
func checkEndpoint(raw string, allowHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("tokenexchange: token endpoint %q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !allowHTTP && !netutil.IsLoopbackHost(u.Hostname()) {
		return fmt.Errorf("tokenexchange: token endpoint %q must use https (http only on loopback or with InsecureAllowHTTP)", raw)
	}
	if u.User != nil {
		return fmt.Errorf("tokenexchange: token endpoint must not carry user info")
	}
	return nil
}

// --- private_key_jwt (RFC 7523) ---

// signingAlg returns the JWS alg for key, honouring an explicit choice.
func signingAlg(key crypto.Signer, explicit string) (string, error) {
	switch k := key.Public().(type) {
	case *rsa.PublicKey:
		switch explicit {
		case "":
			return "RS256", nil
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
			return explicit, nil
		}
	case *ecdsa.PublicKey:
		var alg string
		switch k.Curve.Params().BitSize {
		case 256:
			alg = "ES256"
		case 384:
			alg = "ES384"
		case 521:
			alg = "ES512"
		default:
			return "", errors.New("tokenexchange: unsupported ECDSA curve")
		}
		if explicit == "" || explicit == alg {
			return alg, nil
		}
	case ed25519.PublicKey:
		if explicit == "" || explicit == "EdDSA" || explicit == "Ed25519" {
			return "EdDSA", nil
		}
	default:
		return "", fmt.Errorf("tokenexchange: unsupported private key type %T", k)
	}
	return "", fmt.Errorf("tokenexchange: signing algorithm %q does not fit the private key", explicit)
}

func hashFor(alg string) crypto.Hash {
	switch alg[2:] {
	case "384":
		return crypto.SHA384
	case "512":
		return crypto.SHA512
	}
	return crypto.SHA256
}

var b64 = base64.RawURLEncoding

// clientAssertion signs an RFC 7523 §3 client assertion for audience aud.
func (t *Transport) clientAssertion(aud string) (string, error) {
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("tokenexchange: client assertion: %w", err)
	}
	now := t.now()
	hdr := map[string]string{"alg": t.alg, "typ": "JWT"}
	if t.cfg.KeyID != "" {
		hdr["kid"] = t.cfg.KeyID
	}
	claims := map[string]any{
		"iss": t.cfg.ClientID,
		"sub": t.cfg.ClientID,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(),
		"jti": b64.EncodeToString(jti[:]),
	}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	var buf bytes.Buffer
	buf.WriteString(b64.EncodeToString(h))
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(c))
	sig, err := signJWS(t.cfg.PrivateKey, t.alg, buf.Bytes())
	if err != nil {
		return "", fmt.Errorf("tokenexchange: signing client assertion: %w", err)
	}
	buf.WriteByte('.')
	buf.WriteString(b64.EncodeToString(sig))
	return buf.String(), nil
}

// signJWS computes the JWS signature of input with alg (RFC 7518 §3).
func signJWS(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	if alg == "EdDSA" {
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	}
	hf := hashFor(alg)
	h := hf.New()
	h.Write(input)
	digest := h.Sum(nil)
	switch alg[:2] {
	case "RS":
		return key.Sign(rand.Reader, digest, hf)
	case "PS":
		return key.Sign(rand.Reader, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: hf})
	case "ES":
		der, err := key.Sign(rand.Reader, digest, hf)
		if err != nil {
			return nil, err
		}
		var sig struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &sig); err != nil {
			return nil, err
		}
		size := (key.Public().(*ecdsa.PublicKey).Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		sig.R.FillBytes(out[:size])
		sig.S.FillBytes(out[size:])
		return out, nil
	}
	return nil, fmt.Errorf("unsupported alg %q", alg)
}
