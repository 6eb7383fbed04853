# Shared by scripts/run and scripts/test: create .venv and install leosuite into it.
ensure_venv() {
    local extra="$1"
    local py="${PYTHON:-python3}"
    if [ ! -x .venv/bin/python ]; then
        "$py" -m venv .venv
    fi
    local stamp=".venv/.installed${extra:+-$extra}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra:+[$extra]}"
        touch "$stamp"
    fi
    # The package is installed editable: its bytecode is written here once, so each
    # process started from it (a daemon, a reload, a demo game) does not compile it
    # again (PYTHONDONTWRITEBYTECODE keeps Python itself from writing it).
    .venv/bin/python -m compileall -q -j 0 leosuite >/dev/null
}

# The dashboard's browser tests drive Debian's chromium (Playwright downloads no browser).
ensure_chromium() {
    if [ -n "${LEOSUITE_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then
        return
    fi
    echo "== installing chromium for the browser tests (apt-get install chromium)"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "chromium is missing and cannot be installed without root:" \
                "run 'apt-get install chromium' (or set LEOSUITE_CHROMIUM=/path/to/chromium)" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium >/dev/null; }
    command -v chromium >/dev/null 2>&1
}

# The reverse-proxy tests run Debian's nginx in front of a daemon; without it (and no
# way to install it) they are skipped with the reason, the rest of the suite runs.
ensure_nginx() {
    if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then
        return
    fi
    echo "== installing nginx for the reverse-proxy tests (apt-get install nginx-light)"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "nginx is missing and cannot be installed without root: the reverse-proxy" \
                "tests will be skipped (apt-get install nginx-light)" >&2
            return
        fi
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    # The tests run the binary with their own config; Debian may also start its default
    # site (systemctl disable --now nginx if it is not wanted).
    # nginx-light where Debian still has it (bookworm), else nginx.
    local package
    for package in nginx-light nginx; do
        if $sudo apt-get install -y -qq "$package" >/dev/null 2>&1; then
            return
        fi
    done
    $sudo apt-get update -qq >/dev/null 2>&1 || true
    for package in nginx-light nginx; do
        if $sudo apt-get install -y -qq "$package" >/dev/null 2>&1; then
            return
        fi
    done
    echo "nginx could not be installed: the reverse-proxy tests will be skipped" >&2
}

# The PostgreSQL store's tests start their own server from Debian's postgresql package
# (initdb and pg_ctl under /usr/lib/postgresql/<version>/bin).
ensure_postgresql() {
    if compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        return
    fi
    echo "== installing postgresql for the store tests (apt-get install postgresql)"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "postgresql is missing and cannot be installed without root:" \
                "run 'apt-get install postgresql'" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq postgresql >/dev/null 2>&1 \
        || { $sudo apt-get update -qq && $sudo apt-get install -y -qq postgresql >/dev/null; }
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}
