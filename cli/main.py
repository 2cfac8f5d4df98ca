"""Entry point of the `bookvec` command: the app with every command group registered.

Each command module registers itself on import, and the root group imports a module only when
its command runs (cli/app.py's COMMANDS); none imports torch, onnxruntime or qdrant at module
level, so `bookvec search` starts fast.
"""

from __future__ import annotations

from bookvec.cli.app import app, handle_sigterm


def main() -> None:
    handle_sigterm()
    app()


if __name__ == "__main__":
    main()
