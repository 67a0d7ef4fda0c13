"""The alerts: a severity ladder over bounded entities.

- ``critical`` (pages): the exporter down or silent; the error budget of the good
  stream-minutes objective burning fast (multi-window, multi-burn-rate); a site far above its
  own baseline with many people affected.
- ``warning`` (tickets): the budget burning slowly; a meeting with several poor participants; a
  network type, Zoom data center or client version above its baseline; the exporter's own
  troubles.
- ``info`` (routed to no one; the alerts page and Grafana): one per poor participant and per
  poor call party, and the exporter near its series cap.

Every alert has ``severity``, ``summary``, a ``description`` templated from its own labels only
(no ``query`` in annotations: the labels people need come in through the expression, with
``group_left``), a ``dashboard_url`` that opens the dashboard that explains it with its
variables set and, when ``runbook_url`` is configured, a link to its section of the runbook.
"""

from __future__ import annotations

from urllib.parse import urlencode

from .config import BurnRate, Config, Duration
from .dashboards.common import EXPORTER_UID, MEETING_UID, PHONE_UID, TRENDS_UID
from .rules import PARTICIPANT, Group, Rule, milliseconds, number, percent
from .slo import REGRESSIONS, SITE, Comparison, slo_window

MEETING = "product, meeting_id"
CALL_PARTY = "call_id, user_id, role"
# What the participant alert takes from zoom_participant_info: who, where, with what.
PARTICIPANT_INFO = (
    "user_name",
    "meeting_number",
    "session_name",
    "site",
    "network_type",
    "data_center",
    "client_version",
)
EXCLUDED = "unknown|other"  # analytics values that name no place, network or client
SITE_ALERT = SITE.alert
PARTICIPANT_ALERT = "ZoomParticipantPoorQuality"
MEETING_ALERT = "ZoomMeetingPoorQuality"
PHONE_ALERT = "ZoomPhoneCallPoorQuality"
BURN_ALERT = "ZoomQualityErrorBudgetBurn"


def alert_groups(config: Config) -> list[Group]:
    return [
        {"name": "zoom-qss-slo.alerts", "rules": _burn_rate_alerts(config)},
        {"name": "zoom-qss-sites.alerts", "rules": _comparison_alerts(config)},
        {"name": "zoom-qss-meetings.alerts", "rules": _meeting_alerts(config)},
        {"name": "zoom-qss-exporter.alerts", "rules": _exporter_alerts(config)},
    ]


# --- links ---------------------------------------------------------------------------------------


def dashboard_url(config: Config, uid: str, fixed: dict[str, str], labels: dict[str, str]) -> str:
    """``<grafana_url>/d/<uid>?var-...``: ``fixed`` variables as given, ``labels`` variables
    from the alert's label of that name (URL-encoded when Prometheus renders it; left out when
    the alert has no such label)."""
    query = urlencode({f"var-{name}": value for name, value in fixed.items()})
    parts = [query] if query else []
    for variable, label in labels.items():
        parts.append(f"var-{variable}={{{{ $labels.{label} | urlquery }}}}")
    url = f"{config.grafana_url}/d/{uid}"
    return url + "?" + "&".join(parts) if parts else url


def _optional(variable: str, label: str) -> str:
    """``&var-x=<label>`` where the alert has the label (absent labels render as nothing)."""
    return f"{{{{ with $labels.{label} }}}}&var-{variable}={{{{ . | urlquery }}}}{{{{ end }}}}"


def _alert(
    config: Config,
    name: str,
    expr: str,
    duration: Duration,
    severity: str,
    summary: str,
    description: str,
    dashboard: str,
    *,
    keep_firing_for: Duration | None = None,
    labels: dict[str, str] | None = None,
) -> Rule:
    rule: Rule = {"alert": name, "expr": expr, "for": duration.text}
    if keep_firing_for is not None:
        rule["keep_firing_for"] = keep_firing_for.text
    rule["labels"] = {"severity": severity, **(labels or {})}
    annotations = {"summary": summary, "description": description, "dashboard_url": dashboard}
    if config.runbook_url:
        annotations["runbook_url"] = f"{config.runbook_url}#{name.lower()}"
    rule["annotations"] = annotations
    return rule


