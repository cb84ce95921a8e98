#!/bin/sh
# Runs livery on the Node.js runtime the package carries (Debian 12 ships Node 18; livery needs 20).
# serve, backup and restore read the installed configuration unless LIVERY_CONFIG says otherwise.
export LIVERY_CONFIG="${LIVERY_CONFIG-/etc/livery/livery.toml}"
exec /usr/lib/livery/node /usr/lib/livery/dist/cli/main.js "$@"
