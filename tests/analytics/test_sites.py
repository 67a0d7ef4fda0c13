from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoom_qss_exporter.analytics.sites import SitesError, SitesFile, load_sites

SITES = """\
sites:
  - name: Paris HQ
    subnets: [10.20.0.0/16, 198.51.100.0/24]
  - name: Paris Lab
    subnets: [10.20.30.0/24]
  - name: Tokyo
    subnets:
      - fd00:1::/48
      - 2001:db8:10::/48
"""


@pytest.fixture
def sites_path(tmp_path: Path) -> Path:
    path = tmp_path / "sites.yaml"
    path.write_text(SITES)
    return path


def test_the_longest_prefix_wins(sites_path: Path) -> None:
    sites = load_sites(sites_path)
    assert sites.names == ["Paris HQ", "Paris Lab", "Tokyo"]
    assert sites.match(["10.20.1.5"], "") == ("Paris HQ", 0)
    assert sites.match(["10.20.30.7"], "") == ("Paris Lab", 0)
    # of several internal addresses, the longest match among them
    assert sites.match(["10.20.1.5", "10.20.30.7"], "") == ("Paris Lab", 0)
    assert sites.match(["10.20.30.7", "10.20.1.5"], "") == ("Paris Lab", 0)


def test_ipv6_and_mapped_and_zoned_addresses(sites_path: Path) -> None:
    sites = load_sites(sites_path)
    assert sites.match(["fd00:1:0:5::17"], "") == ("Tokyo", 0)
    assert sites.match(["fe80::1%en0"], "2001:db8:10::9") == ("Tokyo", 0)
    assert sites.match(["::ffff:10.20.30.1"], "") == ("Paris Lab", 0)


def test_internal_addresses_come_before_the_public_one(sites_path: Path) -> None:
    sites = load_sites(sites_path)
    assert sites.match(["10.20.30.7"], "2001:db8:10::9") == ("Paris Lab", 0)
    # a home network matches nothing: the office egress address decides
    assert sites.match(["192.168.1.20"], "198.51.100.14") == ("Paris HQ", 0)


def test_external_and_unknown(sites_path: Path) -> None:
    sites = load_sites(sites_path)
    assert sites.match(["192.168.1.20"], "203.0.113.9") == ("external", 0)
    assert sites.match([], "203.0.113.9") == ("external", 0)
    assert sites.match([], "") == ("unknown", 0)


def test_malformed_addresses_are_ignored_and_counted(sites_path: Path) -> None:
    sites = load_sites(sites_path)
    assert sites.match(["10.20.999.1", "not an ip", "10.20.1.1"], "") == ("Paris HQ", 2)
    assert sites.match(["garbage"], "") == ("unknown", 1)
    assert sites.match(["garbage"], "also garbage") == ("unknown", 2)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("sites: [\n", 0, "not valid YAML"),
        ("- a\n", 1, "a mapping with a 'sites' list"),
        ("places: []\n", 1, "unknown key 'places'"),
        ("sites: 3\n", 1, "'sites' must be a list"),
        (
            "sites:\n  - name: A\n    subnets: [10.0.0.0/8]\n  - just text\n",
            4,
            "a site is a mapping",
        ),
        ("sites:\n  - subnets: [10.0.0.0/8]\n", 2, "has no 'name'"),
        ("sites:\n  - name: A\n    subnet: [10.0.0.0/8]\n", 3, "unknown key 'subnet'"),
        ("sites:\n  - name: A\n", 2, "needs a non-empty 'subnets' list"),
        ("sites:\n  - name: A\n    subnets: []\n", 3, "needs a non-empty 'subnets' list"),
        ("sites:\n  - name: A\n    subnets:\n      - 10.0.0.0/33\n", 4, "is not a subnet"),
        ("sites:\n  - name: A\n    subnets:\n      - 10.0.0.1/8\n", 4, "did you mean 10.0.0.0/8"),
        ("sites:\n  - name: A\n    subnets:\n      - 10\n", 4, "written like 10.20.0.0/16"),
        ("sites:\n  - name: external\n    subnets: [10.0.0.0/8]\n", 2, "is reserved"),
        ("sites:\n  - name: ''\n    subnets: [10.0.0.0/8]\n", 2, "1 to 64 printable"),
        (
            "sites:\n  - name: A\n    subnets: [10.0.0.0/8]\n"
            "  - name: A\n    subnets: [11.0.0.0/8]\n",
            4,
            "site 'A' is also at",
        ),
        (
            "sites:\n  - name: A\n    subnets: [10.0.0.0/8]\n  - name: B\n    subnets:\n"
            "      - 10.0.0.0/8\n",
            6,
            "already a subnet of 'A'",
        ),
    ],
)
def test_a_bad_file_is_refused_naming_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    with pytest.raises(SitesError, match=message) as raised:
        load_sites(path)
    if line:
        assert f"{path}:{line}:" in str(raised.value)


def test_an_empty_file_or_list_has_no_sites(tmp_path: Path) -> None:
    for text in ("", "sites:\n", "sites: []\n"):
        path = tmp_path / "sites.yaml"
        path.write_text(text)
        sites = load_sites(path)
        assert len(sites) == 0 and sites.match(["10.0.0.1"], "") == ("external", 0)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SitesError, match="cannot read"):
        load_sites(tmp_path / "missing.yaml")


def test_a_changed_file_is_reloaded_and_a_bad_one_keeps_the_sites(sites_path: Path) -> None:
    file = SitesFile(sites_path)
    file.load(now=100.0)
    assert not file.reload_if_changed(101.0)  # unchanged
    sites_path.write_text(SITES + "  - name: Lyon\n    subnets: [10.40.0.0/16]\n")
    assert file.reload_if_changed(102.0)
    assert file.sites.match(["10.40.1.1"], "") == ("Lyon", 0)
    assert file.reloads == {"success": 1, "failure": 0}
    sites_path.write_text("sites:\n  - name: Lyon\n")
    assert not file.reload_if_changed(103.0)
    assert file.reloads == {"success": 1, "failure": 1}
    assert "needs a non-empty 'subnets' list" in file.last_error
    assert file.sites.match(["10.40.1.1"], "") == ("Lyon", 0)  # the old sites stay
    assert not file.reload_if_changed(104.0)  # a bad file is not retried until it changes
    sites_path.write_text(SITES)
    os.utime(sites_path, ns=(1, 1))  # a change the size alone would not show
    assert file.reload_if_changed(105.0)
    assert file.last_error == "" and len(file.sites) == 3


def test_no_file_means_no_sites() -> None:
    file = SitesFile(None)
    file.load(1.0)
    assert not file.reload(2.0) and not file.reload_if_changed(3.0)
    assert file.sites.match(["10.0.0.1"], "") == ("external", 0)
