"""Tests that need a system package skip with a reason where it is missing, and fail under CI=true.

`scripts/system-deps.sh` (run by `make test` and `make demo`) installs them as root, or prints the one
`sudo apt-get install ...` line. In CI (``CI=true``) nothing may be skipped for a missing dependency.
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def missing(what: str, package: str) -> None:
    """Skip the test (fail it under CI=true): ``what`` is not installed; ``package`` is the Debian package."""
    message = (f"{what} is not installed: run scripts/system-deps.sh as root, or "
               f"`sudo apt-get install -y {package}`")
    if in_ci():
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def need_poppler() -> None:
    """pdftotext and pdftoppm (poppler-utils), to read PDFs back."""
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        missing("poppler (pdftotext, pdftoppm)", "poppler-utils")


def need_postgres_url() -> str:
    """The test server's URL (scripts/with-postgres.sh starts one for `make test`)."""
    url = os.environ.get("CJMONITOR_TEST_POSTGRES_URL")
    if not url:
        if in_ci() or os.environ.get("CJMONITOR_REQUIRE_POSTGRES") == "1":
            pytest.fail("CJMONITOR_TEST_POSTGRES_URL is not set (CI=true or CJMONITOR_REQUIRE_POSTGRES=1): "
                        "run the suite with `make test`, which starts a throwaway PostgreSQL", pytrace=False)
        pytest.skip("no PostgreSQL server: `make test` starts one (scripts/with-postgres.sh), or set "
                    "CJMONITOR_TEST_POSTGRES_URL")
    return url


def poppler(args: list[str], **kwargs):
    """``subprocess.run`` of a poppler tool (pdftotext, pdftoppm), skipping or failing as above when missing."""
    import subprocess

    need_poppler()
    return subprocess.run(args, **kwargs)


def need_redis_server() -> str:
    """The path of Debian's ``redis-server`` (the Celery test's broker)."""
    path = shutil.which("redis-server")
    if path is None:
        missing("redis-server (the Celery broker)", "redis-server")
    return path
