// Sign-in. The token lives in sessionStorage only (this tab, gone when it closes).
// Embedded default: `lmrpc ui` prints /ui/#code=…; the code is traded once for a read-only
// token and removed from the address bar before anything else runs.
// OIDC: Authorization Code with PKCE (S256) against the issuer's endpoints.

const TOKEN = "lmrpc.token";
const PKCE = "lmrpc.pkce";

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
}

function pageUrl() {
  return location.origin + location.pathname;
}

// Finish a sign-in the address bar carries (a one-time code, or the issuer's redirect).
// Returns an error message for the page, or null.
export async function completeSignIn() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  if (fragment.has("code")) {
    history.replaceState(null, "", pageUrl());
    return exchangeOneTimeCode(fragment.get("code"));
  }
  if (query.has("code") || query.has("error")) {
    history.replaceState(null, "", pageUrl());
    return finishAuthorizationCode(query);
  }
  return null;
}

async function exchangeOneTimeCode(code) {
  const response = await fetch("session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ code }),
  });
  const answer = await response.json();
  if (!response.ok) return answer.reason || "sign-in failed";
  sessionStorage.setItem(TOKEN, answer.access_token);
  return null;
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

export async function startAuthorizationCode(config) {
  const verifier = randomString();
  const state = randomString();
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state, config }));
  const url = new URL(config.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: pageUrl(),
    scope: config.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(config.audience ? { audience: config.audience } : {}),
  });
  location.assign(url);
}

async function finishAuthorizationCode(query) {
  const pending = JSON.parse(sessionStorage.getItem(PKCE) || "null");
  sessionStorage.removeItem(PKCE);
  if (query.has("error")) return `sign-in refused: ${query.get("error_description") || query.get("error")}`;
  if (!pending || query.get("state") !== pending.state) return "sign-in failed: unexpected answer (state)";
  const response = await fetch(pending.config.token_endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: query.get("code"),
      redirect_uri: pageUrl(),
      client_id: pending.config.client_id,
      code_verifier: pending.verifier,
    }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok || !answer.access_token) {
    return `sign-in failed: ${answer.error_description || answer.error || response.status}`;
  }
  sessionStorage.setItem(TOKEN, answer.access_token);
  return null;
}
