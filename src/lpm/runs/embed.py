"""``lpm embed``: a trained LPM's embeddings as three AnnData files and an optional figure.

``F.h5ad`` holds the perturbations (the file most analyses open), ``F.contexts.h5ad`` the
contexts and ``F.readouts.h5ad`` the readouts: the kinds have different ``obs`` columns and are
different things, so each is its own AnnData rather than one table with a ``kind`` column.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lpm._utils.atomic import atomic_file, check_output
from lpm.errors import LpmInputError
from lpm.pl.embedding import plot_embedding_umap
from lpm.pl.save import save_png
from lpm.priors.mechanisms import load_mechanism_annotations
from lpm.tasks.embeddings import (
    UNS_KEY,
    EmbeddableModel,
    embeddable,
    embedding_anndata,
    embedding_uns,
)
from lpm.tasks.layout import check_layout_method, embedding_layout
from lpm.tasks.registry import get_task

if TYPE_CHECKING:
    import polars as pl

    from lpm.models.base import PerturbationModel

#: Suffixes of the context and readout files beside the perturbation file ``F.h5ad``.
CONTEXTS_SUFFIX: Final = ".contexts.h5ad"
READOUTS_SUFFIX: Final = ".readouts.h5ad"


def embedding_paths(out_h5ad: str | Path) -> tuple[Path, Path, Path]:
    """The perturbation, context and readout files written for ``F.h5ad``."""
    out = Path(out_h5ad)
    if out.suffix != ".h5ad":
        raise LpmInputError(out, "output must end in .h5ad")
    stem = out.with_suffix("")
    return (
        out,
        stem.with_name(stem.name + CONTEXTS_SUFFIX),
        stem.with_name(stem.name + READOUTS_SUFFIX),
    )


@dataclass(frozen=True)
class EmbeddingFiles:
    """What :func:`write_embeddings` wrote: the files, and the sizes for a summary line."""

    perturbations: Path
    contexts: Path
    readouts: Path
    figure: Path | None
    n_perturbations: int
    n_contexts: int
    n_readouts: int
    dim: int
    member: int
    n_ensemble: int
    layout: str

    def paths(self) -> list[Path]:
        """Every file written, the figure last."""
        files = [self.perturbations, self.contexts, self.readouts]
        return files + ([self.figure] if self.figure is not None else [])


def _labels(
    annotations: Mapping[str, str] | str | Path | None, truth: str | Path | None
) -> Mapping[str, str] | None:
    """Mechanism labels: a simulation's targets (``truth``), updated by ``annotations``."""
    from lpm.sim.truth import read_target_mechanisms

    loaded = (
        load_mechanism_annotations(annotations)
        if isinstance(annotations, str | Path)
        else annotations
    )
    if truth is None:
        return loaded
    labels = read_target_mechanisms(truth)
    labels.update(loaded or {})
    return labels


def _anndatas(
    src: EmbeddableModel,
    *,
    member: int,
    labels: Mapping[str, str] | None,
    data: pl.DataFrame | None,
) -> list[Any]:
    """The perturbation, context and readout embeddings (the ``embed`` task) as AnnData."""
    out = []
    for kind in ("perturbation", "context", "readout"):
        task = get_task("embed", kind=kind, member=member, annotations=labels)
        table = task.run(data if kind == "perturbation" else None, model=src.model)
        out.append(embedding_anndata(table, uns=embedding_uns(src, kind=kind, member=member)))
    return out


def write_embeddings(
    model: PerturbationModel | str | Path,
    out_h5ad: str | Path,
    *,
    member: int = 0,
    annotations: Mapping[str, str] | str | Path | None = None,
    truth: str | Path | None = None,
    figure: str | Path | None = None,
    seed: int = 0,
    method: str = "auto",
    data: pl.DataFrame | None = None,
    overwrite: bool = False,
) -> EmbeddingFiles:
    """Write a trained LPM's embeddings (the ``embed`` task) as one AnnData file per kind.

    With ``figure``, the perturbations are laid out (:func:`embedding_layout`), the coordinates
    are stored in ``obsm["X_umap"]`` (``X_tsne`` on the fallback) of ``F.h5ad`` so that
    ``scanpy.pl.embedding`` draws the same picture, and the figure is written. Each file is
    written whole; existing ones are refused, before any work, unless ``overwrite``.

    Parameters
    ----------
    model, out_h5ad, member
        A fitted ``lpm``/``lpm_fast`` model or its folder; the perturbation file ``F.h5ad``
        (the other two are written beside it); the ensemble member read (default 0).
    annotations, truth
        A name → mechanism mapping, or a TSV read by
        :func:`~lpm.priors.mechanisms.load_mechanism_annotations` (its path is recorded in
        ``uns["lpm_embedding"]["annotations"]``); a simulation truth folder, whose compounds
        and the knock-downs of their strongest target share a label ``target <gene>``.
    figure, seed, method
        A PNG of the perturbation layout; the layout's seed and method (``auto``: UMAP if
        ``umap-learn`` imports, else PCA + t-SNE; ``umap``; ``tsne``).
    data
        The measurements (e.g. the training store's rows): adds contexts, doses and values
        measured per perturbation to ``obs``.

    Returns
    -------
    EmbeddingFiles
        The paths written (``paths()``), the sizes, the member and the layout (if drawn).
    """
    paths = embedding_paths(out_h5ad)
    for path in (*paths, *([Path(figure)] if figure is not None else [])):
        check_output(path, kind="file", overwrite=overwrite)
    if figure is not None:
        check_layout_method(method)
    src = embeddable(model, member=member)  # not an LPM, or no such member: before any reading
    labels = _labels(annotations, truth)
    tables = _anndatas(src, member=member, labels=labels, data=data)
    perts = tables[0]
    if isinstance(annotations, str | Path) and truth is None:
        perts.uns[UNS_KEY]["annotations"] = str(annotations)
    if figure is not None:
        perts = tables[0] = embedding_layout(perts, seed=seed, method=method)
    for table, path in zip(tables, paths, strict=True):
        with atomic_file(path, overwrite=overwrite) as tmp:
            table.write_h5ad(tmp)
    if figure is not None:
        save_png(plot_embedding_umap(perts), figure, dpi=110, overwrite=overwrite)
    return EmbeddingFiles(
        perturbations=paths[0],
        contexts=paths[1],
        readouts=paths[2],
        figure=Path(figure) if figure is not None else None,
        n_perturbations=perts.n_obs,
        n_contexts=tables[1].n_obs,
        n_readouts=tables[2].n_obs,
        dim=perts.n_vars,
        member=member,
        n_ensemble=len(src.model.states_),
        layout=str(perts.uns.get("lpm_layout", {}).get("label", "")),
    )


__all__ = [
    "CONTEXTS_SUFFIX",
    "READOUTS_SUFFIX",
    "EmbeddingFiles",
    "embedding_paths",
    "write_embeddings",
]
