"""`make token`: access tokens from the development issuer of this checkout's running stack (`make up`).

Usage: python -m scripts.token alice[,bob...] [--role attendee|organizer|admin] [--ttl SECONDS]

Prints one token per subject, one per line, and nothing else, so that `TOKEN=$(make token SUB=alice)`
works; any failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import sys

import httpx

from scripts import dev_issuer
from scripts.stack import STATE_DIR, IssuerRecord
from scripts.supervision import Supervisor


class TokenError(Exception):
    pass


def tokens(subjects: list[str], role: str, ttl: int) -> list[str]:
    if not Supervisor(STATE_DIR, STATE_DIR / "logs").running():
        raise TokenError("no stack is running for this checkout; `make up` starts one")
    record = IssuerRecord.load(STATE_DIR)
    if record is None:
        raise TokenError(f"the running stack wrote no {STATE_DIR.name}/issuer.json; `make down` and `make up` again")
    if not record.dev_issuer:
        raise TokenError(f"the stack accepts the tokens of {record.url} (OIDC_ISSUER): get them from that issuer")
    try:
        return [dev_issuer.request_token(record.url, subject, role, ttl) for subject in subjects]
    except dev_issuer.IssuerError as error:
        raise TokenError(str(error)) from None
    except httpx.HTTPError as error:
        raise TokenError(f"the dev issuer at {record.url} does not answer ({error}); see `make status`") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.token", description=__doc__.splitlines()[0])
    parser.add_argument("subjects", help="the `sub` of each token, comma-separated")
    parser.add_argument("--role", default="attendee", choices=sorted(dev_issuer.ROLES))
    parser.add_argument("--ttl", type=int, default=3600, help="seconds the token is valid (1 to 86400)")
    args = parser.parse_args(argv)
    subjects = [subject.strip() for subject in args.subjects.split(",") if subject.strip()]
    try:
        if not subjects:
            raise TokenError("name at least one subject: make token SUB=alice[,bob...]")
        issued = tokens(subjects, args.role, args.ttl)
    except TokenError as error:
        print(f"token: {error}", file=sys.stderr)
        return 1
    print("\n".join(issued))
    return 0


if __name__ == "__main__":
    sys.exit(main())
