#!/usr/bin/env bash
# Copy prebuilt/ into the repo's .venv as share/jupyter/labextensions/jupyterlab-kestrel.
#
#   bash labextension/develop.sh
#
# Needed after `pip install -e .`: setuptools' editable installs skip data-files, so the
# extension a wheel or `pip install .` puts there is missing from an editable venv. A copy,
# not a symlink: a later non-editable install or uninstall must not write through a link
# into the repository. Run again after each rebuild (build.sh does). Works from any directory.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
dest="../.venv/share/jupyter/labextensions/jupyterlab-kestrel"
rm -rf "$dest"
mkdir -p "$dest"
cp -R prebuilt/. "$dest/"
echo "labextension: copied prebuilt/ to ${dest#../}"
