// A development OpenID Provider for the interop tests: the certified
// oidc-provider package, listening on 127.0.0.1 on a port the kernel picks.
//
// It reads its configuration as one JSON document on stdin:
//
//	{
//	  "resources": {"<resource URI>": {"scope": "a b", "format": "jwt"|"opaque", "ttl": 300}},
//	  "clients":   [<oidc-provider client metadata>, ...],
//	  "groups":    {"<login or client id>": ["group", ...]}
//	}
//
// and, once it accepts connections, prints one JSON line on stdout:
// {"issuer":"http://127.0.0.1:PORT"}. It runs until killed.
//
// Enabled: RFC 8707 resource indicators (a token for a configured resource is
// a JWT whose aud is that resource, or an opaque token when its format is
// "opaque"), RFC 7662 introspection, RFC 7009 revocation, RFC 7591 dynamic
// client registration (open, no initial access token), the client_credentials
// grant, and the development login/consent pages (any login, any password).
// Access tokens of an account (or client) listed in "groups" carry a
// "groups" claim. Keys are generated at start and die with the process.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { text } from 'node:stream/consumers';

import Provider, { errors } from 'oidc-provider';

const config = JSON.parse(await text(process.stdin));
const resources = config.resources ?? {};
const groups = config.groups ?? {};

const signingKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
  .export({ format: 'jwk' });

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients ?? [],
  jwks: { keys: [{ ...signingKey, kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' }] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // Client metadata may name only supported scopes: the resources' too.
  scopes: [...new Set(['openid', 'offline_access',
    ...Object.values(resources).flatMap((rs) => (rs.scope ?? '').split(' ').filter(Boolean))])],
  pkce: { required: () => true },
  // Every client may call from any origin: only Node clients use it here.
  clientBasedCORS: () => true,
  extraTokenClaims: (_ctx, token) => {
    const g = groups[token.accountId ?? token.clientId];
    return g ? { groups: g } : undefined;
  },
  features: {
    devInteractions: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // A single resource requested at authorization is the token's
      // resource when the token request names none.
      defaultResource: (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        const rs = resources[indicator];
        if (!rs) throw new errors.InvalidTarget();
        return {
          scope: rs.scope ?? '',
          audience: indicator,
          accessTokenTTL: rs.ttl ?? 300,
          accessTokenFormat: rs.format === 'opaque' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});
provider.on('server_error', (_ctx, err) => console.error('idp: server_error', err));

// A dynamically registered client's "scope" is taken as informational, not
// as the limit of what it may ask for later: the MCP TypeScript SDK
// registers with the scopes of its first challenge, and oidc-provider would
// then refuse its step-up to a further scope (invalid_scope). The
// registration body is read here, without "scope", and handed to
// oidc-provider already parsed.
const callback = provider.callback();
server.on('request', async (req, res) => {
  if (req.method === 'POST' && new URL(req.url, issuer).pathname === '/reg'
      && /^application\/json\b/.test(req.headers['content-type'] ?? '')) {
    try {
      const chunks = [];
      for await (const chunk of req) chunks.push(chunk);
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (body && typeof body === 'object') delete body.scope;
      req.body = body;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":"invalid_client_metadata","error_description":"malformed JSON"}');
      return;
    }
  }
  callback(req, res);
});
process.on('SIGTERM', () => process.exit(0));
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
