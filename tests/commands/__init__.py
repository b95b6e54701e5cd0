"""A package, so that test_apply.py here and tests/analytics/test_apply.py do not clash."""
