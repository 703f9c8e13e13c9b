"""The processor's decode worker goes when the processor goes, even by SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

_PROCESSOR = """
import sys, time
from chatchannels.processors.batch import decode_values
from chatchannels.processors.consumer import _decoder

if __name__ == "__main__":
    pool = _decoder()
    pool.submit(decode_values, [b"{}"]).result()
    worker = next(iter(pool._processes))
    print(worker, flush=True)
    time.sleep(60)
"""


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


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
