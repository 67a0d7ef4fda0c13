"""The analytics counters: every stream-minute counted once, good or poor with a cause, by
site, network, account, client and data center (docs/analytics.md).

Fed by the pipeline with the samples the fleet ledger counted for the first time, so Zoom's
redeliveries never count twice; exposed on ``/metrics`` like the fleet counters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from zoom_qss_exporter.analytics import dimensions as d
from zoom_qss_exporter.analytics.classify import GOOD, stream_cause, summary_poor
from zoom_qss_exporter.analytics.profiles import Profile, Profiles
from zoom_qss_exporter.analytics.rows import RowTable
from zoom_qss_exporter.analytics.sites import SitesFile
from zoom_qss_exporter.analytics.thresholds import QualityThresholds
from zoom_qss_exporter.families import PARTICIPANT_INFO
from zoom_qss_exporter.samples import ClientReport, Conversion, FleetSample

MAX_ACCOUNT = 64  # characters of an account id or name used as a label
MAX_ACCOUNTS_SEEN = 256  # ids whose label is remembered (the rest are looked up each time)


@dataclass(frozen=True)
class AnalyticsLimits:
    max_rows: int = 10_000  # per family
    max_participants: int = 500_000  # profiles remembered
    max_data_centers: int = 100
    max_versions: int = 100
    max_accounts: int = 50
    window: float = 5400.0  # seconds a quiet participant's profile is kept (1 to 2 of them)


@dataclass
class AnalyticsOptions:
    thresholds: QualityThresholds = field(default_factory=QualityThresholds)
    sites: SitesFile = field(default_factory=lambda: SitesFile(None))
    accounts: Mapping[str, str] = field(default_factory=dict)  # account id -> name
    limits: AnalyticsLimits = field(default_factory=AnalyticsLimits)


def _table(family: str, what: str, labels: tuple[str, ...], limit: int) -> RowTable:
    prefix = f"zoom_qos_{family}_" if family != "site" else "zoom_qos_"
    return RowTable(
        family,
        (f"{prefix}stream_minutes", f"Media stream-minutes, each counted once, by {what}."),
        (
            f"{prefix}poor_stream_minutes",
            f"Poor media stream-minutes by likely cause and {what} (docs/analytics.md).",
        ),
        labels,
        limit,
    )


class QualityAnalytics(Collector):
    def __init__(self, options: AnalyticsOptions) -> None:
        self.options = options
        limits = options.limits
        rows = limits.max_rows
        self.sites = options.sites
        self.site = _table(
            "site",
            "site, network type and account",
            ("product", "account", "site", "network_type"),
            rows,
        )
        self.client = _table(
            "client", "client platform and version", ("product", "platform", "version"), rows
        )
        self.path = _table(
            "path",
            "Zoom data center, connection type and media",
            ("product", "data_center", "connection_type", "media"),
            rows,
        )
        self.participations = RowTable(
            "participations",
            ("zoom_qos_participations", "Participations that ended (*_qos_summary), each once."),
            (
                "zoom_qos_poor_participations",
                "Participations whose summary is poor (docs/analytics.md).",
            ),
            ("product", "account", "site", "network_type"),
            rows,
            causes=False,
        )
        self.calls = RowTable(
            "calls",
            (
                "zoom_phone_calls",
                "Zoom Phone calls summarised (phone.call_qos_summary), each once.",
            ),
            (
                "zoom_phone_poor_calls",
                "Zoom Phone calls whose summary is poor (docs/analytics.md).",
            ),
            ("account",),
            rows,
            causes=False,
        )
        self.tables = (self.site, self.client, self.path, self.participations, self.calls)
        self.profiles = Profiles(limits.window, limits.max_participants)
        self.data_centers = d.Vocabulary(limits.max_data_centers)
        self.versions = d.Vocabulary(limits.max_versions)
        self.accounts = d.Vocabulary(limits.max_accounts)
        self.invalid_addresses = 0
        self._account_names: dict[str, str] = {}

    # --- feeding --------------------------------------------------------------------------

    def place(self, conversion: Conversion) -> None:
        """The site of a ``*_data`` event's participant, into the conversion and its info
        series (so that alerts and dashboards can select by site); its addresses go no
        further."""
        client, owner = conversion.client, conversion.owner
        if client is None or owner is None or owner[0] == "phone":
            return
        site, malformed = self.sites.sites.match(client.internal_addresses, client.public_address)
        self.invalid_addresses += malformed
        conversion.site = site
        for update in conversion.info:
            if update.family is PARTICIPANT_INFO and update.values:
                update.values["site"] = site

    def observe(self, conversion: Conversion, fresh: list[FleetSample], new_summary: bool) -> None:
        """``fresh``: the conversion's fleet samples counted for the first time;
        ``new_summary``: its summary (if any) is not a redelivery."""
        account = self.account(conversion.account)
        owner = conversion.owner
        if owner is None or owner[0] == "phone":
            self._phone(conversion, fresh, account, new_summary)
            return
        key = hash(owner)
        product = owner[0]
        if conversion.client is not None:
            profile = self._profile(conversion.client, conversion.site)
            self.profiles.put(key, profile)
            self._open_rows(product, account, profile)
        else:
            profile = self.profiles.get(key)
        if fresh:
            self._minutes(conversion, fresh, product, account, profile)
        if conversion.summary and new_summary:
            row = self.participations.row((product, account, profile.site, profile.network_type))
            row[0] += 1
            if summary_poor(conversion.summary, self.options.thresholds):
                row[1] += 1

    def _open_rows(self, product: str, account: str, profile: Profile) -> None:
        """The rows a participant will count into, at 0 from its ``*_data`` event on (Zoom
        sends it as the participant joins): ``rate()`` sees a counter's rise only from a
        sample before it, so a combination's first minute and first participation count."""
        self.site.row((product, account, profile.site, profile.network_type))
        self.participations.row((product, account, profile.site, profile.network_type))
        self.client.row((product, profile.platform, profile.version))
        for media in d.MEDIA:
            self.path.row((product, profile.data_center, profile.connection_type, media))

    def _minutes(
        self,
        conversion: Conversion,
        fresh: list[FleetSample],
        product: str,
        account: str,
        profile: Profile,
    ) -> None:
        t = self.options.thresholds
        rssi, cpu, network = conversion.wifi_rssi, conversion.cpu_usage, profile.network_type
        site_row = client_row = None
        path_rows: dict[str, list[float]] = {}
        for s in fresh:
            if s.qos_type not in d.MEDIA_TYPES:
                continue
            if site_row is None:
                site_row = self.site.row((product, account, profile.site, network))
                client_row = self.client.row((product, profile.platform, profile.version))
            media = d.media(s.qos_type)
            path_row = path_rows.get(media)
            if path_row is None:
                path_row = path_rows[media] = self.path.row(
                    (product, profile.data_center, profile.connection_type, media)
                )
            assert client_row is not None
            site_row[0] += 1
            client_row[0] += 1
            path_row[0] += 1
            cause = stream_cause(s.latency, s.jitter, s.loss, s.mos, rssi, cpu, network, t)
            if cause != GOOD:
                site_row[1 + cause] += 1
                client_row[1 + cause] += 1
                path_row[1 + cause] += 1

    def _phone(
        self, conversion: Conversion, fresh: list[FleetSample], account: str, new_summary: bool
    ) -> None:
        t = self.options.thresholds
        client = conversion.client
        network = d.network_type(client.network_type) if client is not None else d.UNKNOWN
        if client is not None:  # a call's samples come before its summary: open its row
            self.calls.row((account,))
        if fresh:
            row = self.site.row(("phone", account, d.UNKNOWN, network))
            for s in fresh:
                row[0] += 1
                cause = stream_cause(s.latency, s.jitter, s.loss, s.mos, None, None, network, t)
                if cause != GOOD:
                    row[1 + cause] += 1
        if conversion.summary and new_summary:
            call = self.calls.row((account,))
            call[0] += 1
            if summary_poor(conversion.summary, t):
                call[1] += 1

    def _profile(self, client: ClientReport, site: str) -> Profile:
        return Profile(
            site or d.UNKNOWN,
            d.network_type(client.network_type),
            d.connection_type(client.connection_type),
            self.data_centers(d.data_center(client.data_center)),
            d.platform(client.device, client.client),
            self.versions(d.version(client.version)),
        )

    def account(self, account_id: str) -> str:
        """The account's configured name, else its id; ``unknown`` when the event has none."""
        known = self._account_names.get(account_id)
        if known is not None:
            return known
        text = account_id.strip()
        if not text:
            name = d.UNKNOWN
        else:
            name = self.options.accounts.get(text) or text
            name = self.accounts(name if len(name) <= MAX_ACCOUNT else d.OTHER)
        # remembered for the next event: a bounded number of ids, none of them long
        if len(account_id) <= MAX_ACCOUNT and len(self._account_names) < 4 * MAX_ACCOUNTS_SEEN:
            self._account_names[account_id] = name
        return name

    def expire(self, now: float) -> None:
        self.profiles.expire(now)

    # --- exposing ---------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        for table in self.tables:
            yield from table.collect()
        rows = GaugeMetricFamily(
            "zoom_qss_exporter_analytics_rows",
            "Label combinations held per analytics family (at most --analytics.max-rows each).",
            labels=["family"],
        )
        folds = CounterMetricFamily(
            "zoom_qss_exporter_analytics_folds",
            "New label combinations (family site, client, path, participations, calls) or "
            "values (data_center, version, account) folded into other past their cap, and "
            "participants not remembered past --analytics.max-participants (participants).",
            labels=["family"],
        )
        for table in self.tables:
            rows.add_metric([table.family], len(table))
            folds.add_metric([table.family], table.folds)
        for name, vocabulary in (
            ("data_center", self.data_centers),
            ("version", self.versions),
            ("account", self.accounts),
        ):
            folds.add_metric([name], vocabulary.folds)
        folds.add_metric(["participants"], self.profiles.dropped)
        yield rows
        yield folds
        yield GaugeMetricFamily(
            "zoom_qss_exporter_analytics_participants",
            "Participants whose site, network and client the analytics remember.",
            value=len(self.profiles),
        )
        yield CounterMetricFamily(
            "zoom_qss_exporter_analytics_invalid_addresses",
            "IP addresses in *_data events that could not be read (ignored).",
            value=self.invalid_addresses,
        )
        yield GaugeMetricFamily(
            "zoom_qss_exporter_analytics_sites",
            "Sites in force from --analytics.sites-file.",
            value=len(self.sites.sites),
        )
        reloads = CounterMetricFamily(
            "zoom_qss_exporter_analytics_sites_reloads",
            "Reloads of --analytics.sites-file (on SIGHUP or a change), by result.",
            labels=["result"],
        )
        for result, count in self.sites.reloads.items():
            reloads.add_metric([result], count)
        yield reloads
