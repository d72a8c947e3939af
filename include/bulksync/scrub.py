"""One scrubber for every secret bulksync handles: what is registered here never reaches a log or a file.

A secret leaks in more shapes than its own: a webhook receiver answers ``403 invalid token <the
last path segment>``, a client logs the URL-encoded URL, a proxy echoes a base64 ``Authorization``
header. So each secret is registered with all its *forms* (:func:`forms`): itself, URL-encoded
(``quote``, ``quote_plus``, with upper- and lower-case escapes, twice encoded), JSON-escaped, and
base64 (standard and URL-safe, padded or not, and the part of it that shows inside the base64 of
any longer text). A URL is registered with its path, every path segment and query value that may
be a token (not a public word: :func:`url_secrets`), its whole query, and its password. A
connection is registered with its password, ``login:password`` as Basic auth, every extra whose
key names a secret (``password``, ``token``, ``secret``, ``api_key``, ``webhook_url`` …,
recursively), and a URL host (:func:`connection_secrets`).

Where it applies:

- :func:`install` (run when :mod:`bulksync.hooks` is imported, so every hook gets it) wraps the
  ``logging`` record factory: every record of every logger in the process — bulksync's, urllib3's,
  SQLAlchemy's — has its message and its traceback text scrubbed once anything is registered;
- it also plugs :func:`adaptations` into Airflow's secrets masker (``[logging]
  secret_mask_adapter``, chained with one already configured): every secret Airflow masks itself
  (the password and extras of each connection any hook fetches, provider hooks included) is then
  masked in all its forms, and :meth:`Scrubber.scrub` applies what Airflow's masker knows as well;
- :func:`scrub` is called on what bulksync stores (run records, audit rows, alerts).

Only the standard library at import time: the Airflow api-server and the CLI import this module.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

MASK = "***"
MIN_LENGTH = 5
"""Shorter strings are never treated as secrets (Airflow's ``min_length_masked_secret`` default)."""

PUBLIC_SEGMENTS = frozenset(
    {
        "services",
        "service",
        "webhook",
        "webhooks",
        "webhookb2",
        "incomingwebhook",
        "hooks",
        "trigger",
        "triggers",
        "workflows",
        "invoke",
        "manual",
        "paths",
        "default",
        "message",
        "messages",
        "notify",
        "events",
        "alert",
        "alerts",
        "index",
        "oauth2",
        "token",
        "hooks.slack.com",
    }
)
"""Path segments of webhook URLs that are documented public words, not secrets (compared in lower case)."""

SENSITIVE_WORDS = frozenset(
    {
        "access_key",
        "access_token",
        "account_key",
        "api_key",
        "apikey",
        "auth",
        "bearer",
        "connection_string",
        "credential",
        "dsn",
        "passphrase",
        "passwd",
        "password",
        "private_key",
        "proxy",
        "sas",
        "secret",
        "service_account",
        "service_key",
        "shared_access_key",
        "signature",
        "token",
        "keyfile_dict",
        "webhook",
    }
)
"""Extra keys whose values are secrets: a key *containing* one of these words (Airflow's list and more)."""


def _b64_variants(raw: bytes) -> set[str]:
    std = base64.b64encode(raw).decode("ascii")
    url = base64.urlsafe_b64encode(raw).decode("ascii")
    return {std, std.rstrip("="), url, url.rstrip("=")}


def _b64_cores(raw: bytes) -> set[str]:
    """The base64 text that any base64 encoding of a longer string containing ``raw`` must contain.

    Base64 works on 3-byte groups, so ``raw`` at offset ``k`` (mod 3) of a longer text always
    encodes to the same characters, bar the first and last group it shares with its neighbours.
    """
    out: set[str] = set()
    for k in range(3):
        body = raw[(3 - k) % 3 :]  # the bytes of raw that start a fresh 3-byte group
        full = len(body) - len(body) % 3
        if full >= 6:
            out |= {s.rstrip("=") for s in _b64_variants(body[:full])}
    return out


def forms(secret: str) -> set[str]:
    """Every shape in which ``secret`` may show up in text: itself, URL-encoded, JSON-escaped, base64.

    Args:
        secret: the secret.

    Returns:
        The forms of at least :data:`MIN_LENGTH` characters (empty for a shorter secret).
    """
    if len(secret) < MIN_LENGTH:
        return set()
    raw = secret.encode("utf-8")
    out = {secret, secret.replace("/", "\\/")}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret), quote(quote(secret, safe=""), safe="")):
        out.add(encoded)
        out.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    out |= _b64_variants(raw)
    out |= _b64_cores(raw)
    return {s for s in out if len(s) >= MIN_LENGTH}


