"""`cjmonitor system load`, `pathway` and `links` on a home with the demo world's system measures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlmodel import Session

from cjmonitor.cli import cli
from cjmonitor.demo_system import write_system_measures
from contracts.geography import AREAS
from contracts.models import Area

pytestmark = pytest.mark.slow  # loads 36 months x 42 areas of system measures (about 150,000 figures)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    from cjmonitor.db import get_engine
    from cjmonitor.pipeline import upgrade_db
    from cjmonitor.settings import get_settings

    home = tmp_path_factory.mktemp("system-home")
    settings = get_settings(home)
    upgrade_db(settings)
    with Session(get_engine(settings)) as session:
        session.add_all([Area(code=a.code, name=a.name, region=a.region, commissioner_type=a.commissioner_type,
                              population_m=a.population_m) for a in AREAS])
        session.commit()
    world = SimpleNamespace(areas=list(AREAS), months=36, start="2023-01", seed=20231)
    links = write_system_measures(world, home / "var" / "system")
    result = CliRunner().invoke(cli, ["system", "load", "--home", str(home), str(home / "var" / "system"), "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["files"]) == 36
    return home, links


def test_links_json_lists_the_injected_link_for_its_area(home):
    path, truth = home
    link = truth[0]
    result = CliRunner().invoke(cli, ["links", "--home", str(path), "--area", link["area_code"], "--json"])
    assert result.exit_code == 0, result.output
    links = json.loads(result.output)
    match = [d for d in links if d["cause"] == link["cause"] and d["effect"] == link["effect"]]
    assert match and match[0]["lag_months"] == link["lag_months"] and match[0]["q_value"] < 0.05
    assert set(match[0]) >= {"cause", "effect", "lag_months", "estimate", "ci_low", "ci_high", "q_value"}
    assert "associated with" in match[0]["headline"] and "caus" not in match[0]["headline"]


def test_pathway_json_and_text(home):
    path, _ = home
    result = CliRunner().invoke(cli, ["pathway", "--home", str(path), "--area", "E23000039", "--period", "2025-12",
                                      "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [s["stage"] for s in data["stages"]][:2] == ["recorded_crime", "charge"]
    assert data["stages"][0]["volume"] > 10_000 and len(data["similar_areas"]) == 7
    assert data["stages"][-1]["window"] == ["2024-04", "2024-06"]  # reoffending: published 18 months later
    text = CliRunner().invoke(cli, ["pathway", "--home", str(path), "--area", "E23000039", "--period", "2025-12"])
    assert text.exit_code == 0 and "Crimes recorded" in text.output and "not one group of people" in text.output


def test_bad_input_is_a_clean_error(home, tmp_path):
    path, _ = home
    result = CliRunner().invoke(cli, ["pathway", "--home", str(path), "--area", "E99999999", "--period", "2025-12"])
    assert result.exit_code == 2 and "no system measures are stored for area E99999999" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("area_code,period,agency,measure,numerator,denominator,value,unit\n"
                   "E23000039,2025-13,police,recorded_crime,10,,10,count\n")
    result = CliRunner().invoke(cli, ["system", "load", "--home", str(path), str(bad)])
    assert result.exit_code == 2 and "row 2, column period" in result.output
