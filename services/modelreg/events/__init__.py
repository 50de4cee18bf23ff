"""The events relay: public CloudEvents and webhooks for CD systems."""
