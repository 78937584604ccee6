#!/usr/bin/env bash
# README command A: set everything up, then run the most complete end-to-end path there is
# today: a simulated fleet streams through the Detector (warm-up, first training, live
# alerts), then the model is exported and reloaded. Extra arguments go to
# `streamvae quickstart`. The Kafka demo (`streamvae demo`) replaces this once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamvae quickstart "$@"
