"""Atomic file writes: a reader (or a crash) never sees half a file.

A file is written to a temporary name in the same directory, flushed to disk, and renamed over the
target (``os.replace``, atomic on POSIX file systems). The data layer and ``stevq.runio`` write every
file this way.
"""

import os
import pathlib
import stat
import tempfile


def _umask():
    """The process's umask, read without changing it where Linux allows (``/proc/self/status``), so
    that no other thread ever sees a changed umask."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class NotARegularFile(ValueError):
    """A result would replace something that is not a regular file (a device, a FIFO, a socket, a
    directory): stevq refuses rather than rename over it."""


def _regular_target(path):
    """``path`` itself, or the file a symbolic link at ``path`` points to (a write goes through the
    link); raises NotARegularFile when the target exists and is not a regular file."""
    target = pathlib.Path(os.path.realpath(path)) if os.path.islink(path) else pathlib.Path(path)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        kind = (
            "a directory"
            if stat.S_ISDIR(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise NotARegularFile(
            f"{path}: is {kind}; stevq writes its results only to regular files (a file is "
            "written to a temporary name and renamed over the old one)"
        )
    return target


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file and an atomic rename. The file gets the
    mode any new file gets (0666 less the umask: 0644 under umask 022), not the temporary file's
    0600. Only a regular file is ever replaced (``NotARegularFile`` otherwise, e.g. for /dev/null);
    a symbolic link is written through, to the file it names."""
    path = _regular_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(handle, 0o666 & ~_umask())
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return path
