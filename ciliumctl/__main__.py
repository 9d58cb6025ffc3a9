"""Allow `python -m ciliumctl`."""

from ciliumctl.cli.app import main

main()
