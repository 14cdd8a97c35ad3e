"""The harness: run specs and suites, train and evaluate, profile, store records, report, CLI."""
