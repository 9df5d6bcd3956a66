"""Sources: the TOML configuration, a real SFTP server on loopback, and the drop folder."""

from __future__ import annotations

import os
import re
import shutil

import pytest
from sqlmodel import select

from cjmonitor import pipeline
from cjmonitor.db import session_scope
from cjmonitor.demo import build_world, load_world
from cjmonitor.settings import get_settings
from contracts.errors import SourceConfigError
from contracts.models import Submission
from contracts.sources import SAFE_NAME, load_sources
from tests.sftp_server import LoopbackSFTPServer


@pytest.fixture
def world(migrated_home, generated_world):
    """A loaded reference world, and its generated returns (made once per run and shared: copy, never change)."""
    settings = get_settings(migrated_home)
    world = build_world(seed=4, areas=5, months=24)
    load_world(settings, world)
    generated = generated_world(seed=4, areas=5, months=24) / "drop"
    return settings, generated


def _settings_with_sources(settings, text, monkeypatch):
    path = settings.home / "sources.toml"
    path.write_text(text)
    monkeypatch.setenv("CJMONITOR_SOURCES", str(path))
    return get_settings(settings.home)


def test_sftp_source_fetches_lands_and_loads(world, tmp_path, monkeypatch):
    settings, generated = world
    outbox = tmp_path / "sftp-root" / "outbox"
    outbox.mkdir(parents=True)
    names = sorted(p.name for p in generated.glob("northstar-rehab_crc_caseload_2023-0[1-3].csv"))
    for name in names:
        shutil.copy2(generated / name, outbox / name)
    (outbox / "notes-january.txt").write_text("not a return")
    (outbox / "..hidden").write_text("x")
    with LoopbackSFTPServer(tmp_path / "sftp-root", tmp_path / "keys") as server:
        settings = _settings_with_sources(settings, f"""
[[source]]
name = "northstar-sftp"
kind = "sftp"
host = "127.0.0.1"
port = {server.port}
user = "cjmonitor"
key_file = "{server.client_key_path}"
known_hosts = "{server.known_hosts_path}"
remote_path = "/outbox"
providers = ["northstar-rehab"]
""", monkeypatch)
        summary = pipeline.ingest(settings, source_name="northstar-sftp")
        assert summary.accepted == 3
        assert summary.unrecognised == 1 and summary.refused == 1
        again = pipeline.ingest(settings, source_name="northstar-sftp")
        assert again.accepted == 0 and again.duplicate == 3
        # The server drops the next two connections: the fetch retries with backoff and succeeds.
        server.fail_next_connections = 2
        monkeypatch.setattr("contracts.sources.time.sleep", lambda s: None)
        third = pipeline.ingest(settings, source_name="northstar-sftp")
        assert third.duplicate == 3
    with session_scope(settings) as session:
        subs = session.exec(select(Submission)).all()
    assert sorted(s.file_name for s in subs) == names
    assert all(s.source.startswith("northstar-sftp:") and s.is_current for s in subs)
    # Received time is the server's modification time, kept through the download.
    local = settings.inbox_dir / "northstar-sftp" / names[0]
    assert int(local.stat().st_mtime) == int((generated / names[0]).stat().st_mtime)


def test_sftp_with_wrong_host_key_is_refused_clearly(world, tmp_path, monkeypatch):
    settings, _generated = world
    (tmp_path / "root" / "outbox").mkdir(parents=True)
    with LoopbackSFTPServer(tmp_path / "root", tmp_path / "keys") as server:
        other = LoopbackSFTPServer(tmp_path / "root", tmp_path / "other-keys")  # a different host key, never started
        settings = _settings_with_sources(settings, f"""
[[source]]
name = "s"
kind = "sftp"
host = "127.0.0.1"
port = {server.port}
user = "cjmonitor"
key_file = "{server.client_key_path}"
known_hosts = "{tmp_path / 'other-keys' / 'known_hosts'}"
remote_path = "/outbox"
""", monkeypatch)
        (tmp_path / "other-keys" / "known_hosts").write_text(
            server.known_hosts_path.read_text().split()[0] + " " + " ".join(other._host_key.export_public_key().decode().split()[:2]) + "\n")
        with pytest.raises(SourceConfigError, match="known_hosts|host key|Host key"):
            pipeline.ingest(settings, source_name="s")


