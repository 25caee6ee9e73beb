"""Helpers for tests that need the Brain-Score environment (used by cortexsim's own test suite)."""
from __future__ import annotations

import os

from cortexsim.errors import BrainScoreEnvError

from .env import BrainScoreEnv, find_env, setup_env

#: Set to 1 to let tests create the environment (≈ 4 min, 6.5 GB) when there is none; CI runs setup first.
SETUP_VAR = "CORTEXSIM_BRAINSCORE_SETUP"


def require_env() -> BrainScoreEnv:
    """The Brain-Score environment, or ``pytest.skip`` saying why there is none and how to create it."""
    import pytest

    try:
        return find_env()
    except BrainScoreEnvError as missing:
        if os.environ.get(SETUP_VAR) != "1":
            pytest.skip(f"Brain-Score tests need the separate environment: {missing} (or set {SETUP_VAR}=1 to let "
                        f"the tests create it)")
        try:
            return setup_env(progress=None)
        except BrainScoreEnvError as failed:
            pytest.skip(f"the Brain-Score environment cannot be created here: {failed}")
