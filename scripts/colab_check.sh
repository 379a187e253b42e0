#!/usr/bin/env bash
# Rebuild Colab's current stack in a Python 3.13 virtual environment, install kcourse the way the
# notebooks' first cell does, check that the install kept Colab's TensorFlow, and run the notebook
# tests there.
#
#   scripts/colab_check.sh                 # venv in .venv-colab/ (git-ignored); re-runnable
#   COLAB_VENV=/tmp/colab scripts/colab_check.sh
#   PY313=/usr/bin/python3.13 scripts/colab_check.sh
#
# Colab (since 2026-08): Python 3.13, tensorflow 2.20.0, keras 3.13.2, tf_keras 2.20.1, numpy 2.1.3,
# gymnasium 1.3.0 preinstalled, no tf-agents. Those are pinned in step 1 ("what Colab has"); step 2 is
# the notebooks' install cell with the local repository instead of the git URL. The first run
# downloads TensorFlow 2.20 (~600 MB); a rerun reuses the venv and pip's cache.
# Last line: "colab_check: PASS|FAIL ..." and the total wall time; exit status 0 only on PASS.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${COLAB_VENV:-$ROOT/.venv-colab}
PY313=${PY313:-$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions/3.13.0/bin/python3}
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Work outside the repository: `python -` there would see the kcourse.egg-info that pip's in-tree
# build leaves in it and report a kcourse that is not installed.
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac
case $PY313 in /*) ;; *) PY313=$(command -v "$PY313" || echo "$PWD/$PY313") ;; esac
cd "${TMPDIR:-/tmp}"

COLAB_PINS=(tensorflow==2.20.0 keras==3.13.2 tf-keras==2.20.1 numpy==2.1.3 gymnasium==1.3.0)

START=$(date +%s)
RESULT="FAIL (stopped before the end)"
finish() {
    local wall=$(( $(date +%s) - START ))
    echo "== uptime at the end: $(uptime)"
    echo "colab_check: $RESULT; total wall time ${wall} s ($(( wall / 60 )) min $(( wall % 60 )) s)"
}
trap finish EXIT

echo "== uptime at the start: $(uptime)"
if [ ! -x "$PY313" ]; then
    RESULT="FAIL (no Python 3.13 at $PY313; set PY313)"
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV with $("$PY313" -V)"
    "$PY313" -m venv "$VENV"
else
    echo "== reusing $VENV ($("$VENV/bin/python" -V))"
fi
PY="$VENV/bin/python"
pip_() { "$PY" -m pip "$@"; }
versions() {  # name==version for the pieces that matter, one line
    "$PY" - <<'EOF'
import importlib.metadata as md
out = []
for dist in ("tensorflow", "keras", "tf-keras", "numpy", "gymnasium", "tensorflow-probability", "tensorboard",
             "tf-agents", "kcourse"):
    try:
        out.append(f"{dist}=={md.version(dist)}")
    except md.PackageNotFoundError:
        out.append(f"{dist}=(none)")
print(" ".join(out))
EOF
}
tf_version() { pip_ show tensorflow 2>/dev/null | sed -n 's/^Version: //p'; }

pip_ install -q --upgrade pip

echo "== 1. what Colab has preinstalled: ${COLAB_PINS[*]} + pytest/Jupyter (the test,notebooks extras)"
# The test tools' requirements are read from setup.cfg's `test` and `notebooks` extras.
mapfile -t TEST_REQS < <("$PY" - "$ROOT/setup.cfg" <<'EOF'
import configparser, sys
cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
for extra in ("test", "notebooks"):
    for line in cfg["options.extras_require"][extra].splitlines():
        line = line.split("#")[0].strip()
        if line:
            print(line)
EOF
)
pip_ install -q "${COLAB_PINS[@]}" "${TEST_REQS[@]}"
# Colab has neither kcourse nor tf-agents: a rerun removes them so that step 2 installs them again
# (from the current working tree) instead of finding them already satisfied.
pip_ uninstall -q -y kcourse tf-agents gym 2>/dev/null || true
BEFORE=$(tf_version)
echo "   $(versions)"

echo "== 2. the notebooks' install cell, from the local repository"
echo "   pip install \"kcourse[atari,box2d] @ file://$ROOT\" && pip install --no-deps tf-agents==0.19.0 gym==0.23.0"
pip_ install -q "kcourse[atari,box2d] @ file://$ROOT"
pip_ install -q --no-deps tf-agents==0.19.0 gym==0.23.0
AFTER=$(tf_version)
echo "   $(versions)"
echo "== pip show tensorflow: Version: $AFTER (before the install cell: $BEFORE)"
if [ "$BEFORE" != "$AFTER" ]; then
    RESULT="FAIL (the install cell replaced tensorflow $BEFORE with $AFTER)"
    exit 1
fi
pip_ check || echo "   (pip check lists tf-agents' stale pins: expected, it is installed --no-deps)"

echo "== 3. kcourse doctor (installed package, run outside the repository)"
DOCTOR=PASS
"$VENV/bin/kcourse" doctor || DOCTOR=FAIL

echo "== 4. python -m pytest -q tests/test_notebooks.py"
LOG=$(mktemp)
set +e
(cd "$ROOT" && "$PY" -m pytest -q -p no:cacheprovider tests/test_notebooks.py) 2>&1 | tee "$LOG"
TESTS=${PIPESTATUS[0]}
set -e
SUMMARY=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error)" "$LOG" | tail -1 | tr -d '=' | xargs)
rm -f "$LOG"

STACK="Python $("$PY" -c 'import platform; print(platform.python_version())'), tensorflow $AFTER kept"
if [ "$TESTS" -eq 0 ] && [ "$DOCTOR" = PASS ]; then
    RESULT="PASS ($STACK; doctor $DOCTOR; tests/test_notebooks.py: $SUMMARY)"
else
    RESULT="FAIL ($STACK; doctor $DOCTOR; tests/test_notebooks.py: ${SUMMARY:-exit $TESTS})"
    exit 1
fi
