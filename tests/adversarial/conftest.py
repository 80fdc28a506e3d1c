"""Adversarial tests: a hostile host or a careless user, one file per class of attack.

They reuse the integration fixtures (the real lab, audits through ansible-runner).
"""

from tests.integration.conftest import audit, canaries, lab  # noqa: F401
