// Package upstream is reserved for the embedded OAuth 2.1 authorization
// server that logs users in at an upstream identity provider (GitHub,
// Google, …), keeps their upstream tokens per session and forwards them to
// backends (see DESIGN.md). It has no API yet: nothing here is usable, and
// nothing imports it.
package upstream
