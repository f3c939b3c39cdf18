"""What makes an access token count: the signature, the algorithm, the type, every claim; and the roles it grants."""

from __future__ import annotations

import time

import pytest

from confbook_common.auth import Role, TokenRules, TokenVerifier
from confbook_common.auth.bearer import token_of
from confbook_common.auth.keys import IssuerKeys, SigningKey
from confbook_common.errors import Unauthenticated
from tests.tokens import TokenForge, hs256_signed_with_public_key, tampered, unsigned

pytestmark = pytest.mark.unit

FORGE = TokenForge.generated()


def refused(token: str, verifier: TokenVerifier | None = None) -> str:
    with pytest.raises(Unauthenticated) as raised:
        (verifier or FORGE.verifier()).verify(token)
    return raised.value.message


def test_a_good_token_names_its_subject_and_roles():
    caller = FORGE.verifier().verify(FORGE.token("alice", "organizer"))
    assert caller.subject == "alice"
    assert caller.roles == {Role.ATTENDEE, Role.ORGANIZER}
    assert caller.may_organize and not caller.is_admin
    assert caller.role is Role.ORGANIZER


def test_any_valid_token_is_an_attendee_and_an_admin_may_organize():
    assert FORGE.verifier().verify(FORGE.token("bob")).roles == {Role.ATTENDEE}
    admin = FORGE.verifier().verify(FORGE.token("root", "admin"))
    assert admin.is_admin and admin.may_organize and admin.role is Role.ADMIN


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (lambda: unsigned(FORGE.claims("alice", "admin")), "algorithm"),
        (lambda: hs256_signed_with_public_key(FORGE, FORGE.claims("alice", "admin")), "algorithm"),
        (lambda: FORGE.token("alice", header={"kid": "someone-elses"}), "key the issuer does not publish"),
        (lambda: FORGE.token("alice", header={"typ": "JWT"}), "not an access token"),
        (lambda: FORGE.token("alice", header={"kid": None}), "no signing key"),
        (lambda: FORGE.token("alice", claims={"iss": "https://issuer.tes"}), "another issuer"),
        (lambda: FORGE.token("alice", claims={"iss": "https://issuer.test/evil"}), "another issuer"),
        (lambda: FORGE.token("alice", claims={"aud": "someone-else"}), "another audience"),
        (lambda: FORGE.token("alice", ttl=-120), "expired"),
        (lambda: FORGE.token("alice", claims={"nbf": int(time.time()) + 600}), "not valid yet"),
        (lambda: FORGE.token("alice", claims={"iat": int(time.time()) + 600}), "not valid yet"),
        (lambda: FORGE.token("alice", drop=("exp",)), "'exp'"),
        (lambda: FORGE.token("alice", drop=("sub",)), "'sub'"),
        (lambda: FORGE.token("alice", drop=("aud",)), "'aud'"),
        (lambda: FORGE.token("alice", claims={"sub": ""}), "subject"),
        (lambda: tampered(FORGE.token("alice"), roles=["admin"]), "signature"),
        (lambda: TokenForge.generated().token("alice"), "signature"),
        (lambda: "not.a.jwt", "not a JWT"),
        (lambda: "x" * 9000, "too long"),
    ],
)
def test_a_token_that_does_not_count_is_refused_saying_why(token, why):
    assert why in refused(token())


def test_the_leeway_forgives_small_clock_skew_only():
    assert FORGE.verifier().verify(FORGE.token("alice", ttl=-10)).subject == "alice"
    refused(FORGE.token("alice", ttl=-10), FORGE.verifier(leeway_seconds=0))


def test_an_id_token_is_refused_unless_the_operator_accepts_its_type():
    id_token = FORGE.token("alice", header={"typ": "JWT"})
    refused(id_token)
    assert FORGE.verifier(token_types=("jwt",)).verify(id_token).subject == "alice"


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("roles", ["organizer"]),
        ("realm_access.roles", {"realm_access": {"roles": ["organizer", "offline_access"]}}),
        ("https://confbook.example/roles", ["organizer"]),
        ("scope", "openid organizer"),
    ],
)
def test_roles_come_from_the_claim_the_operator_names(claim, value):
    claims = value if isinstance(value, dict) else {claim: value}
    token = FORGE.token("alice", claims={"roles": [], **claims})
    assert FORGE.verifier(roles_claim=claim).verify(token).may_organize


def test_role_names_are_the_operators_to_choose():
    token = FORGE.token("alice", claims={"roles": ["confbook-admins"]})
    assert not FORGE.verifier().verify(token).is_admin
    assert FORGE.verifier(admin_role="confbook-admins").verify(token).is_admin


