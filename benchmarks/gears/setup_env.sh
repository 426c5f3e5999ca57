#!/usr/bin/env bash
# Recreate the separate GEARS virtualenv (CPU only) used by benchmarks/gears/run_gears.py.
# Usage: bash benchmarks/gears/setup_env.sh [ENV_DIR]   (default /tmp/venv_gears)
# torch is installed FIRST and pinned (an unpinned torch pulls GBs of CUDA wheels); then the
# exact versions in requirements-gears.txt (pip freeze of the env that was tested).
set -euo pipefail
ENV_DIR="${1:-/tmp/venv_gears}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python3.11 -m venv "$ENV_DIR"
"$ENV_DIR/bin/pip" install --upgrade pip
"$ENV_DIR/bin/pip" install torch==2.13.0
"$ENV_DIR/bin/pip" install -r "$HERE/requirements-gears.txt"
"$ENV_DIR/bin/python" -c "import torch, torch_geometric, gears, anndata, pyarrow; print('torch', torch.__version__, 'pyg', torch_geometric.__version__, 'anndata', anndata.__version__)"
