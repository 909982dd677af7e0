package authn

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors returned (wrapped) by [Verifier.Verify] and the other
// [TokenVerifier] implementations in this package. They are transport-neutral:
// the HTTP status for each is decided only by [Middleware]. Test with [errors.Is].
var (
	// ErrNoToken means the request carried no bearer token.
	ErrNoToken = errors.New("authn: no bearer token")
	// ErrInvalidToken means the token is malformed, forged, expired, not yet
	// valid, issued by another issuer or for another audience, or inactive.
	// Every token fault matches ErrInvalidToken, including expiry.
	ErrInvalidToken = errors.New("authn: invalid token")
	// ErrExpired means the token is otherwise valid but its exp has passed
	// (with leeway). An expired-token error matches both ErrExpired and
	// ErrInvalidToken.
	ErrExpired = errors.New("authn: token expired")
	// ErrInsufficientScope means the token is valid but lacks a scope the
	// operation needs.
	ErrInsufficientScope = errors.New("authn: insufficient scope")
	// ErrUnavailable means the token could not be checked because the key
	// source or introspection endpoint is unreachable and nothing cached can
	// decide. It is never reported as an invalid token.
	ErrUnavailable = errors.New("authn: verification unavailable")
)

// tokenError carries the cause of a token fault for logs. Its message never
// contains the token.
type tokenError struct {
	kind  error // ErrInvalidToken or ErrExpired or ErrUnavailable
	cause string
	err   error // optional wrapped error
}

func (e *tokenError) Error() string {
	msg := e.kind.Error() + ": " + e.cause
	if e.err != nil {
		msg += ": " + strings.TrimPrefix(e.err.Error(), "authn: ") // one package prefix per message
	}
	return msg
}

func (e *tokenError) Unwrap() []error {
	errs := []error{e.kind}
	if e.kind == ErrExpired {
		errs = append(errs, ErrInvalidToken)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

func invalid(cause string) error { return &tokenError{kind: ErrInvalidToken, cause: cause} }

func invalidf(cause string, err error) error {
	return &tokenError{kind: ErrInvalidToken, cause: cause, err: err}
}

func unavailable(cause string, err error) error {
	return &tokenError{kind: ErrUnavailable, cause: cause, err: err}
}

// readyError is Ready's failure: it names the issuer and keeps the cause
// for errors.Is (ErrUnavailable), with one package prefix.
type readyError struct {
	issuer string
	err    error
}

func (e *readyError) Error() string {
	return "authn: issuer " + strconv.Quote(e.issuer) + " is not ready: " + strings.TrimPrefix(e.err.Error(), "authn: ")
}

func (e *readyError) Unwrap() error { return e.err }