# --- the error budget ----------------------------------------------------------------------------

_TRENDS_WINDOW = {"1h": 3600, "1d": 86400, "7d": 7 * 86400}  # the Trends dashboard's windows


def _trends_window(window: Duration) -> str:
    """The Trends dashboard's window that covers ``window`` best (30d at most)."""
    for text, seconds in _TRENDS_WINDOW.items():
        if window.seconds <= seconds:
            return text
    return "30d"


def _burn_rate_alerts(config: Config) -> list[Rule]:
    return [_burn_rate_alert(config, rate) for rate in config.burn_rates]


def _burn_rate_alert(config: Config, rate: BurnRate) -> Rule:
    long, short = slo_window(config, rate.long), slo_window(config, rate.short)
    objective = number(config.slo_objective)
    limit = f"({number(rate.factor)} * (1 - {objective}))"
    by = long.by
    people = f"{long.total} * 60 / {number(config.streams_per_person)}"
    share = percent(rate.factor * config.error_budget)
    return _alert(
        config,
        BURN_ALERT,
        f"{long.share} > {limit}\nand on ({by})\n{short.share} > {limit}\n"
        f"and on ({by})\n{people} >= {number(config.slo_min_people)}\n",
        rate.for_,
        rate.severity,
        f"Zoom call quality is burning its error budget {number(rate.factor)}x too fast.",
        "{{ $value | humanizePercentage }} of the stream-minutes of {{ $labels.product }} in "
        f"account {{{{ $labels.account }}}} were poor over the last {rate.long.text} (and over "
        f"{rate.short.text}, above {share} too): at {number(rate.factor)}x the error budget "
        f"of the {percent(config.slo_objective)} good stream-minutes objective.",
        dashboard_url(
            config,
            TRENDS_UID,
            {"window": _trends_window(rate.long)},
            {"product": "product", "account": "account"},
        ),
        labels={"long": rate.long.text, "short": rate.short.text},
    )


# --- sites, network types, data centers, client versions -----------------------------------------


def _comparison_alerts(config: Config) -> list[Rule]:
    rules = [_comparison_alert(config, SITE, "critical")]
    rules += [_comparison_alert(config, regression, "warning") for regression in REGRESSIONS]
    return rules


def _comparison_alert(config: Config, comparison: Comparison, severity: str) -> Rule:
    """The share now at least max(baseline x factor, baseline + min_increase), or min_increase
    where there is no baseline yet, with at least min_people people poor."""
    settings = config.site if comparison is SITE else config.regression
    now = comparison.now(settings.window)
    base = comparison.base(settings.window)
    baseline = base.baseline(settings.baseline)
    factor, increase = number(settings.factor), number(settings.min_increase)
    share = f'{now.share}{{{comparison.known}!~"{EXCLUDED}"}}'
    threshold = (
        f"    0 * {now.share}\n    + on ({base.by}) group_left ()\n    (\n"
        f"        {baseline} * {factor}\n        >= {baseline} + {increase}\n      or\n"
        f"        {baseline} + {increase}\n    )\n  or\n    0 * {now.share} + {increase}\n"
    )
    people = f"{now.poor} * 60 / {number(config.streams_per_person)}"
    expr = (
        f"{share}\n>= on ({now.by})\n(\n{threshold})\n"
        f"and on ({now.by})\n{people} >= {number(settings.min_people)}\n"
    )
    whose = "its platform's" if base.labels != now.labels else "its own"
    names = {
        "site": "site {{ $labels.site }} (account {{ $labels.account }})",
        "network type": "network type {{ $labels.network_type }} (account {{ $labels.account }})",
        "Zoom data center": "Zoom data center {{ $labels.data_center }}",
        "client version": "client version {{ $labels.version }} on {{ $labels.platform }}",
    }
    fixed = {"window": _trends_window(settings.window)}
    account = {"account": "account"} if "account" in now.labels else {}
    return _alert(
        config,
        comparison.alert,
        expr,
        settings.for_,
        severity,
        f"A {comparison.words} has far more poor Zoom calls than usual.",
        f"{{{{ $value | humanizePercentage }}}} of the stream-minutes of {names[comparison.words]} "
        f"were poor over the last {settings.window.text}: at least {factor}x {whose} share of "
        f"the last {settings.baseline.text} and {number(settings.min_increase * 100)} "
        f"percentage points above it, with at least {number(settings.min_people)} people "
        "affected.",
        dashboard_url(config, TRENDS_UID, fixed, account),
    )


