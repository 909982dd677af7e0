// An MCP client built on the official TypeScript SDK, run by the interop
// tests against an MCP server protected by mcpauth. It reads one JSON
// document on stdin:
//
//	{
//	  "url":   "<MCP endpoint>",
//	  "flow":  "authorization_code" | "client_credentials" | "private_key_jwt",
//	  "user":  "<login at the IdP's development pages>",          (authorization_code)
//	  "redirect": "<redirect URI; nothing needs to listen there>", (authorization_code)
//	  "clientMetadataUrl": "<https client_id URL>",                 (authorization_code, optional)
//	  "refresh": true,            (authorization_code, optional: refresh, then make the calls again)
//	  "clientId", "clientSecret", "privateKey" (a JWK), "alg", "scope",
//	  "issuer": "<the authorization server the client credentials belong to>",
//	  "calls": [{"name": "<tool>", "arguments": {...}}, ...]
//	}
//
// authorization_code registers a public client dynamically (RFC 7591), or
// uses clientMetadataUrl as its client_id when the server supports Client ID
// Metadata Documents, and logs in with PKCE through the SDK's own auth();
// the others use the SDK's ClientCredentialsProvider and
// PrivateKeyJwtProvider. Every OAuth step is the SDK's: this program only
// answers its redirectToAuthorization by walking the login pages, then
// hands the code back (finishAuth) and retries, as a real client does after
// the user returns.
//
// It prints one JSON document on stdout: the tool names tools/list
// returned, each call's outcome, the scopes of each authorization request
// and every HTTP exchange the SDK made (method, URL without query, status),
// never a token, secret or code.
import { text } from 'node:stream/consumers';
import { randomBytes } from 'node:crypto';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider, PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

import { login } from './login.mjs';

const cfg = JSON.parse(await text(process.stdin));
const out = { tools: [], calls: [], authorizations: [], http: [] };

// recordingFetch logs each exchange the SDK makes, without query or body.
const recordingFetch = async (input, init) => {
  const res = await fetch(input, init);
  const u = new URL(input instanceof Request ? input.url : String(input));
  out.http.push({ method: init?.method ?? 'GET', url: u.origin + u.pathname, status: res.status });
  return res;
};

// codeFlow is an in-memory OAuthClientProvider for a public client
// registered dynamically, whose "browser" is login().
class CodeFlow {
  constructor() { this.pending = undefined; this.jar = new Map(); }
  get redirectUrl() { return cfg.redirect; }
  // With cfg.clientMetadataUrl, an authorization server that supports
  // Client ID Metadata Documents gets that URL as the client_id instead of
  // a registration.
  get clientMetadataUrl() { return cfg.clientMetadataUrl; }
  get clientMetadata() {
    return {
      client_name: 'mcpauth-interop-ts-sdk',
      redirect_uris: [cfg.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() { this.expectedState = randomBytes(16).toString('hex'); return this.expectedState; }
  clientInformation() { return this.client; }
  saveClientInformation(info) { this.client = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  saveCodeVerifier(v) { this.verifier = v; }
  codeVerifier() { return this.verifier; }
  async redirectToAuthorization(url) {
    out.authorizations.push({ scope: url.searchParams.get('scope'), resource: url.searchParams.get('resource') });
    const back = await login(url, cfg.redirect, cfg.user, this.jar);
    if (back.get('error')) throw new Error(`authorization error ${back.get('error')}`);
    if (back.get('state') !== this.expectedState) throw new Error('authorization response state mismatch');
    this.pending = back.get('code');
  }
}

let provider;
switch (cfg.flow) {
  case 'authorization_code':
    provider = new CodeFlow();
    break;
  case 'client_credentials':
    provider = new ClientCredentialsProvider({
      clientId: cfg.clientId, clientSecret: cfg.clientSecret, scope: cfg.scope, expectedIssuer: cfg.issuer,
    });
    break;
  case 'private_key_jwt':
    provider = new PrivateKeyJwtProvider({
      clientId: cfg.clientId, privateKey: cfg.privateKey, algorithm: cfg.alg, scope: cfg.scope, expectedIssuer: cfg.issuer,
    });
    break;
  default:
    throw new Error(`unknown flow ${cfg.flow}`);
}

const client = new Client({ name: 'mcpauth-interop-ts-sdk', version: '0.0.0' });
const newTransport = () => new StreamableHTTPClientTransport(new URL(cfg.url), { authProvider: provider, fetch: recordingFetch });

// withLogin runs op; when the SDK stopped for a user login (the user has
// now come back with a code), it completes the exchange and runs op again.
async function withLogin(transport, op) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || provider.pending === undefined || attempt > 2) throw err;
      const code = provider.pending;
      provider.pending = undefined;
      await transport.finishAuth(code);
    }
  }
}

let transport = newTransport();
try {
  await client.connect(transport);
} catch (err) {
  if (!(err instanceof UnauthorizedError) || provider.pending === undefined) throw err;
  const code = provider.pending;
  provider.pending = undefined;
  await transport.finishAuth(code);
  transport = newTransport();
  await client.connect(transport);
}

const listed = await withLogin(transport, () => client.listTools());
out.tools = listed.tools.map((t) => t.name).sort();

// runCalls makes cfg.calls and appends each outcome to results.
async function runCalls(results) {
  for (const call of cfg.calls ?? []) {
    try {
      const res = await withLogin(transport, () => client.callTool({ name: call.name, arguments: call.arguments ?? {} }));
      results.push({
        name: call.name,
        isError: res.isError === true,
        text: (res.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join(''),
      });
    } catch (err) {
      results.push({ name: call.name, error: String(err?.message ?? err).slice(0, 300) });
    }
  }
}
await runCalls(out.calls);

// With cfg.refresh (authorization_code), the SDK's auth() runs again with
// the tokens it holds, which uses the refresh token (refresh_token grant),
// and the calls are made again with the new access token. out.refresh says
// whether auth() succeeded without a login and whether both tokens changed
// (rotation), never the tokens themselves.
if (cfg.refresh) {
  const before = await provider.tokens();
  const result = await auth(provider, { serverUrl: cfg.url, fetchFn: recordingFetch });
  const after = await provider.tokens();
  out.refresh = {
    result,
    login: provider.pending !== undefined,
    newAccessToken: !!after?.access_token && after.access_token !== before?.access_token,
    newRefreshToken: !!after?.refresh_token && after.refresh_token !== before?.refresh_token,
    calls: [],
  };
  await runCalls(out.refresh.calls);
}
await client.close();
process.stdout.write(`${JSON.stringify(out)}\n`);
