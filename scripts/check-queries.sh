#!/usr/bin/env bash
# The store's SQL is checked against the schema at compile time
# (`sqlx::query!`). Builds read the committed descriptions in store/.sqlx;
# this script compiles the store against a freshly migrated database and
# fails when a query no longer fits the schema, or when store/.sqlx differs
# from what the queries and the schema give. `TENANTRY_BLESS=1` rewrites
# store/.sqlx instead of comparing.
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${TENANTRY_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="tenantry_querycheck_$$"
url="${admin_url%/*}/$db"
out="$(mktemp -d)"
cleanup() {
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT

psql -q "$admin_url" -c "CREATE DATABASE $db" >/dev/null
for migration in migrations/*.sql; do
  psql -q -v ON_ERROR_STOP=1 "$url" -f "$migration" >/dev/null
done

# The macros' results are cached by cargo, which does not see the
# environment change: make it expand them again.
touch store/src/*.rs
SQLX_OFFLINE=false SQLX_OFFLINE_DIR="$out" DATABASE_URL="$url" \
  cargo check -p tenantry-store --locked --quiet
touch store/src/*.rs

if [[ "${TENANTRY_BLESS:-}" == 1 ]]; then
  rm -rf store/.sqlx && mkdir -p store/.sqlx && cp "$out"/*.json store/.sqlx/
  echo "store/.sqlx rewritten ($(ls store/.sqlx | wc -l) queries)"
elif ! diff -r -q store/.sqlx "$out" >/dev/null 2>&1; then
  diff -r store/.sqlx "$out" | head -40 || true
  echo "store/.sqlx is out of date with the queries or the schema; run TENANTRY_BLESS=1 scripts/check-queries.sh" >&2
  exit 1
else
  echo "store queries match the schema ($(ls "$out" | wc -l) queries)"
fi
