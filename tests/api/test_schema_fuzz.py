"""Schemathesis against the running gateway's /openapi.json, once per role: no 5xx, ever, and
every answer as the schema declares it (status, content type, body)."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api.conftest import ServedGateway

ROLES = ("operator", "bureau", "admin", "anonymous")
# Two checks judge how strict the API is about input, not whether its answers are right: some
# schema-valid input is refused by design (a `from` after `to`, a person not in the config, a
# mode for a device not in the inventory: 422 naming the field), and FastAPI ignores unknown
# query parameters and takes the last of a repeated one.
EXCLUDED = [schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection]


@pytest.fixture(scope="module")
def api_schema(served: ServedGateway) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{served.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_answer_is_declared_and_none_is_a_server_error(
    case: schemathesis.Case, served: ServedGateway
) -> None:
    # Each generated request is sent once per role: the same input as operator, bureau, admin
    # and without a token.
    for role in ROLES:
        try:
            case.call_and_validate(
                base_url=served.base_url,
                headers=served.auth(role),
                timeout=10,
                excluded_checks=EXCLUDED,
            )
        except AssertionError as exc:
            raise AssertionError(f"as {role}: {exc}") from exc


def test_after_the_fuzz_every_list_and_export_still_answers(served: ServedGateway) -> None:
    # What the fuzz stored (tickets, modes, notes at every bound) must not break later reads: a
    # stored deadline of 1e17 once made both CSV exports answer 500 for good.
    for path in (
        "/api/v1/alerts?state=open",
        "/api/v1/tickets",
        "/api/v1/tickets/export/hazards.csv",
        "/api/v1/tickets/export/responsibilities.csv",
        "/api/v1/tickets/reports/monthly?month=2026-12&format=csv",
        "/api/v1/admin/modes",
        "/api/v1/summary",
        "/metrics",
    ):
        answer = httpx.get(f"{served.base_url}{path}", headers=served.auth("admin"), timeout=10)
        assert answer.status_code == 200, (path, answer.text[:300])
