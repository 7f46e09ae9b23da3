"""Tests of the load-test harness itself: its arithmetic, not the system's speed."""
