"""``lit-i2i data preview``: a labelled grid of a built-in domain's samples; bad input is one line."""

import pytest
from torchvision.io import read_image

from lit_i2i.errors import UserError
from lit_i2i.preview import preview_main


def test_preview_writes_a_grid_by_label(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert preview_main(["preview", "--domain", "colored-digits", "--n", "20", "--out", str(out)]) == 0
    img = read_image(str(out))
    assert img.shape[0] == 3 and img.shape[2] > img.shape[1]  # 10 label columns, 2 rows
    assert "columns 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in capsys.readouterr().out


def test_preview_through_the_cli(tmp_path, capsys):
    from lit_i2i.cli import main

    assert main(["data", "preview", "--domain", "digits", "--n", "10", "--out", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").is_file()
    assert main(["data", "preview", "--domain", "letters"]) == 2
    assert "unknown domain" in capsys.readouterr().err


def test_preview_bad_domain_and_folder(tmp_path):
    with pytest.raises(UserError, match="unknown domain"):
        preview_main(["preview", "--domain", "letters"])
    with pytest.raises(UserError, match="is a folder"):
        preview_main(["preview", "--domain", "digits", "--out", str(tmp_path)])
