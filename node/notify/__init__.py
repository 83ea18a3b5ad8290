"""What leaves the ledger after commit: webhooks, alerts and customer messages, all fed by the change feed."""
