"""`python -m calosim`: the same as the `calosim` command."""

from calosim.cli.main import main

main()
