"""import_labeled_set, retrain_first_pass and the ingestion and first-pass benches."""
