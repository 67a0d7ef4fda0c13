"""Quality analytics: bounded counters of good and poor stream-minutes by site, network,
account, client and data center, with a likely cause for each poor one."""
