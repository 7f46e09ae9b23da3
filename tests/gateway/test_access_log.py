"""One log line per request, with its request id; plain text or JSON (LOG_FORMAT=json)."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from gateway.logs import JsonLines


async def test_one_line_per_request_with_its_id(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="boxoffice.access")
    await client.get("/api/health", headers={"X-Request-ID": "log-test-1"})
    await client.get("/api/events/424242", headers={"X-Request-ID": "log-test-2"})
    lines = [r for r in caplog.records if getattr(r, "request_id", "").startswith("log-test-")]
    assert [(r.request_id, r.route, r.status) for r in lines] == [  # type: ignore[attr-defined]
        ("log-test-1", "/api/health", 200),
        ("log-test-2", "/api/events/{id}", 404),
    ]
    assert lines[1].getMessage().startswith("log-test-2 GET /api/events/424242 404 ")


def test_json_lines_carry_the_fields() -> None:
    record = logging.makeLogRecord(
        {
            "name": "boxoffice.access",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "%s done",
            "args": ("req-9",),
            "request_id": "req-9",
            "status": 201,
        }
    )
    line = json.loads(JsonLines().format(record))
    assert line["message"] == "req-9 done"
    assert (line["level"], line["logger"]) == ("info", "boxoffice.access")
    assert (line["request_id"], line["status"]) == ("req-9", 201)
    assert line["time"].endswith("Z")
