"""Read tokens for the dashboard: who may see the data, and keeping tokens out of logs.

With ``SCORESTREAM_READ_TOKENS`` set, each browser session must open the
page as ``/?token=<token>``. A session without a valid token gets a page
with the reason, and none of the views is built, so no data is read or sent.
"""

from __future__ import annotations

import logging
import re

import panel as pn

from dashboards.context import DashboardContext

logger = logging.getLogger(__name__)

TOKEN_ARGUMENT = re.compile(r"(token=)[^&\s]+")


def read_access_error(context: DashboardContext, token: str | None) -> str | None:
    """Return why a session with ``token`` may not read the data, or None when it may.

    Without ``SCORESTREAM_READ_TOKENS`` every session may read. Otherwise the
    page URL must carry ``?token=`` with one of those tokens or an API key,
    which the web app's ``/ws`` accepts too. Both key rings compare SHA-256
    digests with ``hmac.compare_digest``.
    """
    runtime = context.runtime
    if not runtime.read_tokens:
        return None
    if not token:
        return (
            "This dashboard needs a read token. Open it as `/?token=<token>`, with one of the "
            "tokens in the server's `SCORESTREAM_READ_TOKENS`."
        )
    if runtime.read_tokens.matches(token) or runtime.keys.matches(token):
        return None
    return (
        "The read token in the address is not valid. Open the dashboard as `/?token=<token>`, "
        "with one of the tokens in the server's `SCORESTREAM_READ_TOKENS`."
    )


def session_token() -> str | None:
    """Return the ``token`` argument of the request that opened this session, if any."""
    values = pn.state.session_args.get("token") or []
    return values[0].decode("utf-8", errors="replace") if values else None


def rejection_page(title: str, message: str) -> pn.Column:
    """Build the page shown instead of the data to a session without a valid read token."""
    return pn.Column(
        pn.pane.Markdown(f"## {title}"),
        pn.pane.Alert(message, alert_type="danger", name="read token rejected"),
        sizing_mode="stretch_width",
    )


class RedactTokens(logging.Filter):
    """Replace the value of every ``token=`` argument in a log record with ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg = TOKEN_ARGUMENT.sub(r"\1[redacted]", message)
            record.args = None
        return True


def redact_tokens_in_logs() -> None:
    """Redact tokens in every record that reaches the root logger's handlers.

    Tornado's access log writes each request's URL, and the page URL
    carries the read token, as the ``/ws`` URL of the live feed does.
    """
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RedactTokens) for existing in handler.filters):
            handler.addFilter(RedactTokens())
