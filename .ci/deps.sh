#!/usr/bin/env bash
# System packages the build links: the libxml2 development files (XML schema
# validation). Installed only when missing, from the distribution's packages.
set -euo pipefail
if pkg-config --exists libxml-2.0 2>/dev/null; then
  exit 0
fi
if command -v apt-get >/dev/null; then
  apt-get install -y --no-install-recommends libxml2-dev pkg-config \
    || { apt-get update && apt-get install -y --no-install-recommends libxml2-dev pkg-config; }
else
  echo "libxml2 development files are missing; install them (e.g. libxml2-dev)" >&2
  exit 1
fi
