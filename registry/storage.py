"""Artifacts through Django's storage API (`STORAGES["artifacts"]`: a directory by default, an
S3-compatible bucket as a setting). Every path here is storage-relative and chosen by the server;
`clean_path` refuses anything that could leave the storage root.

Layout:
  mlartifacts/<experiment_id>/…   what the MLflow artifact proxy stores (sources for Register)
  registry/versions/<version_id>/ the files of one model version
"""

import functools
import hashlib
import io
import posixpath
import queue
import re
import threading
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


# A backslash or a control character (NUL included): refused anywhere in a path. One search, not
# a test per character in Python (a small model's register job cleans 18 paths: 3.4 µs each for
# 88 characters, 0.4 with the search).
_FORBIDDEN = re.compile(r"[\\\x00-\x1f]")


def clean_path(path, *, what="path"):
    """A normalised storage-relative path: no `..`, no absolute path, no backslash or NUL, no
    empty or `.` segments. Raises InvalidInput otherwise."""
    if not isinstance(path, str) or not path.strip("/"):
        raise InvalidInput(f"The {what} must not be empty.")
    if _FORBIDDEN.search(path):
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
    """(BLAKE3, sha256 or None). Without sha256 (a copy job), BLAKE3 is the job's only check;
    where one core hashes clearly slower than the kernel copies (`_blake3_threads`) it splits
    each piece across both cores (its own threads; a half no other core takes is hashed by the
    caller, so a busy machine gets one core's speed): 1 GiB copied in 0.88-0.89 -> 0.79-0.83 s
    where BLAKE3 does 1.5 GB/s on one core (`cp` 0.58-0.59). Where one core keeps up, a second
    thread only takes the core the kernel copy runs on: with 4.7 GB/s on one core, 1 GiB warm
    0.310 -> 0.287 s with one thread (`cp` 0.278), from a cold page cache 0.778 -> 0.627 s (`cp`
    0.549); with 2.75 GB/s, warm 0.47-0.54 -> 0.41-0.45 s (`cp` 0.37-0.39), its CPU 0.84-0.96 ->
    0.79-0.86 s.
    With sha256 (a register job), sha256 bounds the job and BLAKE3 runs on one thread beside the
    kernel copy (`_copy_local`)."""
    if sha256:
        return blake3.blake3(), hashlib.sha256()
    return blake3.blake3(max_threads=_blake3_threads()), None


# One core's BLAKE3 at least this fast (bytes/s) keeps up with a kernel copy from the page cache
# (2.5-4 GB/s on the VMs measured) closely enough that one thread is best: a second one gains
# little where the hash is a little slower than the copy, and loses more where it is not (it
# takes the kernel copy's core, and splitting each piece costs CPU of its own: ~0.06-0.1 s for
# 1 GiB above). Only a clearly slower core (1.5 GB/s above) gets both.
FAST_BLAKE3 = 2e9


@functools.cache
def _blake3_threads():
    """BLAKE3's threads for a copy job: one where a core hashes at least `FAST_BLAKE3`, else as
    many as the cores (`blake3.AUTO`). Measured once per process (the best of three hashes of
    4 MiB: a few milliseconds) on bytes of its own pages: a zeroed buffer's pages are all the
    kernel's one page of zeros, always in the CPU's cache, and hashed faster than a file's bytes
    (3.2-3.4 GB/s against 2.75 on one VM, whose copies read at 2.2-2.5 GB/s from the page cache):
    there, a process that measured over the threshold on one run and under it on the next chose
    its threads by chance."""
    data = bytes(range(256)) * (4 << 12)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        blake3.blake3(data).digest()
        best = min(best, time.perf_counter() - started)
    return 1 if len(data) / best >= FAST_BLAKE3 else blake3.blake3.AUTO


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


# How far (in chunks) the kernel copy may run ahead of the hash that reads it back: far enough
# that neither waits for the other, near enough that a throttled copy stays paced.
AHEAD = 4


