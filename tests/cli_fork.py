"""A process that has imported the CLI once and forks a child for every invocation
(tests.helpers.run_cli talks to it).

Each `python -m modelreg.cli.main` spent over a second of CPU importing grpc, the generated
stubs, typer and rich before doing anything, and the suite runs the CLI about 150 times. A
forked child keeps what a test checks of a subprocess: its own environment, working
directory, stdout and stderr (files, never a terminal), and exit code; only the import is
shared, and it reads no environment (nothing of the CLI reads os.environ at import time, and
rich looks COLUMNS up when it prints). Forking is safe here: the import starts no thread and
makes no gRPC channel, which this process checks before it serves.

Protocol, one JSON line each way: {args, env, cwd, stdout, stderr} in; {"pid": n} once the
child runs, then {"returncode": n} when it has exited.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

PROG_NAME = "python -m modelreg.cli.main"
"""What click calls the program in usage lines when run as `python -m modelreg.cli.main`."""


def _exit_code(code: object) -> int:
    """The exit status Python gives a SystemExit carrying `code`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _child(request: dict[str, Any]) -> None:
    """In the forked child: become the invocation, run it, and exit with its status."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        stdin = os.open(os.devnull, os.O_RDONLY)
        os.dup2(stdin, 0)
        os.close(stdin)
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - the child's stdin until it exits
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(target, fd)
            os.close(target)
        from modelreg.cli import main

        sys.argv = [main.__file__, *request["args"]]
        try:
            main.app(args=request["args"], prog_name=PROG_NAME)
            code = 0
        except SystemExit as exit_:
            code = _exit_code(exit_.code)
        except BaseException:
            sys.excepthook(*sys.exc_info())  # what the interpreter does with an uncaught exception
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: S110 - a closed stream has nothing more to write
                pass
        os._exit(code)


def serve() -> None:
    import modelreg.cli.main  # noqa: F401 - the import every child shares

    if threading.active_count() != 1:
        raise RuntimeError("importing the CLI started a thread: forking it would not be safe")
    # Requests on stdin, answers on a duplicate of stdout; the children get fds 0-2 of their own.
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    for line in sys.stdin.buffer:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(answers.fileno())
            _child(request)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()
        _, status = os.waitpid(pid, 0)
        answers.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        answers.flush()


if __name__ == "__main__":
    serve()
