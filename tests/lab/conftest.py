"""Every module here runs against the real lab: bring it up first, leave it as it was found."""

import pytest

from tests.lab.labtest import lab_up


@pytest.fixture(scope="module", autouse=True)
def lab():
    yield from lab_up()
