#!/usr/bin/env bash
# README command A: set everything up, then run the most complete end-to-end path there is
# today: simulate a plant, train the recurrent VAE, save and reload the artefact, score a
# faulted series and report what was found. Extra arguments go to `streamvae quickstart`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamvae quickstart "$@"
