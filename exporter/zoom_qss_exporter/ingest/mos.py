"""An estimated MOS for meeting, webinar and session audio from latency, jitter and loss.

Zoom reports a MOS for phone calls only. The ITU-T G.107 E-model, simplified as is common for
VoIP monitoring (Cole & Rosenbluth, "Voice over IP performance monitoring", 2001), turns the
network figures Zoom does report into the same 1-5 scale, so one MOS alert covers every
product:

    d      = latency + 2 * jitter + 10 ms     effective one-way delay: an adaptive jitter
                                              buffer of about twice the jitter, plus the codec
    Id     = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)        delay impairment (d in ms)
    Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl + Bpl)              loss impairment (Ppl in %)
    R      = 93.2 - Id - Ie,eff                              G.107 defaults otherwise, A = 0
    MOS    = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R)         G.107 Annex B, clamped to 1..4.5

where H(x) is 1 for x > 0 and 0 otherwise, and Ie = 0 and Bpl = 25.1 are G.113 Appendix I's
values for G.711 with packet loss concealment and random loss. Limits: Zoom's codecs are not
G.711 and conceal loss better; ``latency`` is taken as the one-way network delay Zoom
describes ("the time it takes a packet to travel from one point to another"); bursty loss,
echo and noise are not modelled. It is an estimate that ranks streams and catches bad
networks, not a listening test.
"""

from __future__ import annotations

R_DEFAULT = 93.2  # G.107: R with every other parameter at its default value
CODEC_DELAY = 0.010  # seconds added to the network delay for packetization and decoding
JITTER_BUFFER_FACTOR = 2.0  # an adaptive jitter buffer holds about twice the jitter
IE = 0.0  # equipment impairment of G.711 (G.113 Appendix I)
BPL = 25.1  # packet-loss robustness of G.711 with concealment, random loss (G.113 App. I)


def delay_impairment(delay: float) -> float:
    """Id for a one-way delay in seconds (Cole & Rosenbluth's fit of G.107's delay terms)."""
    ms = delay * 1000.0
    return 0.024 * ms + 0.11 * max(ms - 177.3, 0.0)


def loss_impairment(loss: float) -> float:
    """Ie,eff for a packet loss ratio (0-1), per G.107 with G.711's Ie and Bpl."""
    percent = min(max(loss, 0.0), 1.0) * 100.0
    return IE + (95.0 - IE) * percent / (percent + BPL)


def r_factor(latency: float, jitter: float, loss: float) -> float:
    """Transmission rating R (0-100) from latency and jitter in seconds and a loss ratio."""
    delay = max(latency, 0.0) + JITTER_BUFFER_FACTOR * max(jitter, 0.0) + CODEC_DELAY
    return R_DEFAULT - delay_impairment(delay) - loss_impairment(loss)


def r_to_mos(r: float) -> float:
    """G.107 Annex B: R to MOS (conversational quality, estimated)."""
    if r <= 0.0:
        return 1.0
    if r >= 100.0:
        return 4.5
    mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    return min(max(mos, 1.0), 4.5)  # the cubic dips just below 1 for R under ~6.5


def mos_estimate(latency: float, jitter: float, loss: float) -> float:
    """Estimated MOS (1-4.41) from latency and jitter in seconds and a loss ratio (0-1)."""
    return r_to_mos(r_factor(latency, jitter, loss))
