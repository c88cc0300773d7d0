"""Tests of the Python SDK in sdk/ and the seed_demo command that drives it."""
