// node oidc-provider as a peer for `go run ./bench -peer`: client
// credentials with RS256 JWT access tokens (RFC 9068), a 2048-bit key, the
// same client and secret as the benchmark's. Not part of the tests:
//
//   d=$(mktemp -d) && cp bench/peer/oidc-provider.mjs $d && (cd $d && npm install oidc-provider@9.13.3 && node oidc-provider.mjs) &
//   go run -tags openssl ./bench -stores memory -only client_credentials -peer http://127.0.0.1:3456/token
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const port = Number(process.env.PORT || 3456);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [jwk] },
  clients: [{
    client_id: 'service', client_secret: 'bench-service-secret-0123456789abcdef',
    grant_types: ['client_credentials'], response_types: [], redirect_uris: [], scope: 'api',
  }],
  scopes: ['api'],
  features: {
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:api',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'api', accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log(`oidc-provider on ${port}`));
