"""Shared fixtures for the core tests."""

import pytest

import ember


@pytest.fixture(autouse=True)
def _seed():
    """Seed ember's generator before every test so random inputs are reproducible."""
    ember.manual_seed(0)
