"""What a token must be to count, read from the environment: the issuer, the audience, the roles claim."""

from __future__ import annotations

from dataclasses import dataclass

from confbook_common.settings import ConfigError, Env

# Asymmetric only: a symmetric algorithm would let anyone holding the published key sign tokens
# (HS256 "signed with the public key"), and `none` signs nothing.
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
# RFC 9068's media type for access tokens; an ID token (typ JWT) is not one.
ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


@dataclass(frozen=True)
class TokenRules:
    issuer: str  # compared exactly with `iss`, and where discovery starts
    audience: str  # compared exactly with (one of) `aud`
    algorithms: tuple[str, ...] = ASYMMETRIC_ALGORITHMS
    token_types: tuple[str, ...] = ACCESS_TOKEN_TYPES
    # Where the roles are: a top-level claim ("roles", "https://example.com/roles") or a dotted
    # path ("realm_access.roles" for Keycloak); a list or a space-separated string.
    roles_claim: str = "roles"
    organizer_role: str = "organizer"
    admin_role: str = "admin"
    leeway_seconds: int = 30  # clock skew tolerated on exp, nbf and iat
    jwks_refresh_cooldown_seconds: float = 10.0  # an unknown kid refetches the keys at most this often
    jwks_max_age_seconds: float = 3600.0  # keys are fetched again at least this often

    @classmethod
    def from_env(cls, env: Env | None = None) -> TokenRules:
        env = env or Env()
        issuer = env.text("OIDC_ISSUER", "")
        audience = env.text("OIDC_AUDIENCE", "")
        if not issuer or not audience:
            raise ConfigError(
                "OIDC_ISSUER and OIDC_AUDIENCE must be set: the issuer whose access tokens count and the "
                "audience they must name (`make run` and `make up` start a development issuer and set both)"
            )
        token_types = _listed(env.text("OIDC_TOKEN_TYPES", ",".join(ACCESS_TOKEN_TYPES)))
        algorithms = _listed(env.text("OIDC_ALGORITHMS", ",".join(ASYMMETRIC_ALGORITHMS)))
        if refused := [each for each in algorithms if each not in ASYMMETRIC_ALGORITHMS]:
            raise ConfigError(f"OIDC_ALGORITHMS may name only asymmetric algorithms, not {', '.join(refused)}")
        return cls(
            issuer=issuer,
            audience=audience,
            algorithms=algorithms,
            token_types=tuple(each.lower() for each in token_types),
            roles_claim=env.text("OIDC_ROLES_CLAIM", "roles"),
            organizer_role=env.text("OIDC_ORGANIZER_ROLE", "organizer"),
            admin_role=env.text("OIDC_ADMIN_ROLE", "admin"),
            leeway_seconds=env.integer("OIDC_LEEWAY_SECONDS", 30, maximum=300),
            jwks_refresh_cooldown_seconds=env.integer("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", 10, maximum=3600),
            jwks_max_age_seconds=env.integer("OIDC_JWKS_MAX_AGE_SECONDS", 3600, minimum=1, maximum=86400),
        )


def _listed(raw: str) -> tuple[str, ...]:
    return tuple(each.strip() for each in raw.split(",") if each.strip())
