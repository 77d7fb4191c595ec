"""Privacy use cases above the event store and the projections: forgetting a customer
(crypto-shredding) and consent-checked contact lists. The primitives they use (data
keys, sealing, pseudonyms, redaction) live below the store in ``journey.crypto``.
See docs/privacy.md."""
