# MariaDB server binaries for the `mariadb` test fixture (tests/stixshifter: the mysql
# stix-shifter connector); the fixture starts its own throwaway server on 127.0.0.1.
if ! command -v mariadbd >/dev/null && [ ! -x /usr/sbin/mariadbd ]; then
    apt_install mariadb-server
fi