# --- meetings, participants, call parties ---------------------------------------------------------


def poor_streams(config: Config) -> str:
    """Each participant with a media stream above a poor threshold, or an audio stream's
    estimated MOS below poor.mos (quality.yaml), once (value 1), by participant."""
    media = f'qos_type=~"{config.media_regex}"'
    conditions = "\n    or ".join(
        (
            f"zoom_qos_latency_seconds{{{media}}} > {number(config.latency.warning)}",
            f"zoom_qos_jitter_seconds{{{media}}} > {number(config.jitter.warning)}",
            f"zoom_qos_packet_loss_avg_ratio{{{media}}} > {number(config.packet_loss.warning)}",
            f"zoom_qos_mos_estimate{{{media}}} < {number(config.mos_warning)}",
        )
    )
    return f"group by ({PARTICIPANT}) (\n    {conditions}\n)"


def _participants(config: Config) -> str:
    """Each participant with a live media stream, once (value 1)."""
    media = f'qos_type=~"{config.media_regex}"'
    return f"group by ({PARTICIPANT}) (zoom_qos_sample_timestamp_seconds{{{media}}})"


def _info(config: Config) -> str:
    """One zoom_participant_info series per live participant (value 1): the info where there is
    one (one of two, if a participant briefly has two), else a series without its labels (no
    ``*_data`` event yet, its info dropped at the series cap): a join on it keeps everyone."""
    return (
        f"topk by ({PARTICIPANT}) (1, zoom_participant_info)\n"
        f"or on ({PARTICIPANT})\n{_participants(config)}"
    )


def _meeting_info(config: Config) -> str:
    """One series per live meeting (value 1), with its meeting_number or session_name where a
    participant's info has one."""
    named = 'zoom_participant_info{meeting_number!=""} or zoom_participant_info{session_name!=""}'
    media = f'qos_type=~"{config.media_regex}"'
    return (
        f"topk by ({MEETING}) (1,\n  group by ({MEETING}, meeting_number, session_name) ({named})"
        f"\n)\nor on ({MEETING})\n"
        f"group by ({MEETING}) (zoom_qos_sample_timestamp_seconds{{{media}}})"
    )


def _indent(text: str, spaces: int = 2) -> str:
    return "\n".join(" " * spaces + line if line else line for line in text.splitlines())


def _meeting_alerts(config: Config) -> list[Rule]:
    return [_meeting_alert(config), _participant_alert(config), _phone_alert(config)]


def _meeting_alert(config: Config) -> Rule:
    meeting = config.meeting
    # Poor participants at a site that pages do not count: the site's page covers them, and
    # Alertmanager cannot inhibit a meeting by a site (a meeting spans sites).
    degraded_site = (
        f"topk by ({PARTICIPANT}) (1, zoom_participant_info)\n"
        f'and on (site)\nALERTS{{alertname="{SITE_ALERT}", alertstate="firing"}}'
    )
    poor = (
        f"count by ({MEETING}) (\n{_indent(poor_streams(config))}\n  unless on ({PARTICIPANT})\n"
        f"  (\n{_indent(degraded_site, 4)}\n  )\n)"
    )
    everyone = f"count by ({MEETING}) ({_participants(config)})"
    share, least = number(meeting.poor_share), number(meeting.min_participants)
    most = number(meeting.poor_participants)
    threshold = (
        f"(\n  (\n    clamp_max({everyone} * {share}, {most})\n"
        f"    and\n    {everyone} >= {least}\n  )\n  or\n  0 * {everyone} + {most}\n)"
    )
    expr = (
        f"(\n{_indent(poor)}\n  >= on ({MEETING})\n{_indent(threshold)}\n)\n"
        f"* on ({MEETING}) group_left (meeting_number, session_name)\n"
        f"(\n{_indent(_meeting_info(config))}\n)\n"
    )
    named = (
        "{{ with $labels.meeting_number }} (number {{ . }}){{ end }}"
        "{{ with $labels.session_name }} ({{ . }}){{ end }}"
    )
    return _alert(
        config,
        MEETING_ALERT,
        expr,
        meeting.for_,
        "warning",
        "A Zoom meeting has several participants with poor quality.",
        f"{{{{ $value }}}} participants of {{{{ $labels.product }}}} {{{{ $labels.meeting_id }}}}"
        f"{named} have had poor audio or video for {meeting.for_.text} (at least {most}, or "
        f"{percent(meeting.poor_share)} of a meeting of {least} or more): a shared cause "
        "(the host's or a presenter's network, a room, the path to Zoom), not one person's Wi-Fi.",
        dashboard_url(config, MEETING_UID, {}, {"product": "product", "meeting": "meeting_id"}),
        keep_firing_for=meeting.keep_firing_for,
    )


