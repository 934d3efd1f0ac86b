# Sourced by bin/demo and bin/test: make this machine able to run pandajedi_wf from a fresh clone.
# - PostgreSQL server binaries (Debian's package) for the embedded test/demo database;
# - a virtualenv .venv with this package (editable) and its test dependencies, incl. upstream PanDA/JEDI, at the
#   exact versions of constraints/dev.txt;
# - Debian's voms-clients (voms-proxy-fake/-info: the tests' grid users hold real VOMS proxies);
# - Debian's chromium and chromium-driver (the monitor's browser tests);
# - a separate virtualenv .venv-client with the real panda-client (it owns pandaclient, as panda-client-light in
#   .venv does, so the two cannot share a venv); pandajedi_wf_dev/devdb/panda_client.py uses the same stamp;
# - a separate virtualenv .venv-rucio with a Rucio server (tests run a real one); devdb/rucio_server.py, same stamp.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "[bootstrap] installing PostgreSQL server (Debian package 'postgresql')"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi

if ! command -v voms-proxy-fake >/dev/null 2>&1; then
    echo "[bootstrap] installing VOMS clients (Debian package 'voms-clients')"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq voms-clients >/dev/null
fi

# Debian's headless Chromium for the monitor's browser tests (tests/test_monitor_browser.py): no browser download
# by a test tool; the tests skip, saying so, only when this install failed
if ! command -v chromium >/dev/null 2>&1; then
    echo "[bootstrap] installing Chromium (Debian packages 'chromium' and 'chromium-driver') for the browser tests"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
        echo "[bootstrap] chromium could not be installed: the browser tests will be skipped" >&2
    fi
fi

PY="${PYTHON:-python3}"
# setup.cfg holds ranges; constraints/dev.txt the exact versions dev and CI install (a change to it re-installs).
STAMP=".venv/.installed-$(cat setup.cfg pyproject.toml constraints/dev.txt | sha1sum | cut -c1-12)"
if [ ! -f "$STAMP" ]; then
    echo "[bootstrap] creating .venv and installing pandajedi_wf with the dependencies pinned in constraints/dev.txt (about a minute)"
    "$PY" -m venv .venv
    LOG=".venv/install.log"
    if ! { .venv/bin/pip install -c constraints/dev.txt --upgrade pip \
            && .venv/bin/pip install -c constraints/dev.txt -e ".[test]"; } >"$LOG" 2>&1; then
        tail -n 40 "$LOG"
        echo "[bootstrap] pip install failed; the whole log is in $ROOT/$LOG" >&2
        exit 1
    fi
    touch "$STAMP"
fi

PANDA_CLIENT_VERSION="2.2.0"
CLIENT_STAMP=".venv-client/.installed-panda-client-$PANDA_CLIENT_VERSION"
if [ ! -f "$CLIENT_STAMP" ]; then
    echo "[bootstrap] creating .venv-client with panda-client==$PANDA_CLIENT_VERSION"
    "$PY" -m venv --clear .venv-client
    echo '*' > .venv-client/.gitignore  # never committed, whatever the repository's .gitignore says
    LOG=".venv-client/install.log"
    if ! { .venv-client/bin/pip install --upgrade pip \
            && .venv-client/bin/pip install "panda-client==$PANDA_CLIENT_VERSION"; } >"$LOG" 2>&1; then
        tail -n 40 "$LOG"
        echo "[bootstrap] panda-client install failed; the whole log is in $ROOT/$LOG" >&2
        exit 1
    fi
    touch "$CLIENT_STAMP"
fi

# The Rucio server for tests (pandajedi_wf_dev/devdb/rucio_server.py): its own venv, its dependencies may fight upstream
# PanDA's pins. The list and the stamp must match RUCIO_REQUIREMENTS / requirements_stamp() there.
RUCIO_REQUIREMENTS=("rucio==41.5.1" "psycopg[binary]==3.3.9" "gunicorn==27.0.1")
RUCIO_STAMP=".venv-rucio/.installed-rucio-$(printf '%s' "${RUCIO_REQUIREMENTS[*]}" | sha1sum | cut -c1-12)"
if [ ! -f "$RUCIO_STAMP" ]; then
    echo "[bootstrap] creating .venv-rucio with ${RUCIO_REQUIREMENTS[*]} (about a minute)"
    "$PY" -m venv --clear .venv-rucio
    echo '*' > .venv-rucio/.gitignore  # never committed, whatever the repository's .gitignore says
    LOG=".venv-rucio/install.log"
    if ! { .venv-rucio/bin/pip install --upgrade pip && .venv-rucio/bin/pip install "${RUCIO_REQUIREMENTS[@]}"; } >"$LOG" 2>&1; then
        tail -n 40 "$LOG"
        echo "[bootstrap] Rucio server install failed; the whole log is in $ROOT/$LOG" >&2
        exit 1
    fi
    touch "$RUCIO_STAMP"
fi
export PATH="$ROOT/.venv/bin:$PATH"
