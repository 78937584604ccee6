#!/usr/bin/env bash
# README command A: set everything up, then run `streamvae demo`: an embedded Kafka-compatible
# broker, a simulated plant of pumps, compressors and motors with injected faults, the
# detector service and a live view of its alerts, then a report in ./streamvae-report/.
# About three minutes; extra arguments go to `streamvae demo` (e.g. --duration 60s).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/streamvae demo "$@"
