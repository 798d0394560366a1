"""Native (durable) scenario definitions, imported lazily by Scenario.native."""
