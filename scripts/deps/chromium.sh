# Chromium for the browser tests (tests/browser drive JupyterLab with Playwright through
# /usr/bin/chromium; `playwright install` would download a browser build, which fails here).
if [ ! -x /usr/bin/chromium ]; then
    apt_install chromium
fi
