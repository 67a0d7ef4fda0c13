"""Sites (Teams CQD's "building data"): named offices with their subnets, and the site of a
participant by longest-prefix match of the addresses Zoom reports. Addresses are only matched,
never kept."""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from zoom_qss_exporter.analytics.dimensions import OTHER, UNKNOWN
from zoom_qss_exporter.flags import ConfigError

log = logging.getLogger("zoom_qss_exporter")

EXTERNAL = "external"
RESERVED = frozenset({EXTERNAL, UNKNOWN, OTHER})
MAX_NAME = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SitesError(ConfigError):
    """A sites file that cannot be used; the message names the file and line."""


class Sites:
    """A longest-prefix table: per IP version, prefix length -> network number -> site."""

    def __init__(self, subnets: Iterable[tuple[Network, str]] = ()) -> None:
        self.names: list[str] = []
        self._tables: dict[int, dict[int, dict[int, str]]] = {4: {}, 6: {}}
        for network, name in subnets:
            if name not in self.names:
                self.names.append(name)
            bits = network.max_prefixlen
            table = self._tables[network.version].setdefault(network.prefixlen, {})
            table[int(network.network_address) >> (bits - network.prefixlen)] = name
        self._lengths = {
            version: sorted(table, reverse=True) for version, table in self._tables.items()
        }

    def __len__(self) -> int:
        return len(self.names)

    def lookup(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[str, int]:
        """The site of the longest prefix holding ``address`` and that prefix's length;
        ("", -1) when none holds it."""
        number, bits = int(address), address.max_prefixlen
        tables = self._tables[address.version]
        for length in self._lengths[address.version]:
            name = tables[length].get(number >> (bits - length))
            if name is not None:
                return name, length
        return "", -1

    def match(self, internal: Iterable[str], public: str) -> tuple[str, int]:
        """(site, malformed addresses seen). The longest prefix over the internal addresses,
        else the public one; ``external`` when an address is known and no site holds it,
        ``unknown`` when none is."""
        malformed, best, best_length, known = 0, "", -1, False
        for text in internal:
            address = parse_address(text)
            if address is None:
                malformed += 1
                continue
            known = True
            name, length = self.lookup(address)
            if length > best_length:
                best, best_length = name, length
        if best:
            return best, malformed
        if public:
            address = parse_address(public)
            if address is None:
                malformed += 1
            else:
                known = True
                name, _ = self.lookup(address)
                if name:
                    return name, malformed
        return (EXTERNAL if known else UNKNOWN), malformed


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IPv4 or IPv6 address as Zoom writes it; an IPv6 zone ("%en0") is dropped and an
    IPv4-mapped IPv6 address is read as the IPv4 one."""
    try:
        address = ipaddress.ip_address(text.strip().partition("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def load_sites(path: Path) -> Sites:
    """The sites of a YAML file::

        sites:
          - name: Paris HQ
            subnets: [10.20.0.0/16, 198.51.100.0/24]

    Raises :class:`SitesError` naming the line of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SitesError(f"{path}: cannot read: {error}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as error:
        raise SitesError(f"{path}: not valid YAML: {error}") from None
    return Sites(_subnets(path, root))


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _scalar(node: yaml.Node) -> str | None:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
        return str(node.value)
    return None


def _subnets(path: Path, root: yaml.Node | None) -> list[tuple[Network, str]]:
    if root is None:
        return []  # an empty file: no sites
    if not isinstance(root, yaml.MappingNode):
        raise SitesError(f"{_where(path, root)}: a mapping with a 'sites' list is required")
    sites_node: yaml.Node | None = None
    for key, value in root.value:
        if _scalar(key) != "sites":
            raise SitesError(f"{_where(path, key)}: unknown key {key.value!r} (only 'sites')")
        sites_node = value
    if sites_node is None or (
        isinstance(sites_node, yaml.ScalarNode) and sites_node.tag.endswith(":null")
    ):
        return []
    if not isinstance(sites_node, yaml.SequenceNode):
        raise SitesError(f"{_where(path, sites_node)}: 'sites' must be a list")
    out: list[tuple[Network, str]] = []
    named: dict[str, str] = {}  # name -> where
    owners: dict[Network, tuple[str, str]] = {}  # subnet -> (site, where)
    for site in sites_node.value:
        name, subnets = _site(path, site)
        if name in named:
            raise SitesError(f"{_where(path, site)}: site {name!r} is also at {named[name]}")
        named[name] = _where(path, site)
        for network, node in subnets:
            if network in owners:
                other, where = owners[network]
                raise SitesError(
                    f"{_where(path, node)}: {network} is already a subnet of {other!r} "
                    f"({where}); a subnet belongs to one site (a longer prefix may go to another)"
                )
            owners[network] = (name, _where(path, node))
            out.append((network, name))
    return out


def _site(path: Path, node: yaml.Node) -> tuple[str, list[tuple[Network, yaml.Node]]]:
    if not isinstance(node, yaml.MappingNode):
        raise SitesError(f"{_where(path, node)}: a site is a mapping with 'name' and 'subnets'")
    fields = {}
    for key, value in node.value:
        label = _scalar(key)
        if label not in ("name", "subnets"):
            raise SitesError(f"{_where(path, key)}: unknown key {key.value!r} in a site")
        fields[label] = value
    if "name" not in fields:
        raise SitesError(f"{_where(path, node)}: the site has no 'name'")
    name_node = fields["name"]
    name = (_scalar(name_node) or "").strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise SitesError(
            f"{_where(path, name_node)}: a site's name is a text of 1 to {MAX_NAME} printable "
            "characters"
        )
    if name.lower() in RESERVED:
        raise SitesError(
            f"{_where(path, name_node)}: {name!r} is reserved (the exporter uses "
            f"{', '.join(sorted(RESERVED))})"
        )
    subnets_node = fields.get("subnets")
    if not isinstance(subnets_node, yaml.SequenceNode) or not subnets_node.value:
        where = _where(path, subnets_node if subnets_node is not None else node)
        raise SitesError(f"{where}: site {name!r} needs a non-empty 'subnets' list")
    subnets = []
    for item in subnets_node.value:
        text = _scalar(item)
        if text is None:
            raise SitesError(f"{_where(path, item)}: a subnet is written like 10.20.0.0/16")
        subnets.append((_network(text.strip(), _where(path, item)), item))
    return name, subnets


def _network(text: str, where: str) -> Network:
    try:
        return ipaddress.ip_network(text)
    except ValueError:
        pass
    try:
        meant = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise SitesError(
            f"{where}: {text!r} is not a subnet (e.g. 10.20.0.0/16, fd00:1::/48)"
        ) from None
    raise SitesError(f"{where}: {text!r} has host bits set; did you mean {meant}?")


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


@dataclass
class SitesFile:
    """The sites file in force: loaded at start (a bad file stops the start), reloaded on
    SIGHUP and when it changes; a bad reload keeps the sites in force."""

    path: Path | None
    sites: Sites = field(default_factory=Sites)
    reloads: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    last_error: str = ""
    loaded_at: float = 0.0
    _seen: tuple[int, int, int, int] | None = None

    def load(self, now: float) -> None:
        """The first load: raises :class:`SitesError`."""
        if self.path is None:
            return
        self._seen = _signature(self.path)
        self.sites = load_sites(self.path)
        self.loaded_at = now

    def reload(self, now: float) -> bool:
        if self.path is None:
            return False
        self._seen = _signature(self.path)
        try:
            sites = load_sites(self.path)
        except SitesError as error:
            self.reloads["failure"] += 1
            self.last_error = str(error)
            log.warning(
                "sites file not reloaded, the %d sites in force stay: %s", len(self.sites), error
            )
            return False
        self.sites, self.last_error, self.loaded_at = sites, "", now
        self.reloads["success"] += 1
        log.info("sites file %s reloaded: %d sites", self.path, len(sites))
        return True

    def reload_if_changed(self, now: float) -> bool:
        if self.path is None or _signature(self.path) == self._seen:
            return False
        return self.reload(now)