def _participant_alert(config: Config) -> Rule:
    expr = (
        f"{poor_streams(config)}\n* on ({PARTICIPANT}) group_left ({', '.join(PARTICIPANT_INFO)})"
        f"\n(\n{_indent(_info(config))}\n)\n"
    )
    who = (
        "Participant {{ $labels.participant_id }}{{ with $labels.user_name }} ({{ . }}){{ end }}"
        " of {{ $labels.product }} {{ $labels.meeting_id }}"
        "{{ with $labels.meeting_number }} (number {{ . }}){{ end }}"
        "{{ with $labels.session_name }} ({{ . }}){{ end }}"
    )
    where = (
        "{{ with $labels.site }}, at site {{ . }}{{ end }}"
        "{{ with $labels.network_type }}, on {{ . }}{{ end }}"
        "{{ with $labels.data_center }}, through Zoom data center {{ . }}{{ end }}"
        "{{ with $labels.client_version }}, client {{ . }}{{ end }}"
    )
    return _alert(
        config,
        PARTICIPANT_ALERT,
        expr,
        config.participant_for,
        "info",
        "A Zoom participant has poor audio or video.",
        f"{who} has had a poor media stream for {config.participant_for.text} (latency above "
        f"{milliseconds(config.latency.warning)}, jitter above "
        f"{milliseconds(config.jitter.warning)}, packet loss above "
        f"{percent(config.packet_loss.warning)} or estimated MOS below "
        f"{number(config.mos_warning)}){where}.",
        dashboard_url(
            config,
            MEETING_UID,
            {},
            {"product": "product", "meeting": "meeting_id", "participant": "participant_id"},
        ),
        keep_firing_for=config.participant_keep_firing_for,
    )


def _phone_alert(config: Config) -> Rule:
    mos = number(config.mos_warning)
    expr = (
        f'label_replace(\n  min by ({CALL_PARTY}) (zoom_phone_mos) < {mos},\n  "product", "phone", '
        f'"", ""\n)\n* on ({CALL_PARTY}) group_left (network)\n(\n'
        f"  topk by ({CALL_PARTY}) (1, zoom_phone_party_info)\n  or on ({CALL_PARTY})\n"
        f"  group by ({CALL_PARTY}) (zoom_phone_mos)\n)\n"
    )
    return _alert(
        config,
        PHONE_ALERT,
        expr,
        config.phone_for,
        "info",
        f"A Zoom Phone call party has poor audio (MOS below {mos}).",
        "The {{ $labels.role }} {{ $labels.user_id }} of phone call {{ $labels.call_id }}"
        "{{ with $labels.network }}, on {{ . }},{{ end }} has had a MOS below "
        f'{mos} for {config.phone_for.text}: {{{{ $value | printf "%.2f" }}}}.',
        dashboard_url(config, PHONE_UID, {}, {"call": "call_id", "role": "role"}),
        keep_firing_for=config.phone_keep_firing_for,
    )


# --- the exporter --------------------------------------------------------------------------------


