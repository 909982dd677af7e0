package tokenexchange

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/mcpauth-go/mcpauth/internal/outbound"
)

var (
	// ErrNoIdentity means the request context carries no verified identity
	// (or the identity has no token to exchange). The request is not sent.
	ErrNoIdentity = errors.New("tokenexchange: no verified identity in request context")

	// ErrRetryable matches failures that may succeed if tried again later:
	// the STS answered 5xx or 429, could not be reached, timed out, or sent a
	// malformed or oversized response.
	ErrRetryable = errors.New("tokenexchange: temporary failure")

	// ErrPassthrough means the outbound request carried the inbound
	// (subject) token outside the header the Transport sets — in another
	// header, a cookie, a Basic credential, its URL or a trailer — or the
	// token endpoint issued the subject or actor token itself; the request
	// is refused rather than sent. It is the same error value as
	// credentials.ErrTokenPassthrough, so errors.Is works the same on an
	// error from either package.
	ErrPassthrough = outbound.ErrPassthrough

	// ErrDestinationNotAllowed means the exchanged token may not be sent to
	// the request's destination: plain http to a non-loopback host without
	// Config.InsecureAllowHTTP, a host outside Config.Hosts, or a redirect
	// to another host. It is the same error value as
	// credentials.ErrDestinationNotAllowed.
	ErrDestinationNotAllowed = outbound.ErrDestination

	// ErrSubjectExpired means the subject token's expiry has passed, so it is
	// not sent to the STS.
	ErrSubjectExpired = errors.New("tokenexchange: subject token expired")
)

// Error is an error response from the token endpoint (RFC 6749 §5.2). Every
// non-200 answer is an *Error; those with status 429 or 5xx also match
// [ErrRetryable].
//
// Description is the server's error_description, cut to 256 characters,
// stripped of control characters and of any token or secret this package
// sent in the request, so an Error can be logged as it is.
type Error struct {
	StatusCode  int    // HTTP status of the response
	Code        string // error, e.g. "invalid_grant"; empty if the body had none
	Description string // error_description, sanitized
	URI         string // error_uri
}

// Error returns "tokenexchange: token endpoint: <status>: <code>: <description>".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tokenexchange: token endpoint: status %d", e.StatusCode)
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Is reports whether target is [ErrRetryable] and the status is 429 or 5xx.
func (e *Error) Is(target error) bool {
	return target == ErrRetryable && e.Retryable()
}

// Retryable reports whether the status is 429 or 5xx.
func (e *Error) Retryable() bool {
	return e.StatusCode == 429 || e.StatusCode >= 500
}

// maxDescription caps error_description and error_uri in an [Error].
const maxDescription = 256

// sanitize drops control characters from s, replaces every occurrence of a
// secret with REDACTED and cuts the result to maxDescription runes.
func sanitize(s string, secrets ...string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "REDACTED")
		}
	}
	n := 0
	for i := range s {
		if n == maxDescription {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
