"""``python -m medsyn_cli`` (and ``torchrun -m medsyn_cli``) runs the CLI."""

from medsyn_cli.cli import main

if __name__ == "__main__":
    main()
