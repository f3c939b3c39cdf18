"""What every confbook service needs once: settings, database, messaging, gRPC serving."""
