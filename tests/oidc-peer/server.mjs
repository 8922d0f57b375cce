// A real OpenID provider for dma's single sign-on tests: the certified `oidc-provider`
// package, on loopback, issuing real RS256-signed ID tokens with keys it publishes at its
// JWKS endpoint. Started by tests/integration/sso.rs as
//
//   node tests/oidc-peer/server.mjs [--port P] [--default-account subject:email:verified]
//
// It prints `listening http://127.0.0.1:PORT` once it serves, and exits when its standard
// input closes (the test binary ended), so no provider outlives the tests.
//
// What is not a plain provider, and why:
// - Sign-in is automatic: the interaction page signs in the account named by the
//   authorisation request's `login_hint` and grants what was asked, so tests drive the whole
//   flow over HTTP without a form. The hint is `subject:email:verified`, e.g.
//   `alice:alice@example.nhs.uk:1` (verified `0` gives `email_verified: false`).
// - Three clients share the secret `peer-secret`: `dma` is ordinary; for `dma-wrong-aud` and
//   `dma-expired` the token endpoint's ID token is re-signed, with the provider's own key,
//   after changing its audience or moving its expiry into the past. The tokens are still
//   valid signatures from the published keys: only the claim under test is wrong.
// - Redirect and post-logout addresses may be any http://127.0.0.1 port, because every test
//   server listens on a port of its own.

import http from 'node:http';
import { Buffer } from 'node:buffer';
import Provider from 'oidc-provider';
import { generateKeyPair, exportJWK, importJWK, decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';

const option = (name) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const port = Number(option('--port') || 0);
// For a browser, which cannot add a login_hint: the account signed in when there is none.
const defaultAccount = option('--default-account');
const SECRET = 'peer-secret';
const CLIENTS = ['dma', 'dma-wrong-aud', 'dma-expired'];

const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await exportJWK(privateKey)), kid: 'peer-key-1', alg: 'RS256', use: 'sig' };
const signingKey = await importJWK(signingJwk, 'RS256');

function account(hint) {
  const [sub, email, verified] = String(hint || '').split(':');
  if (!sub || !email) return undefined;
  return { sub: hint, email, email_verified: verified === '1', name: `Peer ${sub}` };
}

const server = http.createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: CLIENTS.map((client_id) => ({
    client_id,
    client_secret: SECRET,
    redirect_uris: ['http://127.0.0.1/login/sso/peer/callback'],
    post_logout_redirect_uris: ['http://127.0.0.1/'],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  })),
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['oidc-peer-test-only'] },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  // Scope claims in the ID token itself, as Entra ID and CIS2 send them.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: async (ctx, id) => {
    const claims = account(id);
    return claims && { accountId: id, claims: async () => claims };
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
});

const loopback = (value) => {
  try {
    const u = new URL(value);
    return u.protocol === 'http:' && u.hostname === '127.0.0.1';
  } catch {
    return false;
  }
};
provider.Client.prototype.redirectUriAllowed = function (value) {
  return loopback(value) && /^\/login\/sso\/[a-z0-9_-]+\/callback$/.test(new URL(value).pathname);
};
provider.Client.prototype.postLogoutRedirectUriAllowed = loopback;

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (prompt.name === 'login') {
    const hint = params.login_hint || defaultAccount;
    if (!account(hint)) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('the test peer signs in the account in login_hint (subject:email:verified)');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: hint } }, { mergeWithLastSubmission: false });
    return;
  }
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

// The token endpoint's answer for the crafted clients: the same token, one claim changed,
// signed again with the provider's key.
async function craft(body) {
  let parsed;
  try {
    parsed = JSON.parse(body);
  } catch {
    return body;
  }
  if (!parsed.id_token) return body;
  const claims = decodeJwt(parsed.id_token);
  const header = decodeProtectedHeader(parsed.id_token);
  if (claims.aud === 'dma-wrong-aud') {
    claims.aud = 'someone-else';
  } else if (claims.aud === 'dma-expired') {
    const now = Math.floor(Date.now() / 1000);
    claims.iat = now - 1200;
    claims.exp = now - 600;
  } else {
    return body;
  }
  parsed.id_token = await new SignJWT(claims).setProtectedHeader({ alg: header.alg, kid: header.kid, typ: header.typ }).sign(signingKey);
  return JSON.stringify(parsed);
}

const handle = provider.callback();
server.on('request', (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  if (path.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
    return;
  }
  if (path === '/token') {
    const chunks = [];
    const write = res.write.bind(res);
    const end = res.end.bind(res);
    res.write = (chunk) => {
      chunks.push(Buffer.from(chunk));
      return true;
    };
    res.end = (chunk, ...rest) => {
      if (chunk && typeof chunk !== 'function') chunks.push(Buffer.from(chunk));
      craft(Buffer.concat(chunks).toString('utf8')).then((out) => {
        res.setHeader('content-length', Buffer.byteLength(out));
        write(out);
        end();
      });
      return res;
    };
  }
  handle(req, res);
});

process.stdout.write(`listening ${issuer}\n`);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
