"""Hypothesis profiles for the reliability tests, and their shared data.

``HYPOTHESIS_PROFILE`` picks the profile: ``ci`` (the default: bounded, a few
minutes), ``medium`` (10 times as many examples) or ``long`` (``scripts/fuzz``: 100
times as many).  Each
property asks for a share of the profile's ``max_examples`` through `budget`,
so parse properties run the whole budget and execution properties a fifth
(`kestrel_strategies.budget`).
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(  # a quarter of an hour: after a change to the store or grammar
    "medium", max_examples=2_000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long", max_examples=20_000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
