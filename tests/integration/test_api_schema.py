"""schemathesis against the live API (uvicorn over real PostgreSQL and Redis), through its
Python API: every operation of the OpenAPI schema with valid and invalid (negative)
inputs, and stateful sequences (upload, then read, patch, cancel, delete what it made,
following the links schemathesis infers). No input may cause a 5xx.

The budget: EXAMPLES generated cases per operation and mode, STEPS stateful scenarios;
the suite's clock, not the schema's size, sets them (slow-marked: `make test-fast`
leaves them out)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from schemathesis import GenerationMode, engine
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.engine import events

from entrypoints.container import build_container
from tests.integration.conftest import make_settings
from tests.integration.live import running_api
from tests.integration.services import Services

pytestmark = pytest.mark.slow

EXAMPLES = 25
STEPS = 25


async def _admin_key(database_url: str, redis_url: str) -> str:
    container = build_container(make_settings(database_url, redis_url))
    try:
        return (await container.api_keys().create("schemathesis", ["admin"], 10**6)).plaintext
    finally:
        await container.engine().dispose()


@pytest.fixture(scope="module")
def api_schema(database_url: str, services: Services) -> Iterator[schemathesis.BaseSchema]:
    key = asyncio.run(_admin_key(database_url, services.redis_url))
    with running_api(database_url, services.redis_url) as url:
        schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
        schema.config.update(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, request_timeout=30
        )
        schema.config.generation.update(
            modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
            max_examples=EXAMPLES,
            allow_x00=True,  # NUL bytes in strings: a classic 500 (issue 13)
        )
        yield schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_generated_request_causes_a_server_error(
    api_schema: schemathesis.BaseSchema, mode: GenerationMode
) -> None:
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema loads whole
        operations.append(result.ok())
    assert len(operations) >= 15  # every route of the API, not a schema that failed to load
    tested = []
    for operation in operations:

        @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            database=None,
        )
        def run(case: schemathesis.Case[Any]) -> None:
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])

        try:
            run()
        except hypothesis.errors.Unsatisfiable:
            # every value of its parameters is valid (free strings in a query, say):
            # schemathesis cannot build an invalid request for it
            assert mode is GenerationMode.NEGATIVE, operation.label
            continue
        tested.append(operation.label)
    # most operations have inputs that can be made invalid (bodies, ids, enums, bounds)
    assert len(tested) >= (15 if mode is GenerationMode.POSITIVE else 8), tested


def test_stateful_sequences_never_cause_a_server_error(
    api_schema: schemathesis.BaseSchema,
) -> None:
    """schemathesis' own engine (the one its CLI runs), stateful phase only: it infers the
    links between operations (an upload's id into read, patch, cancel, delete, versions,
    chunks, search ...) and drives sequences against a server that keeps what they made,
    which Hypothesis' own state machine cannot replay."""
    api_schema.config.phases.update(phases=["stateful"])
    api_schema.config.checks.update(included_check_names=["not_a_server_error"])
    api_schema.config.generation.update(max_examples=STEPS)
    inferred = 0
    scenarios: list[events.ScenarioFinished] = []
    problems: list[str] = []
    for event in engine.from_schema(api_schema).execute():
        if isinstance(event, events.PhaseStarted) and event.payload is not None:
            inferred = event.payload.inferred_transitions
        elif isinstance(event, events.ScenarioFinished):
            scenarios.append(event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            problems.append(str(event))
    assert not problems, problems
    assert inferred >= 20  # uploads, reads, patches, cancels, deletes, jobs are linked
    assert scenarios  # sequences really ran
    failed = [s.label for s in scenarios if s.status is engine.Status.FAILURE]
    assert not failed, failed
