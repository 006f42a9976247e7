"""Artifacts through Django's storage API (`STORAGES["artifacts"]`: a directory by default, an
S3-compatible bucket as a setting). Every path here is storage-relative and chosen by the server;
`clean_path` refuses anything that could leave the storage root.

Layout:
  mlartifacts/<experiment_id>/…   what the MLflow artifact proxy stores (sources for Register)
  registry/versions/<version_id>/ the files of one model version
"""

import hashlib
import io
import posixpath
import time
from typing import NamedTuple

import blake3
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

from .errors import InvalidInput

CHUNK = 1024 * 1024
REGISTER_SOURCE_ROOTS = ("mlartifacts/",)


def artifact_storage():
    return storages["artifacts"]


def clean_path(path, *, what="path"):
    """A normalised storage-relative path: no `..`, no absolute path, no backslash or NUL, no
    empty or `.` segments. Raises InvalidInput otherwise."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidInput(f"The {what} must not be empty.")
    if "\\" in path or "\x00" in path or any(ord(c) < 32 for c in path):
        raise InvalidInput(f"The {what} {path[:200]!r} contains a forbidden character.")
    if path.startswith("/") or (len(path) > 1 and path[1] == ":"):
        raise InvalidInput(f"The {what} {path[:200]!r} must be relative to the artifact store.")
    parts = path.strip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidInput(f"The {what} {path[:200]!r} must not contain '..', '.' or empty segments.")
    return "/".join(parts)


def version_prefix(version_id):
    return f"registry/versions/{int(version_id)}"


def join(prefix, relpath):
    return f"{clean_path(prefix)}/{clean_path(relpath)}"


def list_files(prefix):
    """[(relative path, size)] of every file under `prefix`, sorted; [] when there is none."""
    storage = artifact_storage()
    prefix = clean_path(prefix)
    found = []

    def walk(directory, rel):
        try:
            dirs, files = storage.listdir(directory)
        except FileNotFoundError:
            return
        for name in files:
            found.append((f"{rel}{name}", storage.size(f"{directory}/{name}")))
        for name in dirs:
            walk(f"{directory}/{name}", f"{rel}{name}/")

    walk(prefix, "")
    return sorted(found)


def exists(path):
    return artifact_storage().exists(clean_path(path))


def open_file(path):
    return artifact_storage().open(clean_path(path), "rb")


class Sums(NamedTuple):
    """What one pass over a file found: its size, sha256 (the digest people see; None when the
    copy did not compute it) and BLAKE3 (hex digests)."""

    size: int
    sha256: str | None
    blake3: str

    def checked(self, recorded):
        """These sums as a copy of the `recorded` file records them, or None when they are not
        its bytes. By BLAKE3 where both have it (as collision-resistant as sha256, and ~5×
        faster: the bytes, so their sha256, are the recorded ones, which need not be computed
        again), otherwise by sha256."""
        if self.size != recorded.size:
            return None
        if recorded.blake3 and self.blake3:
            same = self.blake3 == recorded.blake3
        else:
            same = self.sha256 is not None and self.sha256 == recorded.sha256
        return self._replace(sha256=recorded.sha256) if same else None


def _hashers(sha256):
    return blake3.blake3(), (hashlib.sha256() if sha256 else None)


def _sums(size, b3, sha):
    return Sums(size, sha.hexdigest() if sha is not None else None, b3.hexdigest())


class _HashingReader(io.RawIOBase):
    """Reads a source file once, hashing and counting what passes through (and pacing it when a
    bandwidth limit is set), so a copy costs one read of the source."""

    def __init__(self, f, on_bytes, max_rate, sha256):
        self._f, self._on_bytes, self._max_rate = f, on_bytes, max_rate
        (self.b3, self.sha), self.size, self._started = _hashers(sha256), 0, time.monotonic()

    def readable(self):
        return True

    def seekable(self):
        return False

    def read(self, n=-1):
        data = self._f.read(CHUNK if n is None or n < 0 else min(n, CHUNK))
        if data:
            self.b3.update(data)
            if self.sha is not None:
                self.sha.update(data)
            self.size += len(data)
            if self._on_bytes:
                self._on_bytes(len(data))
            if self._max_rate:
                ahead = self.size / self._max_rate - (time.monotonic() - self._started)
                if ahead > 0:
                    time.sleep(ahead)
        return data


def copy_file(src, dst, *, on_bytes=None, max_rate=0, sha256=True):
    """Copy `src` to `dst` (both storage-relative), overwriting; returns the `Sums` of the source
    as read in the one pass that copies it (its sha256 only when `sha256`). The stored file's
    size is checked against it (OSError when it differs)."""
    storage = artifact_storage()
    src, dst = clean_path(src), clean_path(dst)
    if isinstance(storage, FileSystemStorage):
        return _copy_local(storage, src, dst, on_bytes, max_rate, sha256)
    with storage.open(src, "rb") as f:
        reader = _HashingReader(f, on_bytes, max_rate, sha256)
        if storage.exists(dst):
            storage.delete(dst)
        saved = storage.save(dst, File(reader, name=posixpath.basename(dst)))
    if saved != dst:  # a storage that renames instead of overwriting would break the layout
        storage.delete(saved)
        raise OSError(f"The artifact store wrote {saved!r} instead of {dst!r}.")
    stored = storage.size(dst)
    if stored != reader.size:
        raise OSError(f"The artifact store holds {stored} bytes of {dst!r}, {reader.size} were written.")
    return _sums(reader.size, reader.b3, reader.sha)


FAST_CHUNK = 8 * 1024 * 1024  # unthrottled local copies: few, large chunks


def _copy_range(fin, fout, offset, count):
    """Copy up to `count` bytes at `offset` in the kernel (no trip through Python); returns the
    number copied, fewer only at the end of the file."""
    import os

    done = 0
    while done < count:
        n = os.copy_file_range(fin, fout, count - done, offset + done, offset + done)
        if not n:
            break
        done += n
    return done


class _Helper:
    """A thread of its own for a file of more than one chunk; a file of one chunk (most of a
    model's files) is copied in this thread, where starting a thread would cost more."""

    def __init__(self, threaded):
        from concurrent.futures import Future, ThreadPoolExecutor

        self._pool, self._future = (ThreadPoolExecutor(1) if threaded else None), Future

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown()

    def submit(self, fn, *args):
        if self._pool is not None:
            return self._pool.submit(fn, *args)
        done = self._future()
        try:
            done.set_result(fn(*args))
        except BaseException as exc:
            done.set_exception(exc)
        return done


def _hash_and_copy(digest, view, src_fd, dst_fd, offset, count):
    """The helper's share of a chunk: `digest` (None: none) of `view`, then the kernel copy of
    the same bytes when `src_fd` is given (the number copied; None otherwise)."""
    if digest is not None:
        digest.update(view)
    return _copy_range(src_fd, dst_fd, offset, count) if src_fd is not None else None


def _copy_local(storage, src, dst, on_bytes, max_rate, sha256):
    """The filesystem path, one pass over the source in 8 MiB chunks (1 MiB when throttled, so
    the pacing stays smooth). This thread only hashes; meanwhile a helper thread has the kernel
    copy the chunk (copy_file_range, as `cp` does), hashing it by BLAKE3 too when this thread
    computes sha256, and another reads the next chunk into the other of two buffers, so neither
    the copy nor the read adds to the hashing, nor to each other. sha256 bounds a job that
    computes it (1.5-2 GB/s on one core with SHA-NI, while `cp` runs at 2.5-3 GB/s from the disk
    and ~4.5 GB/s from the page cache); BLAKE3 alone (a copy of files whose BLAKE3 was recorded)
    runs at ~9.5 GB/s, so such a copy goes at the speed of the kernel copy. Where
    copy_file_range is missing or refused (another filesystem, an old kernel) the hashed buffer
    itself is written."""
    import errno
    import os

    src_path, dst_path = storage.path(src), storage.path(dst)
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    if storage.directory_permissions_mode is not None:
        os.chmod(os.path.dirname(dst_path), storage.directory_permissions_mode)
    chunk = CHUNK if max_rate else FAST_CHUNK
    (b3, sha), size, started = _hashers(sha256), 0, time.monotonic()
    # This thread computes the slower hash (sha256 when asked for, BLAKE3 otherwise); BLAKE3
    # beside sha256 is the helper's, with the kernel copy of the same chunk.
    main, side = (sha, b3) if sha is not None else (b3, None)
    with open(src_path, "rb", buffering=0) as fin:
        known = os.fstat(fin.fileno()).st_size
        # A file smaller than CHUNK (most of a model's files, a few KB): a buffer of its size, not
        # 8 MiB (allocating and zeroing that cost 0.3 ms per file), and one read and one write
        # instead of the kernel copy, which would read the same bytes a second time for nothing.
        small = known < CHUNK
        if small:
            chunk = known + 1  # the first read sees the end when the file did not grow
        buffers = [memoryview(bytearray(chunk)), memoryview(bytearray(chunk))]
        kernel_copy = hasattr(os, "copy_file_range") and not small
        with open(dst_path, "wb", buffering=0) as fout, _Helper(known > chunk) as copier, \
                _Helper(known > chunk) as reader:
            src_fd, dst_fd = fin.fileno(), fout.fileno()
            n = os.preadv(src_fd, [buffers[0]], 0)
            while True:
                view, after = buffers[0][:n], size + n
                copying = copier.submit(_hash_and_copy, side, view, src_fd if kernel_copy else None, dst_fd, size,
                                        chunk) if n else None
                reading = reader.submit(os.preadv, src_fd, [buffers[-1]], after) if n else None
                main.update(view)
                copied = None
                if copying is not None:
                    try:
                        copied = copying.result()
                    except OSError as exc:
                        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                            raise
                        kernel_copy = False  # write what was hashed, from now on
                    if copied is not None and copied != n:
                        raise OSError(f"{src!r} changed while it was copied ({copied} bytes copied, {n} read).")
                if copied is None:
                    written = 0
                    while written < n:
                        written += os.pwrite(dst_fd, view[written:], size + written)
                if not n:
                    break
                size = after
                if on_bytes:
                    on_bytes(n)
                if max_rate:
                    ahead = size / max_rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
                n = reading.result()
                buffers.reverse()
            stored = os.fstat(dst_fd).st_size
    if storage.file_permissions_mode is not None:
        os.chmod(dst_path, storage.file_permissions_mode)
    if stored != size:
        raise OSError(f"{dst!r} holds {stored} bytes after writing {size}.")
    return _sums(size, b3, sha)


def delete_prefix(prefix):
    """Delete every file under `prefix` (and, on a filesystem, the emptied directories).
    Returns [(path, error message)] of the files that could not be deleted."""
    storage = artifact_storage()
    prefix = clean_path(prefix)
    failures = []
    for rel, _size in list_files(prefix):
        try:
            storage.delete(f"{prefix}/{rel}")
        except Exception as exc:  # every failure is reported by the caller, never swallowed
            failures.append((rel, f"{type(exc).__name__}: {exc}"))
    if not failures and isinstance(storage, FileSystemStorage):
        _remove_empty_dirs(storage, prefix)
    return failures


def _remove_empty_dirs(storage, prefix):
    import os

    root = storage.path(prefix)
    if not os.path.isdir(root):
        return
    for directory, _dirs, _files in sorted(os.walk(root), key=lambda t: -len(t[0])):
        try:
            os.rmdir(directory)
        except OSError:
            pass
