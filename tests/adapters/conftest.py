"""Fixtures of the adapter tests: the Dataverse stand-in answering over `responses`, seeded with the demo data."""
import pytest
import responses

from standins.dataverse import DataverseStandIn
from standins.dataverse.demo import seed_demo


@pytest.fixture
def dv():
    standin = DataverseStandIn()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        standin.register_with_responses(rsps)
        yield standin


@pytest.fixture
def ids(dv):
    return seed_demo(dv)