def test_a_verified_token_is_cached_until_it_expires():
    verifier = FORGE.verifier(leeway_seconds=0)
    token = FORGE.token("alice", ttl=2)
    assert verifier.cached(token) is None
    verifier.verify(token)
    assert verifier.cached(token) is not None
    time.sleep(2.1)
    assert verifier.cached(token) is None
    refused(token, verifier)


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic YWxpY2U6c2VjcmV0", "Bearer", "Bearer ", "Bearer a b", "Token abc", "Bearer ab\x00c"],
)
def test_an_authorization_value_without_a_bearer_token_is_unauthenticated(header):
    with pytest.raises(Unauthenticated):
        token_of(header)


def test_the_bearer_scheme_ignores_case():
    assert token_of("bearer abc.def.ghi") == "abc.def.ghi"


def test_rules_refuse_symmetric_algorithms_and_need_an_issuer():
    from confbook_common.settings import ConfigError, Env

    with pytest.raises(ConfigError):
        TokenRules.from_env(Env({}))
    with pytest.raises(ConfigError):
        TokenRules.from_env(Env({"OIDC_ISSUER": "https://i", "OIDC_AUDIENCE": "a", "OIDC_ALGORITHMS": "RS256,HS256"}))
    assert TokenRules.from_env(Env({"OIDC_ISSUER": "https://i", "OIDC_AUDIENCE": "a"})).algorithms[0] == "RS256"


class _CountingKeys(IssuerKeys):
    """The issuer's keys as fetched, without a network: each fetch is counted."""

    def __init__(self, rules: TokenRules, published: dict[str, SigningKey], clock) -> None:
        super().__init__(rules, clock=clock)
        self.published = published
        self.fetches = 0

    def _fetch(self) -> dict[str, SigningKey]:
        self.fetches += 1
        return dict(self.published)


def test_an_unknown_key_refetches_the_keys_at_most_once_per_cooldown():
    now = [1000.0]
    rules = TokenRules(issuer=FORGE.issuer, audience=FORGE.audience, jwks_refresh_cooldown_seconds=10)
    keys = _CountingKeys(rules, {FORGE.kid: SigningKey(FORGE.private_key.public_key(), "RS256")}, lambda: now[0])
    verifier = TokenVerifier(rules, keys=keys)
    verifier.verify(FORGE.token("alice"))
    assert keys.fetches == 1
    rotated = TokenForge.generated()
    rotated.kid = "next-key"
    now[0] += 11
    for _ in range(5):  # a storm of unknown kids fetches once, then waits out the cooldown
        refused(rotated.token("alice"), verifier)
    assert keys.fetches == 2
    keys.published[rotated.kid] = SigningKey(rotated.private_key.public_key(), "RS256")
    refused(rotated.token("bob"), verifier)  # still within the cooldown
    now[0] += 11
    assert verifier.verify(rotated.token("bob")).subject == "bob"
    assert keys.fetches == 3


def test_keys_grow_old_and_are_fetched_again():
    now = [0.0]
    rules = TokenRules(issuer=FORGE.issuer, audience=FORGE.audience, jwks_max_age_seconds=60)
    keys = _CountingKeys(rules, {FORGE.kid: SigningKey(FORGE.private_key.public_key(), "RS256")}, lambda: now[0])
    keys.key(FORGE.kid)
    now[0] += 61
    keys.published.clear()  # the issuer withdrew the key
    assert keys.key(FORGE.kid) is None
    assert keys.fetches == 2


def test_a_key_that_declares_another_algorithm_is_not_used_for_this_one():
    rules = TokenRules(issuer=FORGE.issuer, audience=FORGE.audience)
    keys = _CountingKeys(rules, {FORGE.kid: SigningKey(FORGE.private_key.public_key(), "PS256")}, time.monotonic)
    assert "not its key's" in refused(FORGE.token("alice"), TokenVerifier(rules, keys=keys))


def test_a_service_fetches_the_keys_as_it_starts_and_is_healthy_once_it_has_them():
    import httpx

    from confbook_common.auth.warmup import SigningKeysWarmup

    rules = TokenRules(issuer=FORGE.issuer, audience=FORGE.audience)
    failures = [httpx.ConnectError("the issuer is away")] * 2

    class ComingBack(_CountingKeys):
        def _fetch(self) -> dict[str, SigningKey]:
            if failures:
                self.fetches += 1
                raise failures.pop()
            return super()._fetch()

    keys = ComingBack(rules, {FORGE.kid: SigningKey(FORGE.private_key.public_key(), "RS256")}, time.monotonic)
    warmup = SigningKeysWarmup(keys)
    assert not warmup.healthy
    warmup.start()
    try:
        deadline = time.monotonic() + 10
        while not warmup.healthy and time.monotonic() < deadline:
            time.sleep(0.05)
        assert warmup.healthy and keys.fetches == 3
        assert TokenVerifier(rules, keys=keys).verify(FORGE.token("alice")).subject == "alice"
    finally:
        warmup.stop()
        warmup.join(timeout=5)