def _copy_kernel(src_fd, dst_fd, chunk, main, side, step):
    """Copy in the kernel (copy_file_range, as `cp` does), chunk after chunk in a helper thread,
    while this thread hashes the copy itself: it reads back what the helper has copied so far
    (from the page cache, where the copy has just put it), at most `AHEAD` chunks behind. So
    the sums are those of the bytes written, and neither side waits for the other: the copy
    runs at the disk's pace, the hash at the CPU's. (Before, both read the same chunk of the
    source at the same time, each chunk announced ahead with WILLNEED: on a VM whose BLAKE3
    does 3.4 GB/s on one core, 1 GiB from a cold source took 0.67-1.20 s against `cp`'s
    0.29-0.43, the disk's reads and the hash taking turns; now 0.46-0.52 s. Warm: 0.40-0.47 ->
    0.40-0.44 s.) With a second digest (`side`), the helper hashes each chunk it copied too,
    read back the same way. True when the whole file was copied; False when the kernel refused
    the first chunk (another filesystem, an old kernel): nothing was copied or hashed, the file
    is for `_copy_buffered`. A source whose size is not what was copied when the copy ends
    (cut or grown meanwhile) fails it."""
    import errno
    import os

    mine = memoryview(bytearray(CHUNK))
    its = memoryview(bytearray(CHUNK)) if side is not None else None  # the helper's, for `side`

    def copy(offset):
        """The helper's share: the chunk at `offset` copied, then its side hash; its size."""
        n = _copy_range(src_fd, dst_fd, offset, chunk)
        if side is not None and n:
            _hash_range(dst_fd, offset, n, side, its)
        return n

    try:
        n = copy(0)  # here: a refusal comes before anything was hashed
    except OSError as exc:
        if exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            return False
        raise
    # The helper's sizes (or its failure) for this thread, in order; `room`: the chunks it may
    # copy beyond the one being hashed.
    copied, room, stop = queue.SimpleQueue(), threading.Semaphore(AHEAD - 1), threading.Event()

    def run():
        offset = n
        try:
            while room.acquire() and not stop.is_set():
                got = copy(offset)
                copied.put(got)
                offset += got
                if got < chunk:
                    return
        except BaseException as failure:  # raised again in the job's thread
            copied.put(failure)

    # No thread for a file the first chunk held whole (starting one costs ~0.1 ms).
    helper = None if n < chunk else threading.Thread(target=run, name="kernel-copy", daemon=True)
    if helper is not None:
        helper.start()
    hashed = 0
    try:
        while True:
            hashed += _hash_range(dst_fd, hashed, n, main, mine)
            step(n)
            room.release()
            if n < chunk:
                break
            n = copied.get()
            if isinstance(n, BaseException):
                raise n
    finally:
        stop.set()
        room.release()  # a helper waiting for room sees `stop`
        if helper is not None:
            helper.join()
    size = os.fstat(src_fd).st_size
    if size != hashed:
        raise OSError(f"The source changed while it was copied ({hashed} bytes copied, {size} now).")
    return True


def _hash_range(fd, offset, count, digest, buffer):
    """Feed `digest` the `count` bytes of `fd` at `offset` (the copy, read back), read into
    `buffer` a piece at a time; the number read."""
    import os

    start, end = offset, offset + count
    while offset < end:
        n = os.preadv(fd, [buffer[: min(len(buffer), end - offset)]], offset)
        if not n:
            raise OSError(f"The copy ended {end - offset} bytes short of what was copied into it.")
        digest.update(buffer[:n])
        offset += n
    return offset - start


def _copy_buffered(src_fd, dst_fd, offset, chunk, main, side, step):
    """Copy from `offset` to the end through one buffer of `chunk` bytes: read, hash, write."""
    import os

    buffer = memoryview(bytearray(chunk))
    while n := os.preadv(src_fd, [buffer], offset):
        view = buffer[:n]
        main.update(view)
        if side is not None:
            side.update(view)
        written = 0
        while written < n:
            written += os.pwrite(dst_fd, view[written:], offset + written)
        offset += n
        step(n)


def _copy_local(storage, src, dst, on_bytes, max_rate, sha256):
    """The filesystem path, one pass in 8 MiB chunks (1 MiB when throttled, so the pacing stays
    smooth). A file of at least 1 MiB is copied by the kernel (`_copy_kernel`) while the copy
    is hashed as it lands; a smaller one (most of a model's files), or where the kernel copy is
    missing or refused (another filesystem, an old kernel), goes through one buffer
    (`_copy_buffered`), hashed as it is written. Either way the sums are the written bytes'."""
    import os

    src_path, dst_path = storage.path(src), storage.path(dst)
    os.makedirs(os.path.dirname(dst_path), exist_ok=True)
    if storage.directory_permissions_mode is not None:
        os.chmod(os.path.dirname(dst_path), storage.directory_permissions_mode)
    chunk = CHUNK if max_rate else FAST_CHUNK
    (b3, sha), size, started = _hashers(sha256), 0, time.monotonic()
    # With sha256 (~2 GB/s on one core with SHA-NI, slower than the disk) this thread computes
    # it, and BLAKE3 (1.5-10 GB/s by CPU) is the kernel copy's thread's; without it, BLAKE3 is
    # this thread's (on both cores where one is slow: `_hashers`) and the kernel copy the other's.
    main, side = (sha, b3) if sha is not None else (b3, None)

    def step(n):
        """`n` more bytes copied and hashed: progress, and the pacing of a throttled copy."""
        nonlocal size
        size += n
        if on_bytes:
            on_bytes(n)
        if max_rate:
            ahead = size / max_rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    with open(src_path, "rb", buffering=0) as fin, open(dst_path, "w+b", buffering=0) as fout:
        src_fd, dst_fd = fin.fileno(), fout.fileno()
        known = os.fstat(src_fd).st_size
        kernel = known >= CHUNK and hasattr(os, "copy_file_range")
        if not (kernel and _copy_kernel(src_fd, dst_fd, chunk, main, side, step)):
            # A file smaller than CHUNK: a buffer of its size, not 8 MiB (allocating and zeroing
            # that cost 0.3 ms per file), and one read, not a kernel copy and a second read.
            _copy_buffered(src_fd, dst_fd, size, chunk if known >= CHUNK else known + 1, main, side, step)
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
