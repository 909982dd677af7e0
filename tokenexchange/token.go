package tokenexchange

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Token is an exchanged token. Treat it as read-only.
//
// Token's String, GoString, Format, LogValue and MarshalJSON never reveal
// AccessToken or RefreshToken.
type Token struct {
	AccessToken     string    // the issued token (RFC 8693 access_token, whatever its type)
	IssuedTokenType string    // issued_token_type
	TokenType       string    // token_type: "Bearer" or "N_A"
	Expiry          time.Time // from expires_in; zero if the STS sent none
	Scopes          []string  // scope of the response, if any
	RefreshToken    string    // refresh_token, if any (rarely issued by an STS)
}

type tokenJSON struct {
	AccessToken     string     `json:"access_token"`
	IssuedTokenType string     `json:"issued_token_type,omitempty"`
	TokenType       string     `json:"token_type,omitempty"`
	Expiry          *time.Time `json:"expiry,omitempty"`
	Scopes          []string   `json:"scopes,omitempty"`
	RefreshToken    string     `json:"refresh_token,omitempty"`
}

// String describes the token without revealing it.
func (t Token) String() string {
	exp := "none"
	if !t.Expiry.IsZero() {
		exp = t.Expiry.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("tokenexchange.Token{AccessToken:%s IssuedTokenType:%q TokenType:%q Expiry:%s Scopes:%q RefreshToken:%s}",
		redacted(t.AccessToken), t.IssuedTokenType, t.TokenType, exp, t.Scopes, redacted(t.RefreshToken))
}

// GoString is String.
func (t Token) GoString() string { return t.String() }

// Format makes every fmt verb print String.
func (t Token) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, t.String()) }

// LogValue implements [slog.LogValuer] without the token.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON encodes the token's metadata with the token values redacted.
func (t Token) MarshalJSON() ([]byte, error) {
	j := tokenJSON{AccessToken: redacted(t.AccessToken), IssuedTokenType: t.IssuedTokenType, TokenType: t.TokenType,
		Scopes: t.Scopes, RefreshToken: redacted(t.RefreshToken)}
	if !t.Expiry.IsZero() {
		j.Expiry = &t.Expiry
	}
	return json.Marshal(j)
}
