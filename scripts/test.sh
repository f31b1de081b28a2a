#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what the tests need when it is missing
# (Debian: slapd, ldap-utils, 389-ds-base, samba-ad-dc, openssl, nodejs and npm; PyPI:
# scim2-server and scim2-cli into target/peers-venv; npm: the SCIMMY peer's packages into target/peers-node),
# then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
[ -x /usr/sbin/slapd ] || need_apt+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || need_apt+=(ldap-utils)
# 389 Directory Server (tests/it/ldap_directories.rs): dscreate and ns-slapd.
[ -x /usr/sbin/ns-slapd ] && [ -x /usr/sbin/dscreate ] || need_apt+=(389-ds-base)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)   # the LDAP TLS test's certificates
# Samba AD DC (the Active Directory test): samba, samba-tool and the provisioning schema files.
[ -x /usr/sbin/samba ] && [ -d /usr/share/samba/setup/ad-schema ] \
  || need_apt+=(samba-ad-dc samba-ad-provision)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} (Debian)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# --- PyPI packages, in a venv of our own -------------------------------------------------------
VENV="$PWD/target/peers-venv"
if [ ! -x "$VENV/bin/scim2-server" ]; then
  echo "test.sh: installing scim2-server (PyPI) into $VENV" >&2
  mkdir -p target
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check scim2-server
fi
# The SCIM compliance checker (scim2-tester, through its CLI) for inbound SCIM's tests; pinned,
# so a new release of the checker cannot change what passes.
if [ ! -x "$VENV/bin/scim2" ]; then
  echo "test.sh: installing scim2-cli (PyPI, brings scim2-tester) into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "scim2-cli==0.6.0" "scim2-tester==0.5.2"
fi
export QM_SCIM2_SERVER="$VENV/bin/scim2-server"
export QM_SCIM2_CLI="$VENV/bin/scim2"

# --- npm packages: the second SCIM peer (SCIMMY), in a folder of our own ------------------------
NODE_DIR="$PWD/target/peers-node"
if ! cmp -s tests/peers/scimmy/package.json "$NODE_DIR/package.json" \
  || [ ! -f "$NODE_DIR/node_modules/scimmy-routers/package.json" ]; then
  echo "test.sh: installing the SCIMMY peer's npm packages into $NODE_DIR" >&2
  mkdir -p "$NODE_DIR"
  cp tests/peers/scimmy/package.json "$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --loglevel=error
fi
export QM_SCIMMY_MODULES="$NODE_DIR/node_modules"
export QM_SLAPD=/usr/sbin/slapd

# --- PostgreSQL ---------------------------------------------------------------------------------
# Tests create (and drop) a database each on QM_TEST_PG_URL. We start nothing: PostgreSQL must
# already run (it does on CI and on the development machine); the tests fail, saying how to
# start it, when it does not.
export QM_TEST_PG_URL="${QM_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# A local cluster that is installed but stopped is started (as the machine's own init would).
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432 \
  && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  echo "test.sh: starting the local PostgreSQL cluster" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi

# --- the tests ---------------------------------------------------------------------------------
# First on SQLite (the store's own tests and the multi-instance test use PostgreSQL in this run
# too), then the integration tests (the one binary tests/it) again with every harness database
# on PostgreSQL.
cargo test --all-targets "$@"
QM_TEST_DB=postgres cargo test --test it "$@"
