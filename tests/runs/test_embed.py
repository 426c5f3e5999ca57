"""``lpm embed`` as a run (``lpm.runs.embed``): three h5ad files and the figure, each whole;
existing files refused before any work unless ``--overwrite``; other models and bad options
refused in one line with nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lpm.cli import app
from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.runs.embed import embedding_paths, write_embeddings
from tests.conftest import SMALL_LPM
from tests.tasks.test_embeddings import COMPOUND, _rows

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")
ad = pytest.importorskip("anndata")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def fitted() -> Any:
    """A two-member ``lpm_fast`` ensemble (members differ: seeds 0 and 1)."""
    model = get_model("lpm_fast", **SMALL_LPM, max_epochs=3, val_fraction=0, ensemble=2)
    return model.fit(_rows())


@pytest.fixture(scope="module")
def saved(fitted: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fitted.save(tmp_path_factory.mktemp("model") / "lpm_fast")


def test_lpm_embed_writes_three_h5ad_files_and_the_figure(saved: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lpm.cli import app

    notes = tmp_path / "moa.tsv"
    notes.write_text("compound\tmoa\ntrametinib\tMEK inhibitor\n")
    out, png = tmp_path / "emb" / "F.h5ad", tmp_path / "emb" / "F.png"
    args = ["embed", "--model", str(saved), "--out", str(out), "--figure", str(png)]
    args += ["--annotations", str(notes), "--layout", "tsne", "--member", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "member 1 of 2" in result.output and "PCA + t-SNE" in result.output
    assert sorted(p.name for p in out.parent.iterdir()) == [
        "F.contexts.h5ad",
        "F.h5ad",
        "F.png",
        "F.readouts.h5ad",
    ], "no temporary files are left"
    perts = ad.read_h5ad(out)
    assert perts.n_obs == 10 and perts.obs.loc[COMPOUND, "mechanism"] == "MEK inhibitor"
    assert perts.obsm["X_tsne"].shape == (10, 2), "the figure's layout is kept for scanpy"
    info = perts.uns["lpm_embedding"]
    assert (info["model_path"], info["member"], info["annotations"]) == (str(saved), 1, str(notes))
    assert perts.uns["lpm_layout"]["seed"] == 0
    assert ad.read_h5ad(out.parent / "F.contexts.h5ad").n_obs == 2
    assert ad.read_h5ad(out.parent / "F.readouts.h5ad").n_obs == 6
    assert png.read_bytes().startswith(PNG_MAGIC)


def test_write_embeddings_refuses_other_suffixes_and_writes_nothing_on_a_bad_layout(
    fitted: Any, tmp_path: Path
) -> None:
    with pytest.raises(LpmInputError, match=r"must end in \.h5ad"):
        write_embeddings(fitted, tmp_path / "F.parquet")
    with pytest.raises(LpmInputError, match="unknown layout method 'pca'"):
        write_embeddings(fitted, tmp_path / "F.h5ad", figure=tmp_path / "F.png", method="pca")
    assert list(tmp_path.iterdir()) == []


def test_a_model_without_embeddings_is_a_clear_error(tmp_path: Path) -> None:
    linear = get_model("linear").fit(_rows())
    folder = linear.save(tmp_path / "linear")
    with pytest.raises(LpmInputError, match="has no learned embeddings"):
        write_embeddings(folder, tmp_path / "F.h5ad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["linear"], "nothing written"
    # the command line says it in one line, exit code 2, no traceback
    proc = subprocess.run(
        [sys.executable, "-m", "lpm.cli", "embed", "--model", str(folder), "--out", "x.h5ad"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "has no learned embeddings" in errors[0]


def test_existing_files_are_refused_before_any_work_unless_overwrite(
    saved: Path, tmp_path: Path
) -> None:
    out, png = tmp_path / "F.h5ad", tmp_path / "F.png"
    runner = CliRunner()
    args = ["embed", "--model", str(saved), "--out", str(out), "--layout", "tsne"]
    assert runner.invoke(app, args).exit_code == 0
    before = {p: p.read_bytes() for p in embedding_paths(out)}
    for existing in embedding_paths(out):
        others = [p for p in embedding_paths(out) if p != existing]
        for p in others:
            p.rename(p.with_suffix(".moved"))
        result = runner.invoke(app, args)
        assert isinstance(result.exception, LpmInputError), existing
        assert f"{existing}: already exists (pass --overwrite" in str(result.exception)
        assert not any(p.exists() for p in others), "nothing written beside the refused file"
        for p in others:
            p.with_suffix(".moved").rename(p)
    png.write_bytes(b"mine")
    refused = runner.invoke(
        app, [*args[:-2], "--out", str(tmp_path / "G.h5ad"), "--figure", str(png)]
    )
    assert f"{png}: already exists" in str(refused.exception)
    assert png.read_bytes() == b"mine" and not (tmp_path / "G.h5ad").exists()
    # checked before the model is read: a missing model is not what the user hears first
    with pytest.raises(LpmInputError, match="already exists"):
        write_embeddings(tmp_path / "no_model", out)
    assert {p: p.read_bytes() for p in embedding_paths(out)} == before
    replaced = runner.invoke(app, [*args, "--figure", str(png), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert png.read_bytes().startswith(PNG_MAGIC)
