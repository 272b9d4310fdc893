"""The ingestion API: clients and tokens, ingestion with first-pass routing and training, the item
state read model, webhook deliveries and the admins' Integrations pages."""
