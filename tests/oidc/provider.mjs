// The real OpenID provider the SSO tests sign in through: node's certified `oidc-provider`
// (pinned in package.json, installed with `npm ci --prefix tests/oidc`), on 127.0.0.1 only.
//
//   node tests/oidc/provider.mjs STATE.json
//
// STATE.json holds {"port", "clients": [{client_id, client_secret, redirect_uris}], "users":
// {login: {password, email, name, groups, disabled}}, "id_token_ttl"}. The provider prints
// "listening <issuer>" once it accepts connections. Tests change users while it runs by POSTing
// the same "users" shape (and optionally "id_token_ttl") to /__test__/state: this admin route
// exists only here, on loopback, and only the tests call it. A disabled or removed user is
// unknown to findAccount, so the provider's own session no longer counts (prompt=none answers
// login_required) and the login page refuses them.
//
// Login and consent are this file's own small pages (the provider's devInteractions accept any
// password): the login page checks the password and records amr ["pwd"], the consent page grants
// the requested scopes.

import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';

const state = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${state.port}`;

function userOf(login) {
  const user = state.users[login];
  return user && !user.disabled ? user : undefined;
}

// A provider session whose account was disabled since asks for a login again (so prompt=none
// answers login_required), as a real IdP's does; without this check oidc-provider 8 fails there.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'account_disabled', 'the account of this session is disabled', 'login_required',
  (ctx) => (ctx.oidc.session.accountId && !ctx.oidc.account
    ? interactionPolicy.Check.REQUEST_PROMPT : interactionPolicy.Check.NO_NEED_TO_PROMPT),
));

const configuration = {
  clients: state.clients.map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
    require_auth_time: true,
    ...client,
  })),
  claims: {
    openid: ['sub', 'amr'], // amr: the login page's methods (["pwd"]) in the ID token
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups'],
  // Every claim of the granted scopes in the ID token too, as Okta and Keycloak can be set to do.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
  pkce: { required: () => true },
  ttl: {
    IdToken: () => state.id_token_ttl || 3600,
    AccessToken: 3600,
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 86400,
    Grant: 86400,
  },
  cookies: { keys: ['promptledger-test-oidc-provider-cookie-key'] },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const user = userOf(id);
    if (!user) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: user.email || `${id}@example.org`,
          email_verified: true,
          name: user.name || id,
          preferred_username: id,
          groups: user.groups || [],
        };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, error) => console.error('server_error', error));

function page(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>Test IdP</title></head><body>${body}</body></html>`);
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function loginPage(res, uid, error = '') {
  page(res, error ? 401 : 200, `
    <h1>Test IdP sign-in</h1>
    ${error ? `<p role="alert">${escape(error)}</p>` : ''}
    <form method="post" action="/interaction/${uid}/login">
      <label>IdP username <input name="login" autocomplete="off"></label>
      <label>IdP password <input name="password" type="password"></label>
      <button type="submit">Sign in at the IdP</button>
    </form>`);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') return loginPage(res, uid);
    return page(res, 200, `
      <h1>Allow access</h1>
      <p>${escape(params.client_id)} asks for: ${escape(params.scope)}</p>
      <form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>`);
  }
  const form = new URLSearchParams(await readBody(req));
  if (action === 'login') {
    const login = form.get('login') || '';
    const user = userOf(login);
    if (!user || user.password !== form.get('password')) return loginPage(res, uid, 'Wrong username or password.');
    return provider.interactionFinished(req, res, { login: { accountId: login, amr: ['pwd'] } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm') {
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return page(res, 404, 'no such interaction step');
}

const handler = provider.callback();
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/__test__/state' && req.method === 'POST') {
      const change = JSON.parse(await readBody(req));
      if (change.users) state.users = change.users;
      if ('id_token_ttl' in change) state.id_token_ttl = change.id_token_ttl;
      res.writeHead(204);
      return res.end();
    }
    const match = url.pathname.match(/^\/interaction\/([^/]+)(?:\/(login|confirm))?$/);
    if (match) return await interaction(req, res, match[1], match[2]);
    return handler(req, res);
  } catch (error) {
    console.error(error);
    if (!res.headersSent) page(res, 500, escape(error.message));
    else res.end();
  }
});

server.listen(state.port, '127.0.0.1', () => console.log(`listening ${issuer}`));
