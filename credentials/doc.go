// Package credentials gives an MCP server's calls to its backends a static
// credential — an API key, a bearer token, a user name and password — that is
// not tied to the user behind the request, and keeps that credential out of
// logs and error messages.
//
// # Secrets and sources
//
// A [Secret] holds a credential and never reveals it through fmt, slog,
// encoding/json or encoding/text: every path prints "[REDACTED]"; the value
// is read only through [Secret.Reveal]. A [Source] yields the current
// secret: [Literal] (a fixed value), [Env] (an environment variable),
// [File] (a file re-read when it changes, so a secret rotated on disk is used
// without a restart) or a [SourceFunc] for anything else — a vault client,
// a cloud secret manager.
//
// # Outbound HTTP
//
// [NewTransport] returns an [http.RoundTripper] that sets, on a copy of each
// request:
//
//   - Authorization: Bearer <secret> (RFC 6750 §2.1, b64token syntax checked);
//   - Authorization: Basic base64(<user>:<password>) (RFC 7617, UTF-8);
//   - any other header, with an optional prefix (X-API-Key: <secret>,
//     Authorization: Token <secret>).
//
// Hop-by-hop headers (RFC 9110 §7.6.1), Host, Content-Length, Content-Type
// and Cookie are refused when the transport is built, not on the first
// request. The sources are first asked on the first request, unless
// Config.CheckAtStart asks NewTransport to check them (a missing file, an
// unset variable, a malformed value) so a misconfiguration fails at start. The
// credential is sent only over https, or plain http to a loopback address
// (RFC 6750 §5.3: bearer tokens MUST be sent over TLS), unless
// Config.InsecureAllowHTTP says otherwise; Config.Hosts pins it to the
// backend's hosts. A redirect to another host does not carry it along (with
// Hosts unset, only the original host and its subdomains get it, as net/http
// does for Authorization).
//
// # Stdio servers
//
// [EnvPairs] and [AppendEnv] turn sources into KEY=value pairs for the
// environment of a child process, the way stdio MCP servers receive their
// backend credentials.
//
// # No token passthrough
//
// The MCP authorization specification forbids an MCP server to pass the
// access token it received from the client on to an upstream API ("The MCP
// server MUST NOT pass through the token it received from the MCP client";
// see also the "Token Passthrough" section of the MCP security best
// practices). [CheckPassthrough] and [PassthroughGuard] refuse to send a
// request that carries the inbound token of the verified caller in its
// context ([github.com/mcpauth-go/mcpauth/authn.FromContext]), in any header,
// query parameter, cookie or Basic credential; the error wraps
// [ErrTokenPassthrough]. [Transport] applies the same check to every part
// of the request except the header it sets, which it replaces whatever it
// held: a handler that copies the inbound Authorization onto its backend call
// gets it replaced with the configured credential, as with
// golang.org/x/oauth2's Transport. Wrap any other outbound transport (one
// that forwards headers, say) in a [PassthroughGuard]. The tokenexchange
// package applies the same rules with the same sentinels, so errors.Is works
// the same on an error from either package.
//
// For a credential that depends on the user, see the tokenexchange package
// (RFC 8693).
package credentials
