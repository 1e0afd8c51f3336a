"""``kvmtui serve [--port P] [--host ADDR]``: the explorer in a web browser (textual-serve), for a
classroom projector. Binds 127.0.0.1 unless told otherwise, and says so on start; a port that is
in use is one line and exit 2. Each browser tab runs its own ``kvmtui`` explorer process."""

from __future__ import annotations

import argparse
import errno
import shlex
import socket
import sys


def explorer_command(args: argparse.Namespace) -> str:
    """The command each browser session runs: this interpreter's ``kvmtui``, same host flags."""
    argv = [sys.executable, "-m", "kvmtui"]
    if getattr(args, "connect", None):
        argv += ["-c", str(args.connect)]
    if getattr(args, "replay", None):
        argv += ["--replay", str(args.replay)]
    if getattr(args, "theme", None):
        argv += ["--theme", str(args.theme)]
    if getattr(args, "lang", None):
        argv += ["--lang", str(args.lang)]
    return shlex.join(argv)


def port_free(host: str, port: int) -> str | None:
    """None when ``host:port`` can be bound, else why not (one line)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use (pick another with --port)"
            return f"cannot bind {host}:{port}: {exc.strerror or exc}"
    return None


def run_serve(args: argparse.Namespace) -> int:
    host = str(getattr(args, "bind", None) or "127.0.0.1")
    port = int(getattr(args, "port", 8000))
    why = port_free(host, port)
    if why is not None:
        print(f"kvmtui serve: {why}", file=sys.stderr)
        return 2
    from textual_serve.server import Server

    where = "this machine only" if host in ("127.0.0.1", "::1", "localhost") else "the network"
    shown = f"[{host}]" if ":" in host else host
    print(
        f"kvmtui serve: the explorer on http://{shown}:{port}/ (bound to {host}: {where}; "
        "Ctrl+C stops)",
        flush=True,
    )
    server = Server(explorer_command(args), host=host, port=port, title="kvmtui")
    server.serve()
    return 0
