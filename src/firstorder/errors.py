"""The user's mistakes, as their own exception classes.

A mistake in what the user asked for (a hyperparameter outside its domain, an unknown landscape,
a file that cannot be written) raises :class:`UserValueError` or :class:`UserTypeError`: still a
``ValueError`` or ``TypeError`` for code that catches those, and also a :class:`UserError`,
which the CLI and the playground catch to print the one-sentence message without a traceback.
Any other exception is a bug in firstorder and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for; the message is one sentence naming the parameter,
    the value given and what is allowed."""


class UserValueError(UserError, ValueError):
    """A value outside what is allowed."""


class UserTypeError(UserError, TypeError):
    """A value of a type that is not allowed."""


__all__ = ["UserError", "UserTypeError", "UserValueError"]
