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

# Test-only programs from Debian: Alertmanager (the alert bridge's integration test sends to
# a real one), Prometheus (the metrics scrape test; its promtool checks deploy/'s rules) and
# the docker-compose client (`docker-compose config` validates deploy/docker-compose.yml
# offline; no engine is installed: --no-install-recommends keeps docker.io out). Installed only when a binary is
# missing, with one apt-get call; skipped with a note where there is no apt or no root, in
# which case those tests fail and say what is missing. A temporary policy-rc.d keeps the
# packages' init scripts from starting daemons on ports 9090/9093 during the install.
apt_missing=()
command -v prometheus-alertmanager >/dev/null 2>&1 || apt_missing+=(prometheus-alertmanager)
command -v prometheus >/dev/null 2>&1 || apt_missing+=(prometheus)
command -v docker-compose >/dev/null 2>&1 || apt_missing+=(docker-compose)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup: skipping ${apt_missing[*]}: no apt-get here; install them with your package" \
      "manager for the Alertmanager and Prometheus integration tests" >&2
  elif [ "$(id -u)" -ne 0 ]; then
    echo "setup: skipping ${apt_missing[*]}: not root; run" \
      "'sudo apt-get update && sudo apt-get install ${apt_missing[*]}' for the Alertmanager" \
      "and Prometheus integration tests" >&2
  else
    echo "setup: installing ${apt_missing[*]} (Debian packages, for the integration tests)"
    policy_rc=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      policy_rc=/usr/sbin/policy-rc.d
      printf '#!/bin/sh\nexit 101\n' >"$policy_rc"
      chmod +x "$policy_rc"
      trap 'rm -f "$policy_rc"' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_missing[@]}"
    if [ -n "$policy_rc" ]; then
      rm -f "$policy_rc"
      trap - EXIT
    fi
  fi
fi
