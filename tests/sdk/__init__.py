"""Tests of the kloset_sdk package against the real plakar binary."""
