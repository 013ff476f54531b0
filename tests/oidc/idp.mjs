// idp.mjs - a third-party OpenID provider for credd's tests: the pinned
// oidc-provider package (package-lock.json), over TLS on loopback, with its
// routes mounted where credd looks for Entra's v2.0 endpoints
// ({authority}/{tenant}/oauth2/v2.0/authorize and /token).
//
// Usage: node idp.mjs CONFIG.json; CONFIG names the port file, the TLS
// certificate and key, the tenant, the clients and the accounts (see
// tests/integration/test_oidc.py). It writes its port to CONFIG.port_file
// once it listens.
//
// With CONFIG.proxy_port it also plays the platform's reverse proxy in
// front of credd's [callback] listener: TLS on proxy_port, GET /entra/*
// forwarded to http://127.0.0.1:CONFIG.callback_port with X-Forwarded-For.
//
// The interaction is automated for the test, not a login page: GET
// /interaction/<uid> answers JSON {prompt}; POST /interaction/<uid> with
// login=<preferred_username> resolves the pending prompt (select_account,
// login, consent) as that account. Must never: serve anything but
// loopback, or log a code or a token.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { URLSearchParams } from 'node:url';

import Provider, { interactionPolicy } from 'oidc-provider';

const conf = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const base = `/${conf.tenant}/oauth2/v2.0`;
// CONFIG.native: the provider as itself ([entra] provider = oidc in
// credd): its issuer at the root, its own default routes and discovery
// document, the device flow (features.deviceFlow), claims without Entra's
// tid and oid (the account is sub).
const native = !!conf.native;
const issuer = native ? `https://127.0.0.1:${conf.port}`
  : `https://127.0.0.1:${conf.port}/${conf.tenant}/v2.0`;

// Entra's claims that credd reads (tid, oid, preferred_username) come
// with the openid and profile scopes.
async function findAccount(ctx, id) {
  const a = conf.accounts[id];
  if (!a) return undefined;
  return {
    accountId: id,
    async claims() {
      if (native) return { sub: a.oid, preferred_username: id, email: id, name: id };
      return { sub: a.oid, oid: a.oid, tid: conf.tenant, preferred_username: id, name: id };
    },
  };
}

// credd asks for prompt=select_account (as with Entra): a requestable
// prompt of its own, resolved by the interaction like login.
const { Prompt, base: basePolicy } = interactionPolicy;
const policy = basePolicy();
policy.add(new Prompt({ name: 'select_account', requestable: true }), 0);

