"""Fixtures shared by the whole suite: one database and one Ray runtime per run."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.ray_runtime",
    "tests.fixtures.system",
]
