"""Private internals of `durable`: registry, context, driver, replay, sandbox, serialization,
worlds, worker. Nothing here is public API; import from `durable` instead."""