def test_unreachable_sftp_gives_up_after_retries(world, tmp_path, monkeypatch):
    settings, _generated = world
    key = tmp_path / "key"
    key.write_text("x")
    hosts = tmp_path / "known_hosts"
    hosts.write_text("")
    settings = _settings_with_sources(settings, f"""
[[source]]
name = "down"
kind = "sftp"
host = "127.0.0.1"
port = 9
user = "u"
key_file = "{key}"
known_hosts = "{hosts}"
retries = 2
timeout_s = 2
""", monkeypatch)
    sleeps = []
    monkeypatch.setattr("contracts.sources.time.sleep", sleeps.append)
    with pytest.raises(SourceConfigError, match="failed after 3 attempts"):
        pipeline.ingest(settings, source_name="down")
    assert sleeps == [1.0, 2.0], "exponential backoff between attempts"


def test_drop_folder_source_only_takes_its_providers(world, monkeypatch):
    settings, generated = world
    folder = settings.home / "inbound"
    folder.mkdir()
    for name in ("northstar-rehab_crc_caseload_2023-01.csv", "sentinel-monitoring_em_orders_2023-01.csv"):
        shutil.copy2(generated / name, folder / name)
    settings = _settings_with_sources(settings, """
[[source]]
name = "northstar-drop"
kind = "drop_folder"
path = "inbound"
providers = ["northstar-rehab"]
""", monkeypatch)
    summary = pipeline.ingest(settings)
    assert summary.accepted == 1 and summary.refused == 1
    refused = next(o for o in summary.outcomes if o["status"] == "refused")
    assert "not configured for provider 'sentinel-monitoring'" in refused["message"]


@pytest.mark.parametrize("text, message", [
    ("[[source]]\nname = 'a'\nkind = 'ftp'\n", "'kind' must be"),
    ("[[source]]\nname = 'a'\nkind = 'sftp'\nhost = 'h'\n", "needs 'user'"),
    ("[[source]]\nname = 'a'\nkind = 'drop_folder'\n", "needs 'path'"),
    ("[[source]]\nname = 'a'\nkind = 'drop_folder'\npath = 'x'\ncolour = 'red'\n", "unknown keys colour"),
    ("[[source]]\nname = '../a'\nkind = 'drop_folder'\npath = 'x'\n", "'name' must be"),
    ("this is = not toml [", "not valid TOML"),
    ("[sources]\nname = 'a'\n", "no [[source]] tables"),
    ("source = []\n", "no [[source]] tables"),
])
def test_bad_sources_files_name_the_problem(tmp_path, text, message):
    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourceConfigError, match=re.escape(message)) as caught:
        load_sources(path, tmp_path, tmp_path / "drop")
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("name", ["../../etc/passwd", "..", "a/b.csv", "name with space.csv", "\u202eevil.csv", ".hidden"])
def test_unsafe_remote_names_are_never_written_locally(name):
    assert not SAFE_NAME.match(name) or ".." in name


def test_without_a_sources_file_the_drop_folder_takes_everyone(tmp_path):
    os.environ.pop("CJMONITOR_SOURCES", None)
    (source,) = load_sources(tmp_path / "absent.toml", tmp_path, tmp_path / "drop")
    assert source.kind == "drop_folder" and source.accepts("anyone")


@pytest.mark.parametrize("text", ["", "# nothing configured yet\n# [[source]]\n# name = \"drop\"\n"])
def test_a_sources_file_of_only_comments_means_the_drop_folder(tmp_path, text):
    """The sources.toml `cjmonitor init` writes (comments only) takes every provider through var/drop, as it says."""
    from cjmonitor.cli.register import SOURCES_TEMPLATE

    for body in (text, SOURCES_TEMPLATE):
        path = tmp_path / "sources.toml"
        path.write_text(body)
        (source,) = load_sources(path, tmp_path, tmp_path / "drop")
        assert source.kind == "drop_folder" and source.path == tmp_path / "drop" and source.accepts("anyone")