def url_secrets(url: str) -> list[str]:
    """The secret parts of a URL: itself, its path, each non-public path segment, query and values, password.

    Args:
        url: an ``http(s)://`` URL (e.g. a webhook URL, whose path is the credential).

    Returns:
        The parts, longest first (the host and the scheme are not secrets).
    """
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return [url]
    found = {url.strip(), parts.path, parts.query, parts.path + (f"?{parts.query}" if parts.query else "")}
    if parts.netloc:
        found.add(f"{parts.netloc}{parts.path}")
    for segment in parts.path.split("/"):
        plain = unquote(segment)
        if _token_like(plain):
            found |= {segment, plain}
    for _key, value in parse_qsl(parts.query, keep_blank_values=False):
        if _token_like(value):
            found.add(value)
    if parts.password:
        found |= {parts.password, unquote(parts.password)}
    return sorted((s for s in found if len(s.strip("/")) >= MIN_LENGTH), key=len, reverse=True)


_WORD = re.compile(r"[a-z][a-z_-]{0,15}")


def _token_like(part: str) -> bool:
    """Whether a URL path segment or query value may be a credential.

    Everything but a documented public word (:data:`PUBLIC_SEGMENTS`) and plain lower-case words of
    up to 16 letters (``alerts``, ``slack``, ``bulksync``): tokens, ids and keys have digits, capitals
    or length, and masking ordinary words would blank them out of every log line.
    """
    return len(part) >= MIN_LENGTH and part.lower() not in PUBLIC_SEGMENTS and not _WORD.fullmatch(part)


def _looks_like_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://")) and len(text) > 8


def is_sensitive_key(key: str) -> bool:
    """Whether an extra (or variable) named ``key`` holds a secret (see :data:`SENSITIVE_WORDS`)."""
    normalized = re.sub(r"\W+", "_", key.strip().lower())
    return any(word in normalized for word in SENSITIVE_WORDS)


