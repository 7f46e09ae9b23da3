"""Tests of the shared services: identity, fulfilment, the sales rules."""
