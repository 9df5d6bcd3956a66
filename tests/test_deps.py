"""A missing system package skips a test with the install line, except under CI=true, where it fails."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.deps import missing, need_postgres_url

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_missing_dependency_skips_with_the_install_line(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo apt-get install -y chromium"):
        missing("Debian's chromium", "chromium")


def test_missing_dependency_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: Debian's chromium is not installed"):
        missing("Debian's chromium", "chromium")


def test_no_postgres_server_fails_under_ci_and_skips_otherwise(monkeypatch):
    monkeypatch.delenv("CJMONITOR_TEST_POSTGRES_URL", raising=False)
    monkeypatch.delenv("CJMONITOR_REQUIRE_POSTGRES", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="make test"):
        need_postgres_url()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CJMONITOR_TEST_POSTGRES_URL is not set"):
        need_postgres_url()


def _system_deps_without_tools(tmp_path, mode: str) -> subprocess.CompletedProcess:
    """`scripts/system-deps.sh MODE` on a PATH with bash and the few tools the script itself uses, none of the
    project's dependencies, and no apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "ls", "id", "dirname"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        (bin_dir / tool).symlink_to(found)
    return subprocess.run(["bash", str(REPO_ROOT / "scripts" / "system-deps.sh"), mode], capture_output=True,
                          text=True, env={"PATH": str(bin_dir)}, timeout=60)


def test_system_deps_script_prints_the_install_line_when_it_cannot_install(tmp_path):
    # A PATH with bash but none of the tools, and no apt-get: the script names what is missing and carries on.
    result = _system_deps_without_tools(tmp_path, "demo")
    assert result.returncode == 0, result.stderr
    if Path("/usr/bin/chromium").exists():
        assert "sudo apt-get install -y poppler-utils" in result.stderr, result.stderr
    else:
        assert "sudo apt-get install -y chromium poppler-utils" in result.stderr, result.stderr


def test_the_read_only_demo_home_guard_sees_a_write(tmp_path):
    # The check tests/conftest.py runs after every test that uses the shared demo home, on a home of its own.
    import sqlite3

    from tests.conftest import _describe_changes, _stat_fingerprint

    home = tmp_path / "home"
    (home / "var").mkdir(parents=True)
    (home / "out").mkdir()
    (home / "out" / "index.html").write_text("<p>index</p>")
    database = home / "var" / "cjmonitor.db"
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
    before = _stat_fingerprint(home)
    with sqlite3.connect(database) as connection:  # reading changes nothing
        assert connection.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert _stat_fingerprint(home) == before
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("INSERT INTO t VALUES (1)")
    connection.commit()  # the row sits in the write-ahead log while the connection is open
    after = _stat_fingerprint(home)
    connection.close()
    assert "changed" in _describe_changes(before, after) or "added" in _describe_changes(before, after)
    (home / "out" / "new.html").write_text("x")
    assert "added: out/new.html" in _describe_changes(before, _stat_fingerprint(home))


def test_no_redis_server_fails_under_ci_and_skips_otherwise(monkeypatch, tmp_path):
    from tests.deps import need_redis_server

    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"sudo apt-get install -y redis-server"):
        need_redis_server()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: redis-server \(the Celery broker\) is not installed"):
        need_redis_server()


def test_system_deps_script_names_redis_server_for_the_tests(tmp_path):
    # `make test` (and so CI) runs `scripts/system-deps.sh test`, which installs redis-server when it is missing.
    result = _system_deps_without_tools(tmp_path, "test")
    assert result.returncode == 0, result.stderr
    install_line = next(line for line in result.stderr.splitlines() if "sudo apt-get install -y" in line)
    assert "redis-server" in install_line.split(), result.stderr
