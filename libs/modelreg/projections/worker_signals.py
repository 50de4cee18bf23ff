"""Imported first by the replay workers' fork server (replay._worker_context), and by nothing
else: the fork server, and every worker forked from it, ignore SIGINT.

Ctrl-C in a terminal reaches the whole process group. The process that started the workers
handles it: it stops them (replay.fold_in_workers) and exits as an interrupted command does,
where each worker, and the fork server while it was still importing, printed a
KeyboardInterrupt traceback of its own.
"""

import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
