"""Leaderboard rows count the lrs tried per configuration, missing keys included."""

from __future__ import annotations

import pandas as pd

from seqbench.harness.report.leaderboard import matches


def test_a_missing_key_matches_missing_values_however_stored() -> None:
    column = pd.Series([None, float("nan"), "true", "false"], dtype=object)
    assert matches(column, float("nan")).tolist() == [True, True, False, False]
    assert matches(column, None).tolist() == [True, True, False, False]
    assert matches(column, "true").tolist() == [False, False, True, False]
