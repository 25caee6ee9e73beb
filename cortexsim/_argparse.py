"""argparse help that shows a default only where it says something."""
from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``ArgumentDefaultsHelpFormatter`` without ``(default: None)`` / ``(default: False)`` noise.

    A default is appended only when the help text does not already state one (``default``
    in it) and the default is a value (not None, not a store_true's False).
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, False) or isinstance(action.default, bool):
            return text
        return super()._get_help_string(action) or text
