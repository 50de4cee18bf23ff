"""The command path: decide on the read model, append to the log, await the fold's verdict.

`contracts` is free of client libraries, for use cases to depend on; `executor` runs commands.
"""
