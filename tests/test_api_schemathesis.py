"""Schemathesis generates requests from the OpenAPI spec; none may get a server error (5xx).

It runs in process against the ASGI app over a real pipeline and library, with the token and a
valid Host, so every request reaches the routes instead of bouncing off the security layer.
The endless MJPEG stream is left out (it never ends without ``frames``); the rest is covered.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from api_support import PORT, TOKEN, harness
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis")

HEADERS = {"Authorization": f"Bearer {TOKEN}", "Host": f"127.0.0.1:{PORT}"}
EXAMPLES = 40  # per operation


def _run_operation(op: Any, name: str, calls: dict[str, int], statuses: set[int]) -> None:
    """Up to EXAMPLES generated requests for one operation; each must not be a server error."""
    from schemathesis.checks import not_a_server_error

    @given(case=op.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    def run(case: Any) -> None:
        response = case.call(headers=HEADERS)
        calls[name] += 1
        statuses.add(response.status_code)
        assert response.status_code < 500, (name, response.status_code, response.text[:300])
        case.validate_response(response, checks=(not_a_server_error,))

    run()


def test_no_operation_gives_a_server_error(tmp_path: Path) -> None:
    from facetory_cam.api.extraction import ExtractedLook
    from facetory_cam.looks.library import resolve_look

    def extractor(photo: bytes, face: int | None) -> ExtractedLook:
        return ExtractedLook(resolve_look("natural"), [], face)

    with harness(tmp_path, extractor=extractor) as h:
        schema = schemathesis.openapi.from_asgi("/openapi.json", h.app(), headers=HEADERS)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 17
        calls: dict[str, int] = {}
        statuses: set[int] = set()
        for op in operations:
            name = f"{op.method.upper()} {op.path}"
            if op.path == "/api/preview.mjpg":
                continue
            calls[name] = 0
            _run_operation(op, name, calls, statuses)
        total = sum(calls.values())
        print(f"schemathesis: {total} requests over {len(calls)} operations, statuses {sorted(statuses)}")
        assert total >= 150 and all(n > 0 for n in calls.values()), calls
        assert h.store.verify() == []
        h.wait_frames(10)  # the camera ran on through it all
