"""Remote write: what of a conversion is written, the bounded queue and its write-ahead log,
the client, and the protocol's encoding."""
