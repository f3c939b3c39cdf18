// Signing in with OpenID Connect (authorization code with PKCE) against the issuer the gateway names in
// /config.json. The tokens live in this page's memory only: a reload asks the issuer again (which, with a
// session there, answers without a form). Only the code flow's one-time state (its PKCE verifier) waits
// in sessionStorage during the round trip to the issuer, as oidc-client-ts keeps it, and is then removed.

import { InMemoryWebStorage, UserManager, WebStorageStateStore, type User } from "oidc-client-ts";

export interface PageConfig {
  issuer: string;
  client_id: string;
  scope: string;
}

export interface Identity {
  subject: string;
  roles: string[];
  accessToken: string;
  expiresAt: number | undefined;
}

export class Session {
  private readonly manager: UserManager;
  private user: User | null = null;

  constructor(config: PageConfig) {
    this.manager = new UserManager({
      authority: config.issuer,
      client_id: config.client_id,
      redirect_uri: `${location.origin}/`,
      response_type: "code",
      scope: config.scope,
      userStore: new WebStorageStateStore({ store: new InMemoryWebStorage() }),
      stateStore: new WebStorageStateStore({ store: sessionStorage }),
      loadUserInfo: false,
      monitorSession: false,
      automaticSilentRenew: false,
    });
  }

  /** Completes a sign-in when the issuer has just sent the browser back here; returns the view to show. */
  async completeSignIn(): Promise<string | null> {
    const query = new URLSearchParams(location.search);
    if (!query.has("state") || !(query.has("code") || query.has("error"))) return null;
    try {
      this.user = await this.manager.signinRedirectCallback();
      return typeof this.user.state === "string" ? this.user.state : "#/";
    } finally {
      // The code and state leave the address bar (and the history) whatever happened.
      history.replaceState(null, "", "/");
    }
  }

  signIn(returnTo: string): Promise<void> {
    return this.manager.signinRedirect({ state: returnTo });
  }

  signOut(): void {
    this.user = null;
    void this.manager.removeUser();
  }

  get identity(): Identity | null {
    const user = this.user;
    if (!user || user.expired) return null;
    return {
      subject: user.profile.sub,
      roles: rolesOf(user),
      accessToken: user.access_token,
      expiresAt: user.expires_at,
    };
  }

  get token(): string | null {
    return this.identity?.accessToken ?? null;
  }
}

/** The roles the access token claims, for what the page offers; the API decides what is allowed. */
function rolesOf(user: User): string[] {
  const fromProfile = (user.profile as { roles?: unknown }).roles;
  if (Array.isArray(fromProfile)) return fromProfile.map(String);
  try {
    const payload = user.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(payload)) as { roles?: unknown };
    return Array.isArray(claims.roles) ? claims.roles.map(String) : [];
  } catch {
    return [];
  }
}
