package authz

import "net/http"

// This file answers a request for a method authz does not know, by the
// MCP revision the request names (see "Unknown methods" in the package
// documentation).

// firstRevision404 is the first MCP revision whose Streamable HTTP
// transport answers an RPC method the server does not implement with 404
// Not Found and JSON-RPC -32601, and the one that removed the methods
// marked removed in mcpMethods.
const firstRevision404 = "2026-07-28"

// reasonUnknownMethod is the Decision.Reason of a method authz does not
// know (or one the request's revision removed).
const reasonUnknownMethod = "unknown method"

// currentRevision reports whether the MCP-Protocol-Version header of a
// request (nil h: none, as for Authorize) names 2026-07-28 or a later
// revision. Without the header a request is of an earlier revision: both
// 2025-11-25 and 2026-07-28 tell a server to assume 2025-03-26 then (and a
// 2025-11-25 client sends no header on initialize). A value that is not a
// revision date (YYYY-MM-DD) is no earlier revision, all of which are
// dates, so it gets the rules of the current one.
func currentRevision(h http.Header) bool {
	v := h.Get("Mcp-Protocol-Version")
	if v == "" {
		return false
	}
	if !isRevisionDate(v) {
		return true
	}
	return v >= firstRevision404 // dates of one form compare as strings
}

func isRevisionDate(v string) bool {
	if len(v) != len("2006-01-02") {
		return false
	}
	for i := range len(v) {
		if i == 4 || i == 7 {
			if v[i] != '-' {
				return false
			}
		} else if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// unknownMethodStatus is the HTTP status of the answer to a request for a
// method authz does not know: 404 from 2026-07-28, 403 before (where 404
// means that the session is gone).
func unknownMethodStatus(h http.Header) int {
	if currentRevision(h) {
		return http.StatusNotFound
	}
	return http.StatusForbidden
}
