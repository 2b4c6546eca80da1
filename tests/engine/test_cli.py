"""The cnn-studio command: --help lists every subcommand."""

from __future__ import annotations

import pytest


def test_cli_help_lists_every_subcommand(capsys):
    from cnn_studio.cli import SUBCOMMANDS, main

    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in out
