"""Salesforce API errors as the sandbox answers them: an HTTP status and ``[{"errorCode", "message"}]``."""

from __future__ import annotations


class ApiError(Exception):
    """An error the sandbox answers with ``status`` and a JSON array of one error."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> list[dict[str, str]]:
        """The JSON body Salesforce sends for this error."""
        return [{"errorCode": self.code, "message": self.message}]


def invalid_session() -> ApiError:
    """Unknown or expired access token."""
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def not_found(what: str = "The requested resource does not exist") -> ApiError:
    """Unknown resource."""
    return ApiError(404, "NOT_FOUND", what)


def malformed(message: str) -> ApiError:
    """A SOQL syntax error."""
    return ApiError(400, "MALFORMED_QUERY", message)


def _caret(soql: str, column: int) -> str:
    """The query, a caret under ``column`` and Salesforce's position line, as error messages start."""
    caret = " " * max(column - 1, 0) + "^"
    return f"\n{soql}\n{caret}\nERROR at Row:1:Column:{column}\n"


def invalid_field(soql: str, name: str, obj: str, column: int) -> ApiError:
    """A field the object does not have, with Salesforce's caret message."""
    return ApiError(
        400,
        "INVALID_FIELD",
        f"{_caret(soql, column)}No such column '{name}' on entity '{obj}'. If you are "
        "attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference "
        "your WSDL or the describe call for the appropriate names.",
    )


def invalid_type(soql: str, name: str, column: int) -> ApiError:
    """An object the org does not have."""
    return ApiError(
        400,
        "INVALID_TYPE",
        f"{_caret(soql, column)}sObject type '{name}' is not supported. If you are "
        "attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


def limit_exceeded() -> ApiError:
    """The daily API request limit is used up."""
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
