#!/usr/bin/env bash
# System tools the extractors run: Tesseract with its Portuguese model (OCR of scans and
# images) and antiword (legacy .doc). Installed with apt-get when running as root and
# missing; otherwise the one command to run is printed.
#   scripts/system-deps.sh             warn when something is missing (make run)
#   scripts/system-deps.sh --required  fail when something is missing (make test, CI)
set -euo pipefail
PACKAGES="tesseract-ocr tesseract-ocr-por antiword"

missing() {
    command -v tesseract >/dev/null 2>&1 || return 0
    tesseract --list-langs 2>/dev/null | grep -qx por || return 0
    command -v antiword >/dev/null 2>&1 || return 0
    return 1
}

missing || exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $PACKAGES (apt-get) ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
    missing || exit 0
fi
echo "OCR and .doc reading need: sudo apt-get install -y $PACKAGES" >&2
if [ "${1:-}" = "--required" ]; then
    exit 1
fi
