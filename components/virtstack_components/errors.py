"""The root of virtstack's one exception hierarchy, and the errors components raise.

It lives here, in the lowest layer, so components depend on nothing above them;
``virtstack.errors`` builds the rest of the hierarchy on :class:`VirtstackError`.
"""

from __future__ import annotations


class VirtstackError(Exception):
    """Base of every error virtstack raises on purpose."""


class TemplateError(VirtstackError):
    """A template is missing or was rendered without a value it needs."""


class ComponentError(VirtstackError):
    """A component was given arguments it cannot build."""
