#!/usr/bin/env bash
# Installs Workbench and everything it needs into ./.venv (pinned by constraints.txt). Idempotent:
# a second run with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.workbench-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # (pip's "Location ... is ignored" lines are noise from this machine's mirror settings)
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[all,test]" 2>&1 | { grep -v "^WARNING: Location" || true; }
  .venv/bin/python -c "import workbench, torch, torchvision, albumentations" 
  echo "$want" > "$stamp"
fi
echo "workbench installed in $(pwd)/.venv"
