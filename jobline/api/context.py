"""What the endpoints share: settings, the core's dependencies and the group committer.

Kept on ``app.state`` (no module globals) so several apps, e.g. one per test, can coexist in a
process.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from jobline.shared.core.group_commit import GroupCommitter
from jobline.shared.platform.config import Settings
from jobline.shared.platform.connections import Deps
from jobline.shared.platform.errors import Unavailable


@dataclass
class ApiContext:
    settings: Settings
    deps: Deps | None = None
    committer: GroupCommitter | None = None

    def require_deps(self) -> Deps:
        if self.deps is None:  # lifespan not run yet, or shutting down
            raise Unavailable("service is starting or stopping", retry_after_s=1)
        return self.deps

    def require_committer(self) -> GroupCommitter:
        deps = self.require_deps()
        if self.committer is None:
            # Created lazily so an app whose lifespan is not driven (some test transports)
            # still works; the flusher task starts on the first submit.
            self.committer = GroupCommitter(deps)
        return self.committer


def ctx(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.jobline
    return context
