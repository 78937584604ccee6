"""The edge of streamvae: everything that does I/O (Kafka, files, the CLI, the wall clock)."""
