// Preloaded (node --import) into the MCP conformance suite so it runs as an
// authenticated client of a protected server: every HTTP request it makes to
// the origin in MCPAUTH_CONFORMANCE_ORIGIN carries the bearer token in
// MCPAUTH_CONFORMANCE_TOKEN, unless the request already has an Authorization
// header. Nothing else about its requests changes (Host, Origin and the
// other headers its scenarios set are sent as they are).
//
// The suite talks HTTP through undici (its own and Node's fetch), which share
// one global dispatcher, and through node:http's request; this installs an
// interceptor on the dispatcher (loaded through the same undici the suite
// resolves) and wraps http.request.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('./node_modules/@modelcontextprotocol/conformance/dist/index.js', import.meta.url));
const { Agent, setGlobalDispatcher } = require('undici');

// With no token, requests go out unchanged.
const origin = process.env.MCPAUTH_CONFORMANCE_TOKEN ? process.env.MCPAUTH_CONFORMANCE_ORIGIN : undefined;
const value = `Bearer ${process.env.MCPAUTH_CONFORMANCE_TOKEN}`;
delete process.env.MCPAUTH_CONFORMANCE_TOKEN;

function withAuthorization(headers) {
  if (headers == null) return { authorization: value };
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) {
      if (String(headers[i]).toLowerCase() === 'authorization') return headers;
    }
    return [...headers, 'authorization', value];
  }
  if (typeof headers[Symbol.iterator] === 'function' && typeof headers.entries === 'function') {
    headers = Object.fromEntries(headers.entries());
  }
  if (Object.keys(headers).some((k) => k.toLowerCase() === 'authorization')) return headers;
  return { ...headers, authorization: value };
}

setGlobalDispatcher(new Agent().compose((dispatch) => (opts, handler) => {
  if (String(opts.origin).replace(/\/$/, '') === origin) {
    return dispatch({ ...opts, headers: withAuthorization(opts.headers) }, handler);
  }
  return dispatch(opts, handler);
}));

// http.request(options[, callback]) with an options object, as the suite
// calls it.
const request = http.request;
http.request = function requestWithAuthorization(options, ...rest) {
  if (options && typeof options === 'object' && !(options instanceof URL)) {
    const target = `${options.protocol ?? 'http:'}//${options.hostname ?? options.host}:${options.port}`;
    if (target === origin) options = { ...options, headers: withAuthorization(options.headers ?? {}) };
  }
  return request.call(this, options, ...rest);
};
