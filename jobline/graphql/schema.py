"""The GraphQL schema: thin resolvers over the core functions in ``jobline.shared``.

Split by role: :mod:`.types` (output types), :mod:`.inputs` (input types -> core values),
:mod:`.queries`, :mod:`.mutations`, :mod:`.subscriptions` (the three roots), :mod:`.errors`
(core errors -> ``extensions.code``, masking), :mod:`.common` (context, ids, times). Role checks
are per field (:meth:`Context.require`). ``schema.graphql`` at the repository root is this
schema printed; a test keeps it current.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)
from strawberry.types import ExecutionContext

from .errors import JoblineMaskErrors, log_errors
from .mutations import Mutation
from .queries import Query
from .subscriptions import Subscription

#: Query limits: deep enough for the dashboard's job -> dependsOn -> dependsOn views; a hostile
#: query is refused at validation, before any resolver runs.
MAX_DEPTH = 8
MAX_TOKENS = 2_000
MAX_ALIASES = 20



class JoblineSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError],
                       execution_context: ExecutionContext | None = None) -> None:
        # Instead of strawberry's logger, which logs every error (a client's typo included) at
        # ERROR with a traceback.
        log_errors(errors)


schema = JoblineSchema(
    query=Query, mutation=Mutation, subscription=Subscription,
    extensions=[
        lambda: QueryDepthLimiter(max_depth=MAX_DEPTH),
        lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
        lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
        JoblineMaskErrors,
    ],
)