def _sensitive_values(value: Any, force: bool = False) -> Iterable[str]:
    """The secret strings of a (parsed JSON) extra: values under sensitive keys, recursively."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _sensitive_values(v, force or is_sensitive_key(str(k)))
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _sensitive_values(v, force)
    elif force and isinstance(value, str | int) and not isinstance(value, bool):
        yield str(value)


def secret_strings(secret: str) -> list[str]:
    """A secret and what it stands for: a URL's secret parts, a JSON extra's sensitive values."""
    text = secret.strip()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict | list):
            out: list[str] = []
            for value in _sensitive_values(data):
                out.extend(secret_strings(value))
            return out
    if _looks_like_url(text):
        return url_secrets(text)
    return [secret]


def connection_secrets(conn: Any) -> list[str]:
    """Every secret of an Airflow connection: password, Basic auth, sensitive extras, a URL host.

    Args:
        conn: an ``airflow.sdk.Connection`` (anything with ``password``, ``login``, ``host``,
            ``schema`` and ``extra_dejson``).
    """
    out: list[str] = []
    password = getattr(conn, "password", None) or ""
    if password:
        out.extend(secret_strings(str(password)))
        login = getattr(conn, "login", None) or ""
        out.append(f"{login}:{password}")  # Basic auth, whose base64 form is then masked
    try:
        extra = getattr(conn, "extra_dejson", None) or {}
    except Exception:  # noqa: BLE001 - an unparsable extra has no keys to judge
        extra = {}
    for value in _sensitive_values(extra):
        out.extend(secret_strings(value))
    host = str(getattr(conn, "host", None) or "")
    if _looks_like_url(host):  # a whole webhook URL kept in the host field
        out.extend(url_secrets(host))
    return out


def trie_pattern(words: Iterable[str]) -> str:
    """One regular expression matching any of ``words``, the longest one where several start alike.

    The words are laid out as a trie (``abc|abd`` becomes ``ab(?:c|d)``), so a scan tries one branch
    per character instead of every word at every position: a thousand registered forms cost about
    what a few do (a plain alternation of them is ~25 times slower per log line).
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}  # end of a word

    def chain(char: str, node: dict[str, Any]) -> str:
        run = [char]
        while len(node) == 1 and "" not in node:  # a stretch without branches: no recursion for it
            ((char, node),) = node.items()
            run.append(char)
        return re.escape("".join(run)) + build(node)

    def build(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [chain(char, child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if ends:  # a word may end here, or go on: prefer going on (the longer match)
            return f"(?:{body})?"
        return body

    return build(trie)


class Scrubber:
    """Replaces registered secrets, in all their forms, by ``***``; safe to share between threads."""

    def __init__(self) -> None:
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._foreign_cache: dict[int, tuple[tuple[int, int, int], re.Pattern[str] | None]] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return self._pattern is not None or any(m.replacer is not None for m in _airflow_maskers())

    def add(self, *secrets: str | None) -> None:
        """Register secrets (with :func:`secret_strings` and :func:`forms`); empty or short ones are ignored."""
        new: set[str] = set()
        for secret in secrets:
            if secret:
                for part in secret_strings(str(secret)):
                    new |= forms(part)
        with self._lock:
            if new <= self._forms:
                return
            self._forms |= new
            self._pattern = re.compile(trie_pattern(self._forms))

    def forms(self) -> frozenset[str]:
        """Every form registered so far (for tests and diagnostics; never log it)."""
        return frozenset(self._forms)

    def scrub(self, text: str) -> str:
        """``text`` with every registered form, and every secret Airflow's masker knows, replaced by ``***``."""
        if not text:
            return text
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(MASK, text)
        for masker in _airflow_maskers():
            foreign = self._foreign(masker)
            if foreign is not None:
                text = foreign.sub(MASK, text)
        return text

    def _foreign(self, masker: Any) -> re.Pattern[str] | None:
        """The secrets Airflow's masker knows and this scrubber does not (e.g. provider hooks' passwords).

        Airflow's own replacer is one alternation of every pattern, ours included, and costs far more
        per line than the trie; so only the patterns it has beyond ours are applied, recompiled when
        either side grows.
        """
        patterns = getattr(masker, "patterns", None)
        if not patterns:
            return None
        key = (id(masker), len(patterns), len(self._forms))
        cached = self._foreign_cache.get(id(masker))
        if cached is not None and cached[0] == key:
            return cached[1]
        ours = {re.escape(f) for f in self._forms}
        extra = sorted((p for p in patterns if p not in ours), key=len, reverse=True)
        compiled = re.compile("|".join(extra)) if extra else None
        self._foreign_cache[id(masker)] = (key, compiled)
        return compiled

    def scrub_value(self, value: Any) -> Any:
        """Scrub the strings inside lists, tuples and dicts (keys too), leaving other values alone."""
        if isinstance(value, str):
            return self.scrub(value)
        if isinstance(value, dict):
            return {self.scrub_value(k): self.scrub_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub_value(v) for v in value)
        return value


SCRUBBER = Scrubber()
"""The process-wide scrubber every hook registers its secrets with."""


def register(*secrets: str | None) -> None:
    """Register secrets with bulksync's scrubber and with Airflow's secrets masker (all forms)."""
    install()
    SCRUBBER.add(*secrets)
    _tell_airflow([s for s in secrets if s])


def register_connection(conn: Any) -> None:
    """Register every secret of an Airflow connection (see :func:`connection_secrets`)."""
    register(*connection_secrets(conn))


def scrub(text: str | None) -> str | None:
    """``text`` without any registered secret (``None`` stays ``None``)."""
    return SCRUBBER.scrub(text) if text else text


def adaptations(secret: Any) -> list[str]:
    """Airflow's ``[logging] secret_mask_adapter``: the forms of a secret Airflow is told to mask.

    Airflow masks each connection's password and its whole extra JSON text (and, by key name, the
    extra's values); this returns the forms of the password, of each sensitive value inside an extra's
    JSON text, and of a URL's secret parts. Airflow itself then decides, by key name, which to mask.
    Set ``AIRFLOW__LOGGING__SECRET_MASK_ADAPTER=bulksync.scrub.adaptations`` to have it in every Airflow
    process (the task supervisor that writes task logs included); importing :mod:`bulksync.hooks` plugs
    it in for the process that does.
    """
    if not isinstance(secret, str) or len(secret) < MIN_LENGTH or secret in SCRUBBER.forms():
        return []  # a form we registered ourselves: its own forms would only bloat the masker
    out: set[str] = set()
    for part in secret_strings(secret):
        out |= forms(part)
    return sorted(out, key=len, reverse=True)


class ScrubFilter(logging.Filter):
    """A logging filter scrubbing a record's message and traceback text (what :func:`install` applies)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub ``record`` in place; never drops it."""
        scrub_record(record)
        return True


def scrub_record(record: logging.LogRecord) -> None:
    """Replace the message (and the formatted traceback) of ``record`` by their scrubbed text."""
    if not SCRUBBER:
        return
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a malformed record is logging's business, not ours
        return
    clean = SCRUBBER.scrub(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        clean = SCRUBBER.scrub(text)
        if clean != text:
            record.exc_text = clean
    if record.stack_info:
        record.stack_info = SCRUBBER.scrub(record.stack_info)


_installed = False
_install_lock = threading.Lock()


def install() -> None:
    """Scrub every log record of the process (installed once), and plug :func:`adaptations` into Airflow's masker."""
    global _installed
    _adapt_airflow_masker()  # again each time: Airflow's settings may have reset it since
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            scrub_record(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = True


_MASKERS: list[Any] | None = None


def _airflow_maskers() -> list[Any]:
    """Airflow's secrets maskers of this process (the Task SDK's and the core one), once Airflow is imported.

    Their ``replacer`` holds every secret Airflow was told to mask: the password and extras of each
    connection any hook fetched (provider hooks included), with the forms :func:`adaptations` added.
    """
    global _MASKERS
    if _MASKERS is not None:
        return _MASKERS
    import sys

    if "airflow" not in sys.modules:
        return []  # not yet: look again on the next call
    import importlib

    found = []
    for module in ("airflow.sdk._shared.secrets_masker", "airflow._shared.secrets_masker"):
        try:
            masker = importlib.import_module(module)._secrets_masker()
        except Exception:  # noqa: BLE001 - a layout without this masker
            continue
        if hasattr(masker, "replacer"):
            found.append(masker)
    _MASKERS = found
    return found


def _adapt_airflow_masker() -> None:
    """Chain :func:`adaptations` after the ``secret_mask_adapter`` Airflow was configured with, if any."""
    for masker in _airflow_maskers():
        current: Callable[[str], Any] | None = getattr(masker, "secret_mask_adapter", None)
        if current is adaptations or getattr(current, "_bulksync", False):
            continue
        masker.secret_mask_adapter = _chain(current) if current else adaptations


def _chain(first: Callable[[str], Any]) -> Callable[[str], list[str]]:
    def chained(secret: str) -> list[str]:
        theirs = first(secret)
        out = [theirs] if isinstance(theirs, str) else list(theirs or [])
        return out + adaptations(secret)

    chained._bulksync = True  # type: ignore[attr-defined]
    return chained


def _tell_airflow(secrets: list[str]) -> None:
    """Mask the secrets, in all their forms, in Airflow's logs (this process and a task's supervisor)."""
    try:
        from airflow.sdk.log import mask_secret
    except Exception:  # noqa: BLE001 - outside Airflow: bulksync's own scrubbing still applies
        return
    for secret in secrets:
        for part in secret_strings(secret):
            for form in forms(part):
                with contextlib.suppress(Exception):  # best effort on top of our own scrubbing
                    mask_secret(form)  # the adapter returns nothing for a form already registered
