"""What every other package stands on: settings, the injectable clock, ids, the exception tree,
connections to the stores (connections.Deps) and schema migrations."""
