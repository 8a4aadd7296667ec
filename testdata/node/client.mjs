// An independent OAuth 2.0 / OpenID Connect client for Aero2's tests:
// openid-client (OpenID-certified), driven by the Go tests through
// server/servertest.Node. It reads one JSON command on stdin and writes one
// JSON object per line on stdout; the last line is the result, or
// {"error": ...} when the server (or the client library) refused.
import * as client from 'openid-client';
import { readFileSync } from 'node:fs';

const input = JSON.parse(readFileSync(0, 'utf8'));
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');

// Web Crypto parameters for a private JWK of the given alg.
function algorithm(alg) {
  switch (alg) {
    case 'RS256': return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    case 'PS256': return { name: 'RSA-PSS', hash: 'SHA-256' };
    case 'ES256': return { name: 'ECDSA', namedCurve: 'P-256' };
    default: throw new Error(`unsupported alg ${alg}`);
  }
}

async function clientAuth(c) {
  switch (c.auth) {
    case 'private_key_jwt': {
      const key = await crypto.subtle.importKey('jwk', c.jwk, algorithm(c.alg), false, ['sign']);
      return client.PrivateKeyJwt({ key, kid: c.jwk.kid });
    }
    case 'client_secret_basic': return client.ClientSecretBasic(c.secret);
    case 'client_secret_post': return client.ClientSecretPost(c.secret);
    case 'none': return client.None();
    default: throw new Error(`unknown client auth ${c.auth}`);
  }
}

function tokenFields(t) {
  return {
    access_token: t.access_token, token_type: t.token_type, refresh_token: t.refresh_token,
    id_token: t.id_token, scope: t.scope, expires_in: t.expiresIn(),
  };
}

// dpop is the DPoP handle (RFC 9449) when input.dpop names an algorithm:
// openid-client then signs a proof for every token, userinfo and resource
// request, and follows use_dpop_nonce answers by itself.
let dpop;
let dpopJWK;
async function dpopOptions(config) {
  if (!input.dpop) return {};
  if (!dpop) {
    const pair = await client.randomDPoPKeyPair(input.dpop);
    dpopJWK = await crypto.subtle.exportKey('jwk', pair.publicKey);
    dpop = client.getDPoPHandle(config, pair);
  }
  return { DPoP: dpop };
}

async function main() {
  const c = input.client;
  const config = await client.discovery(new URL(input.issuer), c.id, c.metadata ?? {}, await clientAuth(c),
    { execute: [client.allowInsecureRequests] });
  const opts = await dpopOptions(config);
  switch (input.op) {
    case 'metadata':
      return { metadata: config.serverMetadata() };
    case 'authorize': {
      const verifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const params = {
        redirect_uri: input.redirect_uri, scope: input.scope,
        code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
        state, nonce, ...(input.extra ?? {}),
      };
      const url = input.par
        ? await client.buildAuthorizationUrlWithPAR(config, params)
        : client.buildAuthorizationUrl(config, params);
      return { url: url.href, verifier, state, nonce };
    }
    case 'callback': {
      const tokens = await client.authorizationCodeGrant(config, new URL(input.callback_url), {
        pkceCodeVerifier: input.verifier, expectedState: input.state, expectedNonce: input.nonce, idTokenExpected: true,
      }, undefined, opts);
      return await afterTokens(config, tokens);
    }
    case 'device': {
      const da = await client.initiateDeviceAuthorization(config, { scope: input.scope });
      out({ device: da });
      const tokens = await client.pollDeviceAuthorizationGrant(config, da);
      return await afterTokens(config, tokens);
    }
    case 'client_credentials': {
      const params = { ...(input.scope ? { scope: input.scope } : {}), ...(input.extra ?? {}) };
      const tokens = await client.clientCredentialsGrant(config, params, opts);
      const res = { tokens: tokenFields(tokens), dpop_jwk: dpopJWK };
      if (input.resource_url) res.resource = await resource(config, tokens.access_token, opts);
      return res;
    }
    case 'introspect':
      return { introspection: await client.tokenIntrospection(config, input.token) };
    default:
      throw new Error(`unknown op ${input.op}`);
  }
}

// afterTokens reads the ID token's claims and, as asked, calls userinfo,
// introspection and refresh with the tokens.
async function afterTokens(config, tokens) {
  const opts = await dpopOptions(config);
  const claims = tokens.claims();
  const res = { tokens: tokenFields(tokens), claims, dpop_jwk: dpopJWK };
  if (input.userinfo) res.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, opts);
  if (input.introspect) res.introspection = await client.tokenIntrospection(config, tokens.access_token);
  if (input.resource_url) res.resource = await resource(config, tokens.access_token, opts);
  if (input.refresh) {
    const r = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, opts);
    res.refreshed = { tokens: tokenFields(r), claims: r.claims() };
    if (input.refresh_other_key) {
      // The refreshed refresh token, with a proof by a key of another
      // handle: a thief's.
      const pair = await client.randomDPoPKeyPair(input.dpop);
      try {
        await client.refreshTokenGrant(config, r.tokens?.refresh_token ?? r.refresh_token, undefined, { DPoP: client.getDPoPHandle(config, pair) });
        res.other_key_refresh = { error: 'none: the server accepted it' };
      } catch (e) {
        res.other_key_refresh = { error: e.error ?? e.code ?? 'exception', status: e.status };
      }
    }
  }
  return res;
}

// resource calls input.resource_url (a route behind the proxy) with the
// access token: as DPoP with a proof when dpop is on, else as Bearer.
async function resource(config, accessToken, opts) {
  const r = await client.fetchProtectedResource(config, accessToken, new URL(input.resource_url), 'GET', undefined, undefined, opts);
  return { status: r.status, body: await r.text(), www_authenticate: r.headers.get('www-authenticate') };
}

try {
  out(await main());
} catch (e) {
  out({ error: e.error ?? e.code ?? 'exception', error_description: e.error_description ?? e.message, status: e.status });
}
