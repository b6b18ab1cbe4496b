"""Tests run real VMs through libquicksand (`make lib`, `make image`)."""

import pytest_asyncio

from quicksand import Sandbox


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sb():
    """One sandbox shared by the tests whose commands leave no state behind."""
    async with Sandbox(image="debian") as s:
        yield s
