#!/usr/bin/env bash
# pgstore.sh: get a local PostgreSQL ready for FerretDB's "postgresql" handler
# and print the URL to use, for embedded.Config.PostgreSQLURL or FerretDB's
# --postgresql-url.
#
# It installs PostgreSQL with apt-get if missing, creates a cluster on the port
# if there is none, starts it if it is down, and creates (or resets) a login
# role and a database owned by it. Running it again is harmless.
#
# Usage:
#   embedded/pgstore.sh                   # prints postgres://ferretdb:ferretdb@127.0.0.1:5432/ferretdb
#   export HINDSIGHT_TEST_PG_URL="$(embedded/pgstore.sh)"
#   go test ./embedded/ -run TestPostgreSQL
#
# Settings (environment): PGSTORE_PORT (5432), PGSTORE_DB (ferretdb),
# PGSTORE_USER (ferretdb), PGSTORE_PASSWORD (ferretdb).
# Only the URL goes to stdout; progress goes to stderr.
set -euo pipefail

port="${PGSTORE_PORT:-5432}"
db="${PGSTORE_DB:-ferretdb}"
user="${PGSTORE_USER:-ferretdb}"
password="${PGSTORE_PASSWORD:-ferretdb}"

log() { echo "pgstore: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The names and password are put into SQL and the URL as they are, so keep
# them to characters that need no quoting anywhere.
[[ "$port" =~ ^[0-9]+$ ]] || die "PGSTORE_PORT must be a number, got '$port'"
[[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "PGSTORE_DB must match [a-z_][a-z0-9_]*, got '$db'"
[[ "$user" =~ ^[a-z_][a-z0-9_]*$ ]] || die "PGSTORE_USER must match [a-z_][a-z0-9_]*, got '$user'"
[[ "$password" =~ ^[A-Za-z0-9_]+$ ]] || die "PGSTORE_PASSWORD must match [A-Za-z0-9_]+"

if [[ "$(id -u)" -eq 0 ]]; then
	sudo=()
else
	command -v sudo >/dev/null || die "run as root, or install sudo"
	sudo=(sudo)
fi

# as_postgres runs a command as the postgres OS user.
as_postgres() {
	if [[ "$(id -u)" -eq 0 ]] && command -v runuser >/dev/null; then
		runuser -u postgres -- "$@"
	else
		"${sudo[@]}" -u postgres "$@"
	fi
}

# 1. Install.
if ! command -v pg_ctlcluster >/dev/null || ! command -v pg_lsclusters >/dev/null; then
	log "installing postgresql with apt-get"
	"${sudo[@]}" apt-get update >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >&2
fi

# 2. A cluster on the port: use it if there is one, else create one.
#    pg_lsclusters -h prints: version name port status owner datadir logfile
read -r version name status < <(pg_lsclusters -h | awk -v p="$port" '$3 == p { print $1, $2, $4; exit }') || true

if [[ -z "${version:-}" ]]; then
	version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
	[[ -n "$version" ]] || die "no PostgreSQL server version found in /usr/lib/postgresql"

	name=main
	if pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" { found = 1 } END { exit !found }'; then
		name=ferretdb
	fi

	log "creating cluster $version/$name on port $port"
	"${sudo[@]}" pg_createcluster --port "$port" "$version" "$name" >&2
	status=down
fi

# 3. Start it.
if [[ "$status" != online* ]]; then
	log "starting cluster $version/$name on port $port"
	"${sudo[@]}" pg_ctlcluster "$version" "$name" start >&2
fi

for _ in $(seq 1 60); do
	if pg_isready -q -h 127.0.0.1 -p "$port"; then
		break
	fi
	sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || die "PostgreSQL $version/$name is not accepting connections on 127.0.0.1:$port"

# 4. Role and database. The role owns the database because FerretDB creates
#    schemas and tables in it.
log "ensuring role '$user' and database '$db'"
as_postgres psql --quiet --no-psqlrc -p "$port" -v ON_ERROR_STOP=1 -d postgres >&2 <<SQL
DO \$\$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN
		CREATE ROLE "$user" LOGIN PASSWORD '$password';
	ELSE
		ALTER ROLE "$user" LOGIN PASSWORD '$password';
	END IF;
END
\$\$;
SELECT 'CREATE DATABASE "$db" OWNER "$user"'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$db')\gexec
ALTER DATABASE "$db" OWNER TO "$user";
SQL

url="postgres://$user:$password@127.0.0.1:$port/$db"

# 5. Check that the URL works over TCP with the password, as FerretDB will use it.
psql --no-psqlrc "$url" -v ON_ERROR_STOP=1 -tAc 'SELECT 1' >/dev/null ||
	die "cannot log in with $url (check pg_hba.conf allows password logins from 127.0.0.1)"

log "ready"
echo "$url"