const provider = new Provider(issuer, {
  clients: conf.clients,
  findAccount,
  jwks: conf.jwks,
  scopes: ['openid', 'profile', 'offline_access', ...conf.scopes],
  claims: native ? {
    openid: ['sub'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
  } : {
    openid: ['sub', 'oid', 'tid'],
    profile: ['preferred_username', 'name'],
  },
  conformIdTokenClaims: false,
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: { devInteractions: { enabled: false }, deviceFlow: { enabled: native } },
  pkce: { required: () => true, methods: ['S256'] },
  // offline_access without prompt=consent (credd sends select_account,
  // like Entra, which always issues a refresh token to a native client).
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ttl: {
    AccessToken: conf.access_token_ttl || 3600,
    IdToken: 3600,
    AuthorizationCode: 60,
    RefreshToken: 86400,
    Interaction: 600,
    Session: 600,
    Grant: 86400,
  },
  enabledJWA: {
    clientAuthSigningAlgValues: ['RS256', 'PS256'],
  },
  routes: native ? undefined : {
    authorization: `${base}/authorize`,
    token: `${base}/token`,
    jwks: `/${conf.tenant}/discovery/v2.0/keys`,
    userinfo: '/oidc/userinfo',
    end_session: `${base}/logout`,
    revocation: `${base}/revoke`,
    introspection: `${base}/introspect`,
  },
  cookies: { keys: [conf.cookie_key] },
});
provider.proxy = false;
// credd fetches Entra's discovery address, <authority>/<tenant>/v2.0/
// .well-known/openid-configuration: the provider's own document (its
// issuer is that prefix) served there too.
provider.use(async (ctx, next) => {
  if (ctx.path === `/${conf.tenant}/v2.0/.well-known/openid-configuration`) {
    ctx.path = '/.well-known/openid-configuration';
  }
  await next();
});
// Entra grants offline_access to a native app without prompt=consent;
// oidc-provider follows OIDC Core 11 and drops offline_access unless the
// prompt holds consent. This deployment's policy is Entra's: a sign-in that
// asks for offline_access goes through consent (the interaction grants it),
// so the refresh token carries the offline_access scope credd asks for again
// on every refresh.
provider.use(async (ctx, next) => {
  if (ctx.path === `${base}/authorize` && ctx.method === 'GET') {
    const q = { ...ctx.query };
    if (typeof q.scope === 'string' && q.scope.split(' ').includes('offline_access')
        && typeof q.prompt === 'string' && !q.prompt.split(' ').includes('consent')) {
      q.prompt = `${q.prompt} consent`;
      ctx.query = q;
    }
  }
  await next();
});
// The test's canary list (like the emulator's control API): every code and
// token value issued, one JSON line each, in a file only root reads.
function issued(kind) {
  return (token) => {
    const v = token.jti || token.userCode;
    fs.appendFileSync(conf.issued_file, `${JSON.stringify({ kind, value: v, client: token.clientId })}\n`, { mode: 0o600 });
  };
}
provider.on('authorization_code.saved', issued('code'));
provider.on('device_code.saved', issued('device_code'));
provider.on('access_token.saved', issued('access_token'));
provider.on('refresh_token.saved', issued('refresh_token'));
provider.on('grant.success', (ctx) => {
  fs.appendFileSync(conf.issued_file, `${JSON.stringify({ kind: 'grant', grant_type: ctx.oidc.params.grant_type, client: ctx.oidc.client && ctx.oidc.client.clientId, auth: ctx.oidc.client && ctx.oidc.client.clientAuthMethod })}\n`, { mode: 0o600 });
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
provider.on('grant.error', (ctx, err) => console.error('grant.error', err.message, err.error_description || ''));
provider.on('authorization.error', (ctx, err) => console.error('authorization.error', err.message, err.error_description || ''));

function readBody(req) {
  return new Promise((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { s += c; if (s.length > 4096) req.destroy(); });
    req.on('end', () => resolve(new URLSearchParams(s)));
    req.on('error', reject);
  });
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ prompt: details.prompt.name, client: details.params.client_id }));
    return;
  }
  const form = await readBody(req);
  const login = form.get('login');
  if (!conf.accounts[login]) {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'unknown account',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const name = details.prompt.name;
  let result;
  if (name === 'select_account' || name === 'login') {
    result = { select_account: {}, login: { accountId: login } };
  } else if (name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const d = details.prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    if (d.missingResourceScopes) {
      for (const [ind, sc] of Object.entries(d.missingResourceScopes)) grant.addResourceScope(ind, sc.join(' '));
    }
    result = { consent: { grantId: await grant.save() } };
  } else {
    result = { error: 'access_denied', error_description: `prompt ${name}` };
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
}

const callback = provider.callback();
const server = https.createServer({
  cert: fs.readFileSync(conf.cert_file), key: fs.readFileSync(conf.key_file),
}, (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction', err.message);
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction failed: ${err.message}\n`);
    });
    return;
  }
  callback(req, res);
});
server.listen(conf.port, '127.0.0.1', () => {
  fs.writeFileSync(conf.port_file, `${server.address().port}\n`);
  console.log(`oidc-provider ${issuer} listening`);
});

if (conf.proxy_port) {
  const proxy = https.createServer({
    cert: fs.readFileSync(conf.cert_file), key: fs.readFileSync(conf.key_file),
  }, (req, res) => {
    if (req.method !== 'GET' || !req.url.startsWith('/entra/')) {
      res.writeHead(404);
      res.end();
      return;
    }
    const up = http.request({
      host: '127.0.0.1',
      port: conf.callback_port,
      path: req.url,
      method: 'GET',
      headers: { host: req.headers.host, 'x-forwarded-for': req.socket.remoteAddress },
    }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (err) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`proxy: ${err.code}\n`);
    });
    up.end();
  });
  proxy.listen(conf.proxy_port, '127.0.0.1');
}
