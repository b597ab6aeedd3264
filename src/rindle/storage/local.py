"""The built-in local-filesystem storage backend (the embedded default)."""

from __future__ import annotations

import datetime as dt
import mimetypes
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from rindle.errors import ConfigError, ObjectNotFound, StorageError
from rindle.signing import SignedClaims, sign
from rindle.storage.base import BackendContext, Capability, ObjectInfo, PresignedRequest, Storage
from rindle.storage.blocks import BLOCK, read_blocks

__all__ = ["LocalStorage", "ObjectExists", "file_identity"]

_TMP_PREFIX = ".rindle-tmp-"
DEFAULT_BASE_URL = "http://127.0.0.1:8765"


class ObjectExists(StorageError):
    """A create-only write found an object already at its key."""

    code = "storage_object_exists"

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"an object already exists at {key!r}; it is never overwritten")


def file_identity(st: os.stat_result) -> str:
    """The identity of a stored file: inode, size and mtime (ns), in hex.

    A replaced file (a new inode from an atomic rename) or one rewritten in place (a new
    mtime or size) gets a new identity; rindle pins it at verify (``Asset.original_etag``).
    """
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


class LocalStorage(Storage):
    """Objects as files under ``root``; URLs point at rindle's WSGI app (``rindle serve``).

    Private URLs carry an HMAC token over method, key, expiry and disposition; presigned
    PUTs carry a size cap. Keys can never escape ``root``.
    """

    backend_name = "local"
    setting_descriptions = {
        "root": "the folder objects are stored in; a relative path starts at the config "
                "file's folder",
        "base_url": "the address where `rindle serve` or the rindle.delivery.wsgi_app "
                    "mount answers, e.g. http://127.0.0.1:8765",
    }
    capabilities = frozenset({
        Capability.LOCAL,
        Capability.PRESIGNED_PUT,
        Capability.APPEND_UPLOAD,
        Capability.SIGNED_URL,
        Capability.HEAD,
        Capability.LIST,
    })

    def __init__(self, *, name: str, root: str | os.PathLike[str], secret_key: str,
                 base_url: str = DEFAULT_BASE_URL, url_prefix: str = "/media") -> None:
        super().__init__(name=name)
        if not secret_key:
            raise ConfigError("local storage needs the app secret_key to sign URLs")
        self.root = Path(root).expanduser().resolve()
        self._root_str = str(self.root)
        self._prefix = os.path.join(self._root_str, "")  # ends with exactly one separator
        self.base_url = base_url.rstrip("/")
        # "/media" -> "/media"; "/" or "" -> "" so URLs are "{base_url}/{key}", never "//{key}"
        self.url_prefix = ("/" + url_prefix.strip("/")).rstrip("/")
        self._secret = secret_key

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any], context: BackendContext
                      ) -> Storage:
        """Build from ``[storages.NAME]``; a relative ``root`` is relative to the config file,
        and a missing one is ``rindle-media``.

        An unknown setting, and a ``root`` or ``base_url`` set to an empty string, is a
        :class:`ConfigError` naming the table and the key.
        """
        opts = dict(settings)
        unknown = set(opts) - {"root", "base_url", "url_prefix"}
        if unknown:
            raise ConfigError(
                f"storage {name!r}: unknown setting(s) {sorted(unknown)} for the local backend; "
                "allowed: root, base_url, url_prefix"
            )
        opts.setdefault("root", "rindle-media")
        cls.check_settings(name, opts, supplied=("secret_key",))
        if opts.get("base_url") == "":
            raise ConfigError(f"[storages.{name}] needs 'base_url' "
                              f"({cls.setting_descriptions['base_url']}), not an empty string")
        root = Path(opts.pop("root")).expanduser()
        if not root.is_absolute():
            root = context.base_dir / root
        return cls(name=name, root=root, secret_key=context.secret_key, **opts)

    def __repr__(self) -> str:
        return f"<LocalStorage {self.name} root={self.root}>"

    # --- paths ---------------------------------------------------------------------------

    def _fs_path(self, key: str) -> str:
        wrapped = f"/{key}/"  # an empty, absolute or trailing-slash key shows up as "//"
        if ("\x00" in key or "\\" in key or "//" in wrapped or "/./" in wrapped
                or "/../" in wrapped):
            raise StorageError(f"invalid storage key {key!r}")
        return self._prefix + key  # lexically inside root

    def path_for(self, key: str) -> Path:
        """The file that holds ``key``; refuses keys that would leave ``root``."""
        return Path(self._fs_path(key))

    def fs_path(self, key: str) -> str:
        """:meth:`path_for` as a string (the same checks, no :class:`~pathlib.Path`)."""
        return self._fs_path(key)

    # --- core operations -----------------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        try:
            st = os.stat(self._fs_path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(f"cannot stat {key!r}: {exc}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return self._info(key, st)

    def exists_many(self, keys: Sequence[str]) -> Sequence[bool | Exception]:
        out: list[bool | Exception] = []
        append, fs_path, is_reg = out.append, self._fs_path, stat.S_ISREG
        for key in keys:
            try:
                append(is_reg(os.stat(fs_path(key)).st_mode))
            except (FileNotFoundError, NotADirectoryError):
                append(False)
            except Exception as exc:  # an invalid key, a permission error
                append(exc)
        return out

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=mimetypes.guess_type(key)[0],
            etag=file_identity(st),
            last_modified=dt.datetime.fromtimestamp(st.st_mtime, dt.UTC),
        )

    def delete(self, key: str) -> None:
        try:
            os.unlink(self._fs_path(key))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(f"cannot delete {key!r}: {exc}") from exc

    def put(self, key: str, source: Path | BinaryIO, *, content_type: str | None = None
            ) -> ObjectInfo:
        return self._write(key, source, create_only=False)

    def put_new(self, key: str, source: Path | BinaryIO) -> ObjectInfo:
        """Store ``source`` at ``key`` only if nothing is there yet (create-only).

        The object appears atomically and complete, or not at all; raises
        :class:`ObjectExists` when ``key`` already holds an object (even one written
        concurrently), and :class:`StorageError` for any other failure.
        """
        return self._write(key, source, create_only=True)

    def _write(self, key: str, source: Path | BinaryIO, *, create_only: bool) -> ObjectInfo:
        path = self.path_for(key)
        if not path.parent.resolve().is_relative_to(self.root) and path.parent.exists():
            raise StorageError(f"invalid storage key {key!r}: it leaves the root via a link")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    if isinstance(source, (str, os.PathLike)):
                        with open(source, "rb") as src:
                            shutil.copyfileobj(src, out, BLOCK)
                    else:
                        for block in read_blocks(source):
                            out.write(block)
                if create_only:
                    try:
                        os.link(tmp, path)  # atomic, and fails if the name exists
                    except FileExistsError:
                        raise ObjectExists(key) from None
                    finally:
                        Path(tmp).unlink(missing_ok=True)
                else:
                    os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return self._info(key, path.stat())
        except OSError as exc:
            raise StorageError(f"cannot store {key!r}: {exc}") from exc

    def download(self, key: str, dest: Path) -> Path:
        path = self.path_for(key)
        try:
            shutil.copyfile(path, dest)
        except FileNotFoundError:
            if not path.exists():
                raise ObjectNotFound(key) from None
            raise StorageError(f"cannot write {dest}") from None
        except OSError as exc:
            raise StorageError(f"cannot download {key!r}: {exc}") from exc
        return dest

    def url(self, key: str, *, expires_in: int | None = None, disposition: str | None = None,
            content_type: str | None = None) -> str:
        expires = 0 if expires_in is None else int(time.time()) + int(expires_in)
        return self._signed_get(key, expires, disposition, content_type)

    def url_until(self, key: str, *, expires_at: int, now: int,
                  disposition: str | None = None, content_type: str | None = None) -> str:
        """A signed GET URL whose token expires at ``expires_at`` exactly: the same
        arguments always give the same URL (the token holds no signing time)."""
        return self._signed_get(key, int(expires_at), disposition, content_type)

    def _signed_get(self, key: str, expires: int, disposition: str | None,
                    content_type: str | None) -> str:
        self.path_for(key)  # validates the key
        token = sign(self._secret, SignedClaims("GET", key, expires, disposition=disposition,
                                                content_type=content_type))
        return f"{self.base_url}{self.url_prefix}/{quote(key)}?token={token}"

    def _inside_root(self, path: str) -> bool:
        """Whether ``path``, with every symlink resolved, is ``root`` or under it."""
        real = os.path.realpath(path)
        return real == self._root_str or real.startswith(self._prefix)

    def _list_base(self, prefix: str) -> str:
        """The folder that holds every key starting with ``prefix``, confined like keys.

        ``prefix`` may end in a partial name or ``/``; any other empty, ``.`` or ``..``
        segment, a leading ``/``, a backslash or a NUL raises :class:`StorageError`, and so
        does a folder that resolves (through symlinks) outside ``root``.
        """
        segments = prefix.split("/")
        if ("\x00" in prefix or "\\" in prefix
                or any(s in ("", ".", "..") for s in segments[:-1])
                or segments[-1] in (".", "..")):
            raise StorageError(f"invalid storage prefix {prefix!r}")
        head = prefix.rpartition("/")[0]
        base = self._prefix + head if head else self._root_str
        if not self._inside_root(base):
            raise StorageError(f"invalid storage prefix {prefix!r}: it leaves the root via a "
                               "link")
        return base

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every regular file under ``root`` whose key starts with ``prefix``, streamed.

        ``prefix`` is confined as keys are (see :meth:`_list_base`; a bad one raises
        :class:`StorageError`). The walk never enters a symlinked folder, and skips a
        symlinked file that resolves outside ``root``; temp files of writes in progress
        are skipped too.
        """
        base = self._list_base(prefix)
        if not os.path.isdir(base):
            return
        for dirpath, dirnames, filenames in os.walk(base):  # followlinks=False
            dirnames.sort()
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for fname in sorted(filenames):
                if fname.startswith(_TMP_PREFIX):
                    continue
                key = fname if rel_dir == "." else f"{rel_dir}/{fname}"
                if key.startswith(prefix):
                    full = os.path.join(dirpath, fname)
                    try:
                        st = os.lstat(full)
                        if stat.S_ISLNK(st.st_mode):
                            if not self._inside_root(full):
                                continue
                            st = os.stat(full)
                    except (FileNotFoundError, NotADirectoryError):
                        continue
                    if stat.S_ISREG(st.st_mode):
                        yield self._info(key, st)

    def presign_put(self, key: str, *, expires_in: int, content_type: str | None = None,
                    max_bytes: int | None = None) -> PresignedRequest:
        self.path_for(key)
        expires = int(time.time()) + int(expires_in)
        token = sign(self._secret, SignedClaims("PUT", key, expires, max_bytes=max_bytes,
                                                content_type=content_type))
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedRequest(
            url=f"{self.base_url}{self.url_prefix}/{quote(key)}?token={token}",
            method="PUT",
            headers=headers,
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
        )

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": str(self.root), "base_url": self.base_url}
