"""Docs are tests: how the code blocks of README.md, guides/*.md and plugins/*/README.md run.

The root ``conftest.py`` hands every such document to Sybil with the parsers built here.
Each document runs in order, in a fresh temporary working directory, one test per block,
with one namespace per document:

``python``
    executed in the document's namespace.
``toml``
    must parse. A block made only of rindle settings is a ``rindle.toml``, or a part of one:
    when the document has a ``rindle.toml`` in its working directory (it ran ``rindle
    init``), the block is appended to it, as a reader pastes it, and the result must parse
    and load with :func:`rindle.config.load_settings`; otherwise the block alone must load.
    Other TOML (a ``pyproject.toml`` table) is only parsed.
``bash`` / ``sh`` / ``shell`` / ``console``
    each command line (``console``: each ``$ `` line) runs through ``bash -c`` in the
    document's working directory, with the virtualenv's ``bin`` first on ``PATH``, within
    :data:`COMMAND_TIMEOUT` seconds; a non-zero exit fails the test with the output.
    ``rindle serve`` and ``rindle worker`` (without ``--drain``) run until stopped: they must
    still be running after :data:`LONG_RUNNING_SECONDS`, then get SIGTERM. Commands that
    install software or re-enter the suite (:data:`NEVER_RUN`) are refused: the document
    must put them in a block of their own, say why in a sentence above it, and mark that
    block ``<!-- skip: next "the reason" -->``.

A document declares its own setup in hidden blocks (``<!-- invisible-code-block: python``
... ``-->``, or ``bash``). Hidden Python blocks can use ``DOC`` (a :class:`DocRun`): extra
environment for the shell blocks (``DOC.env``; plugin autoload is off unless a document
sets ``RINDLE_DISABLE_PLUGIN_AUTOLOAD`` to ``"0"``), the source of every block run so far
(``DOC.blocks``), a background process (``DOC.background``), one command run the way a
shell block runs it (``DOC.sh``), the rindle-mux suite's loopback Mux (``DOC.fake_mux``) and
cleanups at the end of the document (``DOC.enter``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sybil import Document, Example, Region
from sybil.parsers.markdown import CodeBlockParser, PythonCodeBlockParser, SkipParser

REPO = Path(__file__).resolve().parents[1]
#: The virtualenv's scripts (``rindle``), put first on ``PATH`` for shell blocks.
VENV_BIN = Path(sys.executable).parent

#: Seconds one command line of a shell block may take.
COMMAND_TIMEOUT = 120
#: How long a long-running command (``rindle serve``, ``rindle worker``) must stay up.
LONG_RUNNING_SECONDS = 3.0

#: Commands a document may show but the suite never runs, with the reason.
NEVER_RUN = {
    "pip": "it installs from the package index",
    "pip3": "it installs from the package index",
    "make": "make targets install software (and `make test` is what runs these blocks)",
    "apt-get": "it installs system packages",
    "apt": "it installs system packages",
    "sudo": "it needs root",
    "brew": "it installs system packages",
}

#: Environment variables a shell block never inherits from whoever runs the suite.
HERMETIC_UNSET = ("RINDLE_CONFIG", "RINDLE_DATABASE_URL", "RINDLE_SECRET_KEY",
                  "RINDLE_LOAD_PLUGINS")

SHELL_LANGUAGES = ("bash", "sh", "shell", "console")


def doc_files() -> list[str]:
    """The documents whose blocks run, relative to the repository root."""
    found = ["README.md", *sorted(p.relative_to(REPO).as_posix()
                                  for p in (REPO / "guides").glob("*.md"))]
    found.append("plugins/README.md")
    found += sorted(p.relative_to(REPO).as_posix() for p in (REPO / "plugins").glob("*/README.md"))
    return found


# --- the per-document helper ---------------------------------------------------------------


@dataclass
class DocRun:
    """State of one document's run, available to its blocks as ``DOC``."""

    #: Extra environment for shell blocks and :meth:`sh` (on top of a hermetic copy).
    env: dict[str, str] = field(default_factory=lambda: {"RINDLE_DISABLE_PLUGIN_AUTOLOAD": "1"})
    #: ``(language, source)`` of every block run so far (not the running one), hidden ones
    #: included.
    blocks: list[tuple[str, str]] = field(default_factory=list)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    repo: Path = REPO
    #: Document names that Sybil's fixture injection would overwrite (``request``).
    names: dict[str, Any] = field(default_factory=dict)

    def last_block(self, language: str, *, back: int = 1) -> str:
        """The source of the ``back``-th most recent ``language`` block run so far."""
        sources = [src for lang, src in self.blocks if lang == language]
        return sources[-back]

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in HERMETIC_UNSET}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update(self.env)
        return env

    def sh(self, line: str, *, timeout: float = COMMAND_TIMEOUT) -> str:
        """Run one command line as a shell block runs it; its stdout (fails on exit != 0)."""
        proc = subprocess.Popen(["bash", "-o", "pipefail", "-c", line], env=self.environ(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop(proc, grace=0)
            out, err = proc.communicate()
            raise AssertionError(_report(line, f"still running after {timeout:.0f} s",
                                         out, err)) from None
        if proc.returncode != 0:
            raise AssertionError(_report(line, f"exit {proc.returncode}", out, err))
        return out

    def run_long(self, line: str) -> None:
        """Start a command that runs until stopped; it must stay up, then it is stopped."""
        proc = subprocess.Popen(["bash", "-c", f"exec {line}"], env=self.environ(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            proc.wait(timeout=LONG_RUNNING_SECONDS)
        except subprocess.TimeoutExpired:
            _stop(proc, grace=60)
            proc.communicate()
            return
        out, err = proc.communicate()
        raise AssertionError(_report(line, f"exited ({proc.returncode}) within "
                                     f"{LONG_RUNNING_SECONDS:.0f} s; it should run until stopped",
                                     out, err))

    def background(self, line: str, *, ready_url: str, timeout: float = 30.0
                   ) -> subprocess.Popen[str]:
        """Start ``line`` until the document ends; return once ``ready_url`` answers HTTP."""
        proc = subprocess.Popen(["bash", "-c", f"exec {line}"], env=self.environ(),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.stack.callback(_stop, proc, 10)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=1):
                    return proc
            except urllib.error.HTTPError:
                return proc  # it answered
            except OSError:
                if proc.poll() is not None:
                    err = proc.stderr.read() if proc.stderr else ""
                    raise AssertionError(_report(line, "exited at start-up", "", err)) from None
                if time.monotonic() > deadline:
                    raise AssertionError(f"{line!r} did not answer {ready_url} within "
                                         f"{timeout:.0f} s") from None
                time.sleep(0.1)

    def fake_mux(self) -> LoopbackMux:
        """The rindle-mux suite's loopback Mux (``plugins/rindle_mux/tests/muxkit.py``: no Mux
        emulator exists) until the document ends, with credentials it accepts and a
        throwaway signing key."""
        import base64
        import threading
        from http.server import ThreadingHTTPServer

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        muxkit = _import_muxkit()
        state = muxkit.FakeMux()
        server = ThreadingHTTPServer(("127.0.0.1", 0), muxkit._handler(state))
        server.daemon_threads = True
        state.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, name="doc-mux", daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        self.stack.callback(stop)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
        return LoopbackMux(state=state, url=state.url, token_id=muxkit.TOKEN_ID,
                           token_secret=muxkit.TOKEN_SECRET,
                           signing_key_id=muxkit.SIGNING_KEY_ID,
                           signing_private_key=base64.b64encode(pem).decode(),
                           webhook_secret=muxkit.WEBHOOK_SECRET)

    def enter(self, cm: contextlib.AbstractContextManager[Any]) -> Any:
        """Enter ``cm`` until the document ends (servers, temporary state)."""
        return self.stack.enter_context(cm)

    def close(self) -> None:
        self.stack.close()


@dataclass(frozen=True)
class LoopbackMux:
    """What :meth:`DocRun.fake_mux` started: the server state and what to configure."""

    state: Any = field(repr=False)
    url: str
    token_id: str
    token_secret: str = field(repr=False)
    signing_key_id: str
    signing_private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)


def _import_muxkit() -> Any:
    """The rindle-mux test kit, as the module its own conftest imports (``muxkit``)."""
    import importlib.util

    if "muxkit" in sys.modules:
        return sys.modules["muxkit"]
    path = REPO / "plugins" / "rindle_mux" / "tests" / "muxkit.py"
    spec = importlib.util.spec_from_file_location("muxkit", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["muxkit"] = module
    spec.loader.exec_module(module)
    return module


def _stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM the process group, SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _report(line: str, what: str, out: str, err: str) -> str:
    return (f"`{line}` {what}\n--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}")


def setup(namespace: dict[str, Any]) -> None:
    """Before a document's first block: its ``DOC``."""
    namespace["DOC"] = DocRun()


def teardown(namespace: dict[str, Any]) -> None:
    """After a document's last block: close its apps, stop what it started."""
    from rindle import Rindle

    try:
        for value in list(namespace.values()):
            if isinstance(value, Rindle):
                value.close()
    finally:
        doc = namespace.get("DOC")
        if isinstance(doc, DocRun):
            doc.close()
        for name in [m for m in sys.modules if m == "rindle_profiles"]:
            del sys.modules[name]  # `rindle init` writes one per document


# --- evaluators ------------------------------------------------------------------------------


def _doc(example: Example) -> DocRun:
    doc = example.namespace.get("DOC")
    assert isinstance(doc, DocRun), "the document's DOC is missing (Sybil setup did not run)"
    return doc


def evaluate_toml(example: Example) -> None:
    """A ``toml`` block parses; a rindle settings block also loads (see the module doc)."""
    from rindle.config import _FILE_KEYS, load_settings

    text = str(example.parsed)
    data = tomllib.loads(text)
    if not data or not set(data) <= _FILE_KEYS:
        return  # not rindle settings (a pyproject.toml table, ...): parsing is the check
    target = Path("rindle.toml")
    if target.exists():
        combined = target.read_text().rstrip("\n") + "\n\n" + text
        try:
            tomllib.loads(combined)
        except tomllib.TOMLDecodeError as exc:
            raise AssertionError(
                f"appended to the document's rindle.toml (the one `rindle init` wrote), this "
                f"block makes invalid TOML: {exc}\n--- rindle.toml would be ---\n{combined}"
            ) from None
        target.write_text(combined)
        load_settings(target)
        return
    scratch = Path("doc-blocks") / f"line-{example.line}" / "rindle.toml"
    scratch.parent.mkdir(parents=True, exist_ok=True)
    scratch.write_text(text)
    load_settings(scratch)


def command_lines(source: str, *, console: bool = False) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and blanks out;
    for ``console`` only the ``$ `` lines (the rest is output)."""
    lines: list[str] = []
    pending = ""
    for raw in source.splitlines():
        if console and not pending:
            if not raw.startswith("$ "):
                continue
            raw = raw[2:]
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line and not line.startswith("#"):
            lines.append(line)
    if pending.strip():
        lines.append(pending.strip())
    return lines


def never_run_reason(argv: list[str]) -> str | None:
    """Why the suite does not run this command, or ``None`` if it does."""
    if not argv:
        return None
    head = Path(argv[0]).name
    if head in ("python", "python3") and argv[1:3] == ["-m", "pip"]:
        head = "pip"
    return NEVER_RUN.get(head)


def is_long_running(argv: list[str]) -> bool:
    """``rindle serve`` and ``rindle worker`` without ``--drain`` run until stopped."""
    if not argv or Path(argv[0]).name != "rindle":
        return False
    verbs = [a for a in argv[1:] if not a.startswith("-")]
    verb = verbs[0] if verbs else ""
    return verb == "serve" or (verb == "worker" and "--drain" not in argv)


def make_shell_evaluator(language: str) -> Callable[[Example], None]:
    def evaluate(example: Example) -> None:
        doc = _doc(example)
        lines = command_lines(str(example.parsed), console=language == "console")
        for line in lines:
            argv = shlex.split(line, comments=True)
            reason = never_run_reason(argv)
            if reason is not None:
                raise AssertionError(
                    f"`{line}` cannot run in the doc tests: {reason}. Put it in a block of its "
                    "own, say in a sentence above it that and why it is not run here, and mark "
                    "that block <!-- skip: next \"the reason\" -->.")
        for line in lines:
            if is_long_running(shlex.split(line, comments=True)):
                doc.run_long(line)
            else:
                doc.sh(line)

    return evaluate


# --- parsers -------------------------------------------------------------------------------


class Recorded:
    """Wrap a parser so that each block's source lands in ``DOC.blocks`` once it has run."""

    def __init__(self, parser: Callable[[Document], Iterable[Region]], language: str) -> None:
        self.parser = parser
        self.language = language

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.parser(document):
            region.evaluator = self._recording(region.evaluator)
            yield region

    def _recording(self, inner: Callable[[Example], Any]) -> Callable[[Example], Any]:
        def evaluate(example: Example) -> Any:
            doc = _doc(example)
            namespace = example.namespace
            # Sybil puts pytest's `request` fixture into the namespace before every block,
            # which would clobber a document's own `request` (a presigned request, a web
            # request) between blocks: give the document its value back.
            if "request" in doc.names:
                namespace["request"] = doc.names["request"]
            try:
                return inner(example)
            finally:
                doc.blocks.append((self.language, str(example.parsed)))
                value = namespace.get("request")
                if value is not None and not isinstance(value, pytest.FixtureRequest):
                    doc.names["request"] = value

        return evaluate


def parsers() -> list[Callable[[Document], Iterable[Region]]]:
    """Every parser a document's blocks go through."""
    found: list[Callable[[Document], Iterable[Region]]] = [
        Recorded(PythonCodeBlockParser(), "python"),
        Recorded(CodeBlockParser("toml", evaluate_toml), "toml"),
    ]
    for language in SHELL_LANGUAGES:
        found.append(Recorded(CodeBlockParser(language, make_shell_evaluator(language)),
                              language))
    found.append(SkipParser())
    return found
