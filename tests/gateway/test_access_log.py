"""One access line per request with its request id, in text or JSON (LOG_FORMAT=json),
written in batches off the request path."""

from __future__ import annotations

import io
import json
import logging
import re

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from gateway.access import AccessLog
from gateway.logs import AccessLines, JsonLines
from gateway.metrics import RequestTally
from tests.gateway.conftest import poll


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    status = 404 if scope["path"].startswith("/api/missing") else 201
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _serve(json_lines: bool) -> tuple[list[httpx.Response], str]:
    written = io.StringIO()
    lines = AccessLines(json_lines=json_lines, stream=lambda: written, interval=0.01)
    app = AccessLog(
        _answer,
        RequestTally(),
        api_prefix="/api",
        hot_routes=["/api/events/tickets/reserve"],
        lines=lines,
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        answers = [
            await http.post("/api/events/tickets/reserve", headers={"X-Request-ID": "abc-1"}),
            await http.get("/api/missing/42"),
        ]
    assert written.getvalue() == ""  # nothing written on the request path
    lines.flush()
    return answers, written.getvalue()


async def test_text_lines_one_per_request() -> None:
    answers, text = await _serve(json_lines=False)
    made = answers[1].headers["x-request-id"]
    assert answers[0].headers["x-request-id"] == "abc-1"
    rows = text.splitlines()
    assert len(rows) == 2
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO boxoffice\.access "
    assert re.fullmatch(stamp + r"abc-1 POST /api/events/tickets/reserve 201 \d+\.\dms", rows[0])
    assert re.fullmatch(stamp + re.escape(made) + r" GET /api/missing/42 404 \d+\.\dms", rows[1])


async def test_json_lines_carry_the_fields() -> None:
    answers, text = await _serve(json_lines=True)
    first, second = (json.loads(row) for row in text.splitlines())
    assert first["request_id"] == "abc-1" and first["status"] == 201
    assert (first["level"], first["logger"]) == ("info", "boxoffice.access")
    assert first["route"] == "/api/events/tickets/reserve"
    assert second["route"] == "unmatched" and second["path"] == "/api/missing/42"
    assert second["request_id"] == answers[1].headers["x-request-id"]
    assert first["time"].endswith("Z") and first["duration_ms"] >= 0


async def test_lines_are_written_soon_without_a_flush_call() -> None:
    written = io.StringIO()
    lines = AccessLines(stream=lambda: written, interval=0.01)
    lines.add("id-1", "GET", "/api/health", "/api/health", 200, 0.001)

    async def check() -> bool:
        return "id-1 GET /api/health 200" in written.getvalue()

    assert await poll(check, within=5)


def test_other_log_lines_as_json() -> None:
    record = logging.makeLogRecord(
        {
            "name": "boxoffice",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": "%s down",
            "args": ("database",),
        }
    )
    line = json.loads(JsonLines().format(record))
    assert (line["message"], line["level"], line["logger"]) == (
        "database down",
        "warning",
        "boxoffice",
    )


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_access_log_is_on_only_when_its_logger_is(log_format: str) -> None:
    logger = logging.getLogger("boxoffice.access")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert AccessLines.if_enabled(log_format) is None
        logger.setLevel(logging.INFO)
        assert AccessLines.if_enabled(log_format) is not None
    finally:
        logger.setLevel(before)