def _exporter_url(config: Config) -> str:
    base = dashboard_url(config, EXPORTER_UID, {}, {"job": "job"})
    return base + _optional("instance", "instance")


def _exporter_alerts(config: Config) -> list[Rule]:
    selector = config.exporter_selector
    every = config.exporter_for
    window = config.signature_window.text
    link = _exporter_url(config)
    return [
        _alert(
            config,
            "ZoomQSSExporterDown",
            f"up{{{selector}}} == 0\nor\nabsent(up{{{selector}}})\n",
            every,
            "critical",
            "The Zoom QSS exporter cannot be scraped.",
            "Prometheus has not scraped the Zoom QSS exporter"
            "{{ with $labels.instance }} {{ . }}{{ end }} for "
            f"{every.text}: no call quality data and no call quality alerts meanwhile.",
            link,
        ),
        _alert(
            config,
            "ZoomQSSNoEvents",
            # by job, over every instance the window saw: a restarted or rolled-out exporter
            # (a new instance, its gauge at 0) is not a silence, and neither is a replica that
            # the load balancer happened to skip
            f"time() - max by (job) (max_over_time(zoom_qss_exporter_last_event_timestamp_seconds"
            f"{{{selector}}}[{config.no_events_for.text}]))\n"
            f"> {config.no_events_for.seconds}\n",
            every,
            "critical",
            "The Zoom QSS exporter receives no events.",
            "The exporter ({{ $labels.job }}) has accepted no Zoom event for "
            f"{config.no_events_for.text}: the event subscription may be disabled (Zoom does "
            "so after failed URL validations) or the secret token wrong; no call quality data "
            "and no call quality alerts meanwhile.",
            link,
        ),
        _alert(
            config,
            "ZoomQSSSignatureFailures",
            f"sum by (job, instance) (increase(zoom_qss_exporter_events_total"
            f'{{{selector}, outcome=~"invalid_signature|rate_limited"}}[{window}]))\n'
            f"> {config.signature_failures}\n",
            every,
            "warning",
            "Webhook requests with an invalid signature.",
            "The exporter {{ $labels.instance }} refused "
            '{{ $value | printf "%.0f" }} requests with an invalid signature (or rate-limited '
            f"after repeated failures) in the last {window}: a wrong or rotated secret token, "
            "or someone probing the webhook.",
            link,
        ),
        _alert(
            config,
            "ZoomQSSWebhookErrors",
            # every event and outcome series exists from the start at 0 (health.py), so the
            # first failure is an increase too
            f"sum by (job, instance, event) (increase(zoom_qss_exporter_events_total"
            f'{{{selector}, outcome=~"error|rejected_overload"}}[10m]))\n> 0\n',
            every,
            "warning",
            "The Zoom QSS webhook answers deliveries with a 5xx.",
            "The exporter {{ $labels.instance }} answered "
            '{{ $value | printf "%.0f" }} {{ $labels.event }} deliveries with a 5xx in the '
            "last 10m (500: a bug, see the log; 503: the remote-write queue is full). Zoom "
            "retries them for a while, then drops them: their data is lost.",
            link,
        ),
        _alert(
            config,
            "ZoomQSSSeriesCapReached",
            f"increase(zoom_qss_exporter_series_dropped_total{{{selector}}}[10m]) > 0",
            every,
            "warning",
            "The Zoom QSS exporter is dropping new series at its cap.",
            "The exporter {{ $labels.instance }} dropped "
            '{{ $value | printf "%.0f" }} new series in the last 10m because it holds '
            "--store.max-series series: new participants and calls are not visible.",
            link,
        ),
        _alert(
            config,
            "ZoomQSSSeriesCapNear",
            f"sum by (job, instance) (zoom_qss_exporter_series{{{selector}}})\n"
            f"/ on (job, instance)\nzoom_qss_exporter_series_limit{{{selector}}}\n"
            f"> {number(config.series_cap_ratio)}\n",
            every,
            "info",
            "The Zoom QSS exporter is close to its series cap.",
            "The exporter {{ $labels.instance }} holds {{ $value | humanizePercentage }} of "
            "--store.max-series.",
            link,
        ),
    ]
