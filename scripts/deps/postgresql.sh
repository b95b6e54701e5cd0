# PostgreSQL server binaries for the `postgres_url` test fixture (it starts its own
# throwaway server on 127.0.0.1). Skipped when KESTREL_TEST_PG_URL names a server.
if [ -z "${KESTREL_TEST_PG_URL:-}" ] && ! compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null; then
    apt_install postgresql
fi
