#!/usr/bin/env bash
# Rebuild the prebuilt JupyterLab extension from src/ into prebuilt/ (committed).
#
#   bash labextension/build.sh
#
# For developers only: needs node >= 18 and npm (packages from the npm registry) and the
# repo's .venv with jupyterlab (`.venv/bin/pip install -e '.[test]'`). Users need none of
# it: wheels and sdists carry prebuilt/ as share/jupyter/labextensions/jupyterlab-kestrel.
# prebuilt.sha256 records the sources it was built from (tests/browser checks it is current).
# Ends by refreshing the copy in .venv (see develop.sh). Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
venv="$(cd .. && pwd)/.venv"
export PATH="$venv/bin:$PATH"
export JUPYTERLAB_CORE_PACKAGE="$venv/share/jupyter/lab/static/package.json"

npm ci --no-audit --no-fund
rm -rf lib tsconfig.tsbuildinfo prebuilt
npm run build
cp install.json prebuilt/install.json
sha256sum package.json package-lock.json tsconfig.json install.json src/*.ts > prebuilt.sha256
bash develop.sh
