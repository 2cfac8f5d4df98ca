"""Entry point of the `bookvec` command: the app with every command group registered.

Each command module registers itself on import, and the root group imports a module only when
its command runs (cli/app.py's COMMANDS); none imports torch, onnxruntime or qdrant at module
level, so `bookvec search` starts fast; a plain search command line does not build the app at all
(cli/searching.py's fast path).
"""

from __future__ import annotations

import sys


def main() -> None:
    from bookvec.signals import route_to_main_thread

    route_to_main_thread()  # SIGTERM handled as Ctrl-C is (cli/app.py's handle_sigterm)
    from bookvec.cli.searching import fast

    code = fast(sys.argv[1:])  # a plain `bookvec search` line, without building the app
    if code is not None:
        sys.exit(code)
    from bookvec.cli.app import app

    app()


def __getattr__(name: str):
    if name == "app":  # `from bookvec.cli.main import app`: the Typer app
        from bookvec.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
