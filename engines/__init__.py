"""engines: the one Engine interface and the engines behind it; where flow and durable meet."""
