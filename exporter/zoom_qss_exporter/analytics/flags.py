"""``--analytics.*``: the quality analytics' files and caps."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from zoom_qss_exporter.analytics.collector import MAX_ACCOUNT, AnalyticsLimits
from zoom_qss_exporter.analytics.sites import SitesFile, load_sites
from zoom_qss_exporter.analytics.thresholds import QualityThresholds, load_thresholds, read_yaml
from zoom_qss_exporter.flags import ConfigError, env_flag, env_switch, positive_int


@dataclass(frozen=True)
class AnalyticsSettings:
    sites_file: Path | None = None
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    accounts: Mapping[str, str] = field(default_factory=dict)  # account id -> name
    max_rows: int = AnalyticsLimits.max_rows
    max_participants: int = AnalyticsLimits.max_participants


def add_site_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """``--analytics.enabled`` and ``--analytics.sites-file``: shared by ``serve`` and
    ``replay`` (which must give participants the site the exporter gave them)."""
    env_switch(
        parser,
        environ,
        "--analytics.enabled",
        True,
        "Quality analytics: stream-minutes good and poor by site, network, account, client "
        "and data center, with a likely cause (docs/analytics.md).",
    )
    env_flag(
        parser,
        environ,
        "--analytics.sites-file",
        str,
        "",
        "YAML file of sites and their subnets (docs/analytics.md); reloaded on SIGHUP and "
        "when it changes. Empty: every participant's site is external or unknown.",
    )


def sites_from_args(args: argparse.Namespace) -> SitesFile | None:
    """The sites file, loaded (SitesError names the line); None when the analytics are off."""
    if not getattr(args, "analytics.enabled"):
        return None
    path = getattr(args, "analytics.sites_file")
    sites = SitesFile(Path(path) if path else None)
    sites.load(0.0)
    return sites


def add_analytics_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    flag = partial(env_flag, parser, environ)
    add_site_arguments(parser, environ)
    flag(
        "--analytics.thresholds-file",
        str,
        "",
        "YAML file of the thresholds of a poor stream-minute and of its causes, in the "
        "format of the shipped quality.yaml (docs/analytics.md). Empty: the shipped one.",
    )
    flag(
        "--analytics.accounts-file",
        str,
        "",
        "YAML file naming Zoom accounts (accounts: [{id: ..., name: ...}]): the account "
        "label shows the name instead of the id. Empty: the ids.",
    )
    flag(
        "--analytics.max-rows",
        positive_int,
        str(AnalyticsLimits.max_rows),
        "Cap on label combinations per analytics family; past it new ones fold into "
        "other (counted in zoom_qss_exporter_analytics_folds_total).",
    )
    flag(
        "--analytics.max-participants",
        positive_int,
        str(AnalyticsLimits.max_participants),
        "Cap on participants whose site, network and client are remembered between events.",
    )


def analytics_from_args(args: argparse.Namespace) -> AnalyticsSettings | None:
    """None when switched off. Reads and checks every file now: a bad one stops the start."""
    if not getattr(args, "analytics.enabled"):
        return None
    sites = getattr(args, "analytics.sites_file")
    thresholds = getattr(args, "analytics.thresholds_file")
    accounts = getattr(args, "analytics.accounts_file")
    if sites:
        load_sites(Path(sites))  # SitesError names the line
    return AnalyticsSettings(
        sites_file=Path(sites) if sites else None,
        thresholds=load_thresholds(Path(thresholds)) if thresholds else load_thresholds(),
        accounts=load_accounts(Path(accounts)) if accounts else {},
        max_rows=getattr(args, "analytics.max_rows"),
        max_participants=getattr(args, "analytics.max_participants"),
    )


def load_accounts(path: Path) -> dict[str, str]:
    """``accounts: [{id: abc123, name: Europe}, ...]``."""
    raw = read_yaml(path)
    entries = raw.get("accounts") if isinstance(raw, dict) and set(raw) == {"accounts"} else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: a mapping with one key, 'accounts' (a list), is required")
    names: dict[str, str] = {}
    for number, entry in enumerate(entries, 1):
        ok = isinstance(entry, dict) and set(entry) == {"id", "name"}
        account, name = (entry.get("id"), entry.get("name")) if ok else (None, None)
        if not (isinstance(account, str) and isinstance(name, str) and account and name):
            raise ConfigError(f"{path}: accounts entry {number}: 'id' and 'name' (texts)")
        if len(name) > MAX_ACCOUNT or not name.isprintable():
            raise ConfigError(
                f"{path}: accounts entry {number}: a name of at most {MAX_ACCOUNT} printable "
                "characters"
            )
        if account in names:
            raise ConfigError(f"{path}: accounts entry {number}: id {account!r} is repeated")
        names[account] = name
    return names
