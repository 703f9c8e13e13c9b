"""The processor's decode worker goes when the processor goes, even by SIGKILL."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys

_PROCESSOR = """
import signal
from chatchannels.processors.batch import decode_values
from chatchannels.processors.consumer import _decoder

if __name__ == "__main__":
    pool = _decoder()
    pool.submit(decode_values, [b"{}"]).result()
    worker = next(iter(pool._processes))
    print(worker, flush=True)
    signal.pause()  # until the test kills it
"""


def _gone(pid: int, within_s: float) -> bool:
    """Whether the process has exited within `within_s` (a pidfd turns readable then)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], within_s)[0])
    finally:
        os.close(fd)


def test_the_decode_worker_and_its_forkserver_exit_when_the_processor_is_killed(tmp_path) -> None:
    script = tmp_path / "processor.py"
    script.write_text(_PROCESSOR)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(proc.stdout.readline())
        with open(f"/proc/{worker}/stat") as f:
            forkserver = int(f.read().rsplit(")", 1)[1].split()[1])
        assert not _gone(worker, 0.2)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert _gone(worker, 5), "the decode worker outlived its processor"
        assert _gone(forkserver, 5), "the forkserver outlived its processor"
    finally:
        proc.kill()
        proc.wait()
