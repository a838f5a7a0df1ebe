"""OpenID Connect single sign-on: sign-in at the identity provider, accounts and roles from its
groups, electronic signatures renewed at the IdP, and sessions that end when the IdP says so."""
