#!/usr/bin/env bash
# System tools the project needs: Tesseract with its Portuguese model (OCR of scans and
# images) and antiword (legacy .doc), which the extractors run; and for the test suite
# Debian's Chromium with its WebDriver (the console's browser tests). Installed with
# apt-get when running as root and missing; otherwise the one command to run is printed.
#   scripts/system-deps.sh             warn when an extractor tool is missing (make run)
#   scripts/system-deps.sh --required  the test suite's tools too; fail when missing (make test, CI)
set -euo pipefail
PACKAGES="tesseract-ocr tesseract-ocr-por antiword"
if [ "${1:-}" = "--required" ]; then
    PACKAGES="$PACKAGES chromium chromium-driver"
fi

missing() {
    command -v tesseract >/dev/null 2>&1 || return 0
    tesseract --list-langs 2>/dev/null | grep -qx por || return 0
    command -v antiword >/dev/null 2>&1 || return 0
    if [ "${1:-}" = "--required" ]; then
        command -v chromium >/dev/null 2>&1 || return 0
        command -v chromedriver >/dev/null 2>&1 || return 0
    fi
    return 1
}

missing "${1:-}" || exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $PACKAGES (apt-get) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
    missing "${1:-}" || exit 0
fi
echo "these tools are needed: sudo apt-get install -y $PACKAGES" >&2
if [ "${1:-}" = "--required" ]; then
    exit 1
fi
