#!/usr/bin/env bash
# The package as a user gets it: builds the wheel, installs it (not editable) into a fresh venv and runs
# `workbench new`, `workbench loop --quick` and `workbench serve` start-up from a folder outside the checkout.
# The fresh venv borrows the heavy dependencies from .venv (a .pth naming .venv's site-packages, whose own
# .pth files -- the editable install of this checkout among them -- are not processed), so nothing is
# downloaded and only the wheel's workbench can be imported.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV=${VENV:-$REPO/.venv}  # the installed development venv (CI: ./.venv)
start=$(date +%s)
tmp=$(mktemp -d)
serve_pid=
cleanup() { if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; fi; rm -rf "$tmp"; }
trap cleanup EXIT
# Build from a copy of the tracked (and untracked, not ignored) files: no stale build/ in the checkout.
mkdir "$tmp/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf - | tar -xf - -C "$tmp/src"
else
  tar --exclude=./.venv --exclude=./build --exclude='*.egg-info' -cf - . | tar -xf - -C "$tmp/src"
fi
"$VENV"/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" "$tmp/src" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
wheel=$(ls "$tmp"/dist/workbench-*.whl)
"$VENV"/bin/python -m venv --without-pip "$tmp/venv"
site=$("$tmp/venv/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
"$VENV"/bin/python -c "import sysconfig; print(sysconfig.get_path('purelib'))" > "$site/zz_workbench_deps.pth"
"$VENV"/bin/python -m pip --python "$tmp/venv/bin/python" install -q --no-deps "$wheel" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
mkdir "$tmp/run" && cd "$tmp/run"
export WORKBENCH_HOME="$tmp/home"
unset PYTHONPATH
# Jupyter's data files (nbconvert's and Voila's templates) are installed under a venv's share/jupyter, which
# the borrowed dependencies keep in .venv's.
export JUPYTER_PATH="$VENV/share/jupyter"
PY="$tmp/venv/bin/python" WB="$tmp/venv/bin/workbench"
where=$("$PY" -c "import workbench; print(workbench.__file__)")
case "$where" in "$tmp/venv/"*) ;; *) echo "workbench imported from $where, not the wheel" >&2; exit 1;; esac
"$PY" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
want = ["workbench/notebooks/01_annotate.ipynb", "workbench/templates/anomaly/03_evaluate.ipynb",
        "workbench/dashboards/review.ipynb", "workbench/py.typed"]
missing = [n for n in want if n not in names]
assert not missing, f"the wheel lacks {missing}"
assert not [n for n in names if "/_source/" in n], "the notebooks' sources are in the wheel"
print(f"wheel: {len(names)} files")
PY
"$WB" new proj --type detection
test -f proj/02_train.ipynb && test -f proj/params.yaml
port=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$WB" serve --port "$port" --user ci > serve.log 2>&1 &
serve_pid=$!
"$PY" - "$port" <<'PY'
import sys, time, urllib.request
# The annotate dashboard rendered by a kernel of the fresh venv: the dashboards folder was found in the wheel.
url = f"http://127.0.0.1:{sys.argv[1]}/voila/render/annotate.ipynb"
for _ in range(120):
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            body = r.read().decode()
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit(f"workbench serve did not answer on {url}: " + open("serve.log").read())
assert "pick a dataset" in body, body[-3000:]
print(f"serve: {url} rendered")
PY
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
"$WB" loop --quick --out loop-out
test -f loop-out/metrics.json
cd "$REPO"
echo "wheel check: $(( $(date +%s) - start )) s"
