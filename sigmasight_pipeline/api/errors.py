"""Every error the API answers has one shape, naming the field at fault (api.md, "Who may see what")."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    """``status``, the ``field`` at fault (a parameter, a body field, ``authorization``...), a ``message`` a person
    can act on, and for validation errors every field's problem (``errors``)."""

    status: int
    field: str | None = None
    message: str
    errors: list[FieldError] = []


class ApiError(Exception):
    """An answer other than 2xx: raised anywhere in a route, rendered as :class:`ErrorBody`."""

    def __init__(self, status: int, field: str | None, message: str, *, errors: list[FieldError] | None = None,
                 headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.field, self.message = status, field, message
        self.errors = errors or []
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return ErrorBody(status=self.status, field=self.field, message=self.message, errors=self.errors).model_dump()


#: The error answers every route may give, for the OpenAPI document.
ERROR_RESPONSES = {code: {"model": ErrorBody, "description": text} for code, text in (
    (401, "no API key, or an unknown or revoked one"),
    (404, "no such portfolio for this key, or no data for the date"),
    (422, "a parameter or body field is invalid (each named)"),
    (429, "the key's rate limit is reached (Retry-After)"),
)}
