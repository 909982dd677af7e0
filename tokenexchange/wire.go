package tokenexchange

import (
	"encoding/base64"
	"errors"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
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

// encoded is what travels beside a token request's form body: the client
// credentials.
type encoded struct {
	basicUser, basicPass string // client_secret_basic, each form-encoded (RFC 6749 §2.3.1)
	assertion            string // private_key_jwt client assertion (RFC 7523 §2.2)
}

// encode fills form with the RFC 8693 §2.1 request for r and adds the
// client authentication of RFC 6749 §2.3 or RFC 7523 §2.2. The caller owns
// form, so that it need not escape to the heap.
func (t *Transport) encode(form url.Values, r request, tokenURL string) (encoded, error) {
	var e encoded
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
	switch t.authMethod {
	case ClientSecretBasic:
		e.basicUser, e.basicPass = url.QueryEscape(t.cfg.ClientID), url.QueryEscape(t.cfg.ClientSecret)
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
		assertion, err := t.clientAssertion(aud)
		if err != nil {
			return encoded{}, err
		}
		e.assertion = assertion
		form.Set("client_id", t.cfg.ClientID)
		form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
		form.Set("client_assertion", assertion)
	}
	return e, nil
}

// secrets lists every form in which the STS may quote back what it
// received — raw, form-encoded, as the Basic credentials or the client
// assertion — so that sanitize can cut them out of its answer.
func (e encoded) secrets(r request, clientSecret string) []string {
	s := []string{r.subjectToken, r.actorToken, clientSecret, url.QueryEscape(clientSecret), e.assertion}
	if e.basicUser != "" {
		s = append(s, base64.StdEncoding.EncodeToString([]byte(e.basicUser+":"+e.basicPass)))
	}
	return s
}
