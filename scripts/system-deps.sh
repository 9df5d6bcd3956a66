#!/usr/bin/env bash
# The system packages cjmonitor needs, from Debian's archive, installed only when missing:
#   chromium       prints the PDFs (WeasyPrint is the slower fallback) and drives the page tests
#   poppler-utils  pdftotext / pdftoppm, which the tests use to read PDFs back
#   postgresql     a server for the PostgreSQL tests (scripts/with-postgres.sh starts a throwaway one)
#   redis-server   a broker for the Celery test
# Usage: scripts/system-deps.sh [demo|test]   (demo: chromium and poppler only; test, the default: all)
# As root it installs them (one `apt-get update`, one `apt-get install`); otherwise it prints the one
# `sudo apt-get install ...` line to run and carries on with what is there (exit 0): the tests then skip,
# with a reason, what cannot run, except under CI=true, where they fail.
set -uo pipefail
want="${1:-test}"
need=()
have_chromium() { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; }
have_chromium || need+=(chromium)
command -v pdftotext >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
if [ "$want" = "test" ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: installing ${need[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null; then
    exit 0
  fi
  echo "system-deps: apt-get install ${need[*]} failed; carrying on with what is installed" >&2
  [ "${CI:-}" = "true" ] && exit 1
  exit 0
fi
echo "system-deps: missing ${need[*]}. To install them run:" >&2
echo "  sudo apt-get install -y ${need[*]}" >&2
if [ "${CI:-}" = "true" ]; then
  echo "system-deps: CI=true and not root: the tests that need them will fail" >&2
fi
exit 0
