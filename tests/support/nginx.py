"""The project's nginx template (deploy/nginx) running for real: rendered as the nginx image
would render it, on a free local port, in front of a `serve` and a site folder."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.faults import stop_process, wait_until
from tests.support.paths import REPO
from tests.support.stack import free_port

TEMPLATE = REPO / "deploy" / "nginx" / "chatchannels.conf.template"


def render_template(serve_address: str) -> str:
    """What the nginx image's envsubst makes of the template."""
    return TEMPLATE.read_text().replace("${CHATCHANNELS_SEARCH}", serve_address)


def nginx_conf(root: Path, site: Path, serve_address: str, port: int) -> str:
    server = (
        render_template(serve_address)
        .replace("listen 80;", f"listen 127.0.0.1:{port};")
        .replace("root /srv/site;", f"root {site};")
        .replace("/var/log/nginx/access.log", str(root / "access.log"))
    )
    temps = " ".join(
        f"{kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return (
        f"user root; daemon off; master_process on; pid {root / 'nginx.pid'};\n"
        f"error_log {root / 'error.log'} warn;\n"
        "events { worker_connections 64; }\n"
        f"http {{ include /etc/nginx/mime.types; {temps}\n"
        f"uwsgi_temp_path {root / 'uwsgi'}; scgi_temp_path {root / 'scgi'};\n"
        f"{server}\n}}\n"
    )


def check_config(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["nginx", "-t", "-c", str(conf), "-p", str(conf.parent)],
        capture_output=True,
        text=True,
        timeout=30,
    )


@contextmanager
def running_nginx(root: Path, site: Path, serve_address: str) -> Iterator[int]:
    """nginx on a free port; stopped (and its log kept in `root`) however the test ends."""
    assert shutil.which("nginx"), "nginx is missing: make setup installs nginx-light"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(nginx_conf(root, site, serve_address, port))
    checked = check_config(conf)
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(root)])
    try:
        try:
            wait_until(f"nginx to listen on port {port}", lambda: _accepts(port), 15, proc)
        except AssertionError as exc:
            log = root / "error.log"
            raise AssertionError(
                f"{exc}; {log}: {log.read_text() if log.exists() else '-'}"
            ) from exc
        yield port
    finally:
        stop_process(proc, 10)


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True
