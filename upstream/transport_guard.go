package upstream

import "github.com/mcpauth-go/mcpauth/internal/outbound"

// ErrDestinationNotAllowed is returned (wrapped) when a [Transport] refuses
// to send the upstream token to a request's destination: a host outside
// TransportConfig.Hosts, plain http to a non-loopback host without
// InsecureAllowHTTP, or (without Hosts) a redirect to another host. It is
// the sentinel every outbound transport of this module shares
// (credentials.ErrDestinationNotAllowed, tokenexchange.ErrDestinationNotAllowed).
var ErrDestinationNotAllowed = outbound.ErrDestination

// ErrPassthrough is returned (wrapped) when the outgoing request carries the
// inbound access token outside the Authorization header the Transport
// replaces (MCP forbids token passthrough). It is the sentinel every
// outbound transport of this module shares (credentials.ErrTokenPassthrough,
// tokenexchange.ErrPassthrough).
var ErrPassthrough = outbound.ErrPassthrough
