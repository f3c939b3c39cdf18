"""Who is calling: OAuth 2.0 access tokens (JWT, RFC 9068) verified against the issuer's published keys.

The gateway verifies a request's token and passes it on; every service verifies it again, because
gRPC callers bypass the gateway, and decides for the data it owns (docs/adr/0021).
"""

from confbook_common.auth.caller import SYSTEM, Caller, Role
from confbook_common.auth.rules import TokenRules
from confbook_common.auth.verifier import TokenVerifier

__all__ = ["SYSTEM", "Caller", "Role", "TokenRules", "TokenVerifier"]
