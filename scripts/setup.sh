#!/usr/bin/env bash
# Set up everything streamvae needs on a fresh machine: a virtual environment in .venv with
# the package (editable) and its development tools. Safe to run again; it only adds what is
# missing.
#
# Torch: constraints/local.txt pins the CPU build of torch that our machines carry (2.13.0).
# Elsewhere, point STREAMVAE_CONSTRAINTS at another constraints file, or set it to "none" to
# get whatever torch the range in pyproject.toml allows.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
CONSTRAINTS="${STREAMVAE_CONSTRAINTS:-constraints/local.txt}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: streamvae needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
  echo "setup: set PYTHON=/path/to/python3.11 and run again." >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating virtual environment in .venv"
  "$PYTHON" -m venv .venv
fi

pip_args=(--quiet --disable-pip-version-check)
constraint_args=()
if [ "$CONSTRAINTS" != "none" ]; then
  constraint_args=(-c "$CONSTRAINTS")
fi

echo "setup: installing streamvae and its dev tools into .venv (constraints: $CONSTRAINTS)"
.venv/bin/python -m pip install "${pip_args[@]}" --upgrade pip
.venv/bin/python -m pip install "${pip_args[@]}" "${constraint_args[@]}" -e '.[dev]'
.venv/bin/python - <<'PY'
import torch, streamvae
print(f"setup: ok: streamvae {streamvae.__version__}, torch {torch.__version__} "
      f"(CUDA build: {torch.version.cuda is not None})")
PY
