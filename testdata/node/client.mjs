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

async function main() {
  const c = input.client;
  const config = await client.discovery(new URL(input.issuer), c.id, c.metadata ?? {}, await clientAuth(c),
    { execute: [client.allowInsecureRequests] });
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
      });
      return await afterTokens(config, tokens);
    }
    case 'device': {
      const da = await client.initiateDeviceAuthorization(config, { scope: input.scope });
      out({ device: da });
      const tokens = await client.pollDeviceAuthorizationGrant(config, da);
      return await afterTokens(config, tokens);
    }
    case 'client_credentials': {
      const tokens = await client.clientCredentialsGrant(config, { scope: input.scope });
      return { tokens: tokenFields(tokens) };
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
  const claims = tokens.claims();
  const res = { tokens: tokenFields(tokens), claims };
  if (input.userinfo) res.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  if (input.introspect) res.introspection = await client.tokenIntrospection(config, tokens.access_token);
  if (input.refresh) {
    const r = await client.refreshTokenGrant(config, tokens.refresh_token);
    res.refreshed = { tokens: tokenFields(r), claims: r.claims() };
  }
  return res;
}

try {
  out(await main());
} catch (e) {
  out({ error: e.error ?? e.code ?? 'exception', error_description: e.error_description ?? e.message, status: e.status });
}
