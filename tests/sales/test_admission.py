"""Admission passes without a system: bound to user and event, short-lived, never a login
token, and a login token never a pass."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.refusals import NoAdmission
from sales.admission import JOIN_THE_QUEUE, AdmissionPasses
from sales.identity import InvalidToken, Role, TokenService

SECRET = "s" * 40
NOW = 1_800_000_000.0


def passes(now: float = NOW, secret: str = SECRET) -> AdmissionPasses:
    return AdmissionPasses(secret, clock=lambda: now)


def test_a_pass_admits_its_user_to_its_event_until_it_expires() -> None:
    token = passes().issue(7, 3, NOW, NOW + 600)
    passes(NOW + 599).check(token, 7, 3)
    for user, event, now in ((8, 3, NOW), (7, 4, NOW), (7, 3, NOW + 600), (7, 3, NOW + 10**6)):
        with pytest.raises(NoAdmission) as refused:
            passes(now).check(token, user, event)
        assert refused.value.message == JOIN_THE_QUEUE


def test_the_same_admission_signs_the_same_pass_on_every_gateway() -> None:
    assert passes().issue(7, 3, NOW, NOW + 600) == passes(NOW + 5).issue(7, 3, NOW, NOW + 600)


@pytest.mark.parametrize("token", [None, "", "junk", "a.b.c", "x" * 5_000])
def test_anything_else_is_no_pass(token: str | None) -> None:
    with pytest.raises(NoAdmission):
        passes().check(token, 7, 3)


def test_a_pass_signed_with_another_secret_is_refused() -> None:
    forged = passes(secret="another secret, same length......").issue(7, 3, NOW, NOW + 600)
    with pytest.raises(NoAdmission):
        passes().check(forged, 7, 3)


def test_passes_and_login_tokens_do_not_stand_in_for_each_other() -> None:
    tokens = TokenService(SECRET, timedelta(days=1), clock=lambda: NOW)
    login = tokens.issue(7, Role.ASSISTANT, now=NOW)
    with pytest.raises(NoAdmission):
        passes().check(login, 7, 3)
    with pytest.raises(InvalidToken):
        tokens.verify(passes().issue(7, 3, NOW, NOW + 600))
