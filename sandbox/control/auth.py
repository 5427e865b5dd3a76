"""Prediction authorization: bearer tokens bound to identities that hold ``vertex-ai-prediction-user``.

Off by default, as in GDC's Preview; on with ``GDC_SANDBOX_PREDICTION_AUTH=true``.
"""

from __future__ import annotations

from sandbox.control.iam import IAM
from sandbox.errors import SandboxError
from sandbox.settings import PREDICTION_USER_ROLE


class PredictionAuth:
    """Raises 401 for a missing/unknown token and 403 for an identity without the prediction role."""

    def __init__(self, iam: IAM) -> None:
        self.iam = iam

    def __call__(self, authorization: str, project: str) -> str:
        """The identity behind an ``Authorization`` header value, if it may call predictions in ``project``."""
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise SandboxError(
                "the request has no bearer token and prediction authorization is on",
                code="auth.unauthenticated",
                hint="send `Authorization: Bearer TOKEN` (`gdc-sandbox predict --token TOKEN`); "
                "`gdc-sandbox iam token --identity ID` issues one",
            ).with_status(401)
        found = self.iam.identity_for(token)
        if found is None:
            raise SandboxError(
                "the bearer token is not known to this sandbox",
                code="auth.unauthenticated",
                hint="issue a token with `gdc-sandbox iam token --identity ID` (tokens belong to one sandbox home)",
            ).with_status(401)
        _, identity = found
        if not self.iam.can_predict(project, identity):
            raise SandboxError(
                f"{identity} may not call predictions in project {project}: it lacks the role {PREDICTION_USER_ROLE}",
                code="auth.permission-denied",
                hint=f"gdc-sandbox iam grant --project {project} --identity {identity} --role {PREDICTION_USER_ROLE}",
            ).with_status(403)
        return identity
